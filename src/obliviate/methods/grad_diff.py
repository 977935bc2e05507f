"""Gradient difference (GradDiff): ascent on forget, descent on retain.

L = −NLL(forget) + λ · NLL(retain) (Liu et al., 2022; TOFU's "grad_diff"). The retain term
anchors the model so that ascent removes the forget answers, not language itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.methods.base import Batch, Objective, Range, answer_nll
from obliviate.methods.registry import register_method


@register_method
@dataclass
class GradDiff(Objective):
    name = "grad_diff"
    summary = "gradient ascent on forget + NLL on retain"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    retain_weight: float = 1.0
    """λ: weight of the retain NLL (TOFU uses 1.0)."""

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        forget_nll = answer_nll(model, forget)
        retain_nll = answer_nll(model, retain)
        loss = -forget_nll + self.retain_weight * retain_nll
        return loss, {"forget_nll": forget_nll.item(), "retain_nll": retain_nll.item()}
