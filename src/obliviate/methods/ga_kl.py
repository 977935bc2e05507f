"""Gradient ascent with a KL retain term (GA+KL).

L = −NLL(forget) + λ · KL(π_ref ‖ π_θ) on the retain answer tokens, where π_ref is the
model before unlearning (Yao et al., 2023, "Large Language Model Unlearning"; TOFU's
"KL" baseline, Maini et al., 2024). Unlike a retain NLL, the KL term keeps the whole
next-token distribution on retain data where it was, not only the probability of the
labelled token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from obliviate.methods.base import Batch, Objective, Range, TrainingContext, answer_nll, frozen_copy
from obliviate.methods.registry import register_method
from obliviate.models.encoding import answer_logits


def answer_kl(model: torch.nn.Module, reference: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """KL(reference ‖ model) of the next-token distributions, averaged over answer tokens.

    Prompt and padding positions are left out, like every loss here. The reference is moved
    to the batch's device on first use (it is copied in ``prepare``, before the loop places
    the model).
    """
    device = batch["input_ids"].device
    if next(reference.parameters()).device != device:
        reference.to(device)
    logprobs = F.log_softmax(answer_logits(model, batch)[0], dim=-1)
    with torch.no_grad():
        reference_logprobs = F.log_softmax(answer_logits(reference, batch)[0], dim=-1)
    return F.kl_div(logprobs, reference_logprobs, log_target=True, reduction="batchmean")


@register_method
@dataclass
class GradAscentKL(Objective):
    name = "ga_kl"
    summary = "gradient ascent on forget + KL to the original model on retain"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    retain_weight: float = 1.0
    """λ: weight of the retain KL (TOFU uses 1.0)."""

    def prepare(self, context: TrainingContext) -> None:
        self._reference = frozen_copy(context.model)

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        forget_nll = answer_nll(model, forget)
        retain_kl = answer_kl(model, self._reference, retain)
        loss = -forget_nll + self.retain_weight * retain_kl
        return loss, {"forget_nll": forget_nll.item(), "retain_kl": retain_kl.item()}
