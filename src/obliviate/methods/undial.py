"""UNDIAL: self-distillation towards the model's own logits with the answer pushed down.

At each labelled forget position, with z the logits of a frozen copy of the model taken
before unlearning and y the true token,

    target = softmax(z − β · onehot(y)),
    L = mean_t CE(target_t, softmax(logits_t)) + λ · NLL(retain)

(Dong et al., 2024, "UNDIAL: Self-distillation with adjusted logits for robust
unlearning in large language models"). The target is fixed, derived from the original
model, and reachable (the answer β logits lower, the rest as before), so training settles
there instead of running away as gradient ascent does. The
reference logits are full-vocabulary per position (n_tokens × vocab floats per example),
too large to cache for a whole forget set, so the frozen copy runs on each batch under
``torch.no_grad`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.methods.base import Batch, Objective, Range, TrainingContext, answer_nll, frozen_copy
from obliviate.methods.ceu import soft_cross_entropy
from obliviate.methods.registry import register_method
from obliviate.models.encoding import answer_logits


def adjusted_target(ref_logits: torch.Tensor, labels: torch.Tensor, beta: float) -> torch.Tensor:
    """softmax(ref_logits − β · onehot(labels)), in float32, with no gradient."""
    adjusted = ref_logits.detach().float().clone()
    adjusted[torch.arange(len(labels), device=labels.device), labels] -= beta
    return torch.softmax(adjusted, dim=-1)


@register_method
@dataclass
class UNDIAL(Objective):
    name = "undial"
    summary = "self-distil to the original logits with the answer token lowered by β, + retain NLL"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "beta": Range(2.0, 30.0, log=True),
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    beta: float = 10.0
    """β: how far the answer token's logit is lowered in the target (the paper's default)."""
    retain_weight: float = 1.0
    """λ: weight of the retain NLL (obliviate's choice; the paper and open-unlearning's
    UNDIAL config train on the forget set only, i.e. 0)."""

    def prepare(self, context: TrainingContext) -> None:
        self.reference = frozen_copy(context.model)

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        device = forget["input_ids"].device
        if next(self.reference.parameters()).device != device:
            self.reference.to(device)
        with torch.no_grad():
            ref_logits, labels = answer_logits(self.reference, forget)
        logits, _ = answer_logits(model, forget)
        logprobs = torch.log_softmax(logits, dim=-1)
        forget_loss = soft_cross_entropy(adjusted_target(ref_logits, labels, self.beta), logprobs)
        answer_logprob = logprobs.gather(-1, labels.unsqueeze(-1)).mean()
        logs = {"forget_ce": forget_loss.item(), "forget_nll": -answer_logprob.item()}
        loss = forget_loss
        if self.retain_weight:
            retain_nll = answer_nll(model, retain)
            loss = loss + self.retain_weight * retain_nll
            logs["retain_nll"] = retain_nll.item()
        return loss, logs
