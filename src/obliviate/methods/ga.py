"""Gradient ascent (GA): maximise the loss on the forget answers.

L = −NLL(forget). The simplest unlearning objective (Jang et al., 2023; Yao et al., 2023);
unbounded below, so it is usually run for few steps or paired with a retain term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.methods.base import Batch, Objective, answer_nll
from obliviate.methods.registry import register_method


@register_method
@dataclass
class GradientAscent(Objective):
    name = "ga"
    summary = "gradient ascent on the forget answers"

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        forget_nll = answer_nll(model, forget)
        return -forget_nll, {"forget_nll": forget_nll.item()}
