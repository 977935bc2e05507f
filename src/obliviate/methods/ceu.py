"""Cross-entropy unlearning (CE-U): learn the model's own distribution minus the answer.

At each labelled forget position the target is the model's current distribution with
the true token removed,

    q = softmax(z.detach()) with q[y] = 0, renormalised  (= softmax of z with z[y] = −∞),
    L = mean_t CE(q_t, softmax(z_t)) + λ · NLL(retain),

(Yang, 2025, "CE-U: Cross entropy unlearning"). The gradient softmax(z) − q moves mass
from the answer to the alternatives the model already ranks next, and it vanishes as the
answer's probability reaches 0, whereas gradient ascent keeps pushing a forgotten token
down. The paper's training also leaves out the first answer token; here every answer
token is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.methods.base import Batch, Objective, Range, answer_nll
from obliviate.methods.registry import register_method
from obliviate.models.encoding import answer_logits


def ceu_target(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """q: softmax of the detached logits with each label's logit set to −∞."""
    suppressed = logits.detach().float().scatter(-1, labels.unsqueeze(-1), float("-inf"))
    return torch.softmax(suppressed, dim=-1)


def soft_cross_entropy(target: torch.Tensor, logprobs: torch.Tensor) -> torch.Tensor:
    """Mean over rows of −Σ_v target_v · logprobs_v (cross-entropy to a soft target)."""
    return -(target * logprobs).sum(-1).mean()


@register_method
@dataclass
class CEU(Objective):
    """Needs ``--retain`` like the other retain-aware methods, even at weight 0 (the paper's
    setting), because whether retain batches are drawn is fixed per method, not per run."""

    name = "ceu"
    summary = "cross-entropy to the model's own distribution without the answer token"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "retain_weight": Range(0.0, 5.0),
    }

    retain_weight: float = 0.0
    """λ: weight of the retain NLL; 0 (the paper's forget-only objective) skips it."""

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits, labels = answer_logits(model, forget)
        logprobs = torch.log_softmax(logits, dim=-1)
        loss = soft_cross_entropy(ceu_target(logits, labels), logprobs)
        answer_logprob = logprobs.gather(-1, labels.unsqueeze(-1)).mean()
        logs = {"forget_ce": loss.item(), "forget_nll": -answer_logprob.item()}
        if self.retain_weight:
            retain_nll = answer_nll(model, retain)
            loss = loss + self.retain_weight * retain_nll
            logs["retain_nll"] = retain_nll.item()
        return loss, logs
