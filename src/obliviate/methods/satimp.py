"""SatImp: token-reweighted ascent by saturation and importance.

L = mean_t [w_t · log p_t] + λ · NLL(retain),  with  w_t = p_t^β₁ · (1 − p_t)^β₂  (detached),

over the labelled forget tokens (Yang et al., 2025, "Exploring criteria of loss
reweighting to enhance LLM unlearning"). The paper studies which tokens an ascent should
weigh; the saturation factor p^β₁ fades tokens already forgotten (p → 0), so effort is not
spent where it only damages the model, and the importance factor (1 − p)^β₂ damps the
tokens the model is most certain of. Both weights are at most 1, so with β₁ = 5 the forget
term is weak (≤ 5⁵/6⁶ ≈ 0.067 per token) and needs a larger learning rate than plain ascent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.methods.base import Batch, Objective, Range, answer_nll
from obliviate.methods.registry import register_method
from obliviate.methods.wga import weighted_logprob
from obliviate.models.encoding import label_mask, sequence_logprobs


def token_weights(logprobs: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """w_t = p_t^β₁ · (1 − p_t)^β₂, from log p_t (1 − p as −expm1(log p), exact near p = 1)."""
    logprobs = logprobs.detach()
    return torch.exp(beta1 * logprobs) * (-torch.expm1(logprobs)) ** beta2


@register_method
@dataclass
class SatImp(Objective):
    name = "satimp"
    summary = "ascent weighted by p^β1·(1−p)^β2 per token (saturation × importance), + retain NLL"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "beta1": Range(1.0, 10.0, log=True),
        "beta2": Range(0.3, 3.0, log=True),
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    beta1: float = 5.0
    """β₁: saturation exponent (the paper's and open-unlearning's default)."""
    beta2: float = 1.0
    """β₂: importance exponent (the paper's and open-unlearning's default)."""
    retain_weight: float = 1.0
    """λ: weight of the retain NLL (as in WGA and GradDiff; open-unlearning's SatImp config
    weighs the forget term 0.1 and the retain NLL 1.0)."""

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logprobs = sequence_logprobs(model, forget)
        mask = label_mask(forget)
        weights = token_weights(logprobs, self.beta1, self.beta2)
        forget_loss = weighted_logprob(logprobs, weights, mask)
        retain_nll = answer_nll(model, retain)
        loss = forget_loss + self.retain_weight * retain_nll
        forget_nll = -(logprobs * mask).sum() / mask.sum().clamp(min=1)
        return loss, {"forget_nll": forget_nll.item(), "retain_nll": retain_nll.item()}
