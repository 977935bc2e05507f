"""Weighted gradient ascent (WGA): ascent that spends its effort on tokens still likely.

L = mean_t [w_t · log p_t] + λ · NLL(retain),  with  w_t = p_t^β  (detached),

over the labelled forget tokens (Wang et al., 2025, "Rethinking LLM unlearning
objectives: a gradient perspective and go beyond"). Plain gradient ascent keeps pushing
tokens whose probability is already near zero, which is where it wrecks the model; the
weight p_t^β fades a token's gradient once it is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.methods.base import Batch, Objective, Range, answer_nll
from obliviate.methods.registry import register_method
from obliviate.models.encoding import label_mask, sequence_logprobs


def token_weights(logprobs: torch.Tensor, beta: float) -> torch.Tensor:
    """w_t = p_t^β, computed as exp(β · log p_t) and detached (a weight, not a loss term)."""
    return torch.exp(beta * logprobs.detach())


def weighted_logprob(
    logprobs: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean of w_t · log p_t over the labelled tokens; minimising it lowers log p_t."""
    return (weights * logprobs * mask).sum() / mask.sum().clamp(min=1)


@register_method
@dataclass
class WGA(Objective):
    name = "wga"
    summary = "gradient ascent weighted by each token's probability p^β, + retain NLL"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "beta": Range(0.2, 5.0, log=True),
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    beta: float = 1.0
    """β: exponent of the token weight p^β (open-unlearning's WGA default; the paper tunes it)."""
    retain_weight: float = 1.0
    """λ: weight of the retain NLL (open-unlearning's WGA default, ``alpha``)."""

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logprobs = sequence_logprobs(model, forget)
        mask = label_mask(forget)
        forget_loss = weighted_logprob(logprobs, token_weights(logprobs, self.beta), mask)
        retain_nll = answer_nll(model, retain)
        loss = forget_loss + self.retain_weight * retain_nll
        forget_nll = -(logprobs * mask).sum() / mask.sum().clamp(min=1)
        return loss, {"forget_nll": forget_nll.item(), "retain_nll": retain_nll.item()}
