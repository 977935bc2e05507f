"""Task arithmetic: fine-tune toward the forget answers, then subtract what that added.

Stage 1 minimises NLL(forget) from θ_orig to θ_ft; the task vector τ = θ_ft − θ_orig
points toward knowing the forget data better, so θ_new = θ_orig − λ·τ points away from it
(Ilharco et al., 2023, "Editing models with task arithmetic", where negating a task vector
is how a model forgets a task). λ is ``scale``, or chosen on retain questions with
``select_scale`` (``obliviate.methods.scaling``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.methods.base import Batch, Range, TrainingContext, answer_nll
from obliviate.methods.registry import register_method
from obliviate.methods.scaling import NegatedTaskVector


@register_method
@dataclass
class TaskVector(NegatedTaskVector):
    name = "task_vector"
    summary = "fine-tune on the forget answers, then negate that change: θ_orig − λ·τ"
    tunable: ClassVar[dict[str, Range]] = {
        "scale": Range(0.3, 3.0, log=True),
    }

    def prepare(self, context: TrainingContext) -> None:
        self.prepare_negation(context)

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        forget_nll = answer_nll(model, forget)
        return forget_nll, {"forget_nll": forget_nll.item()}
