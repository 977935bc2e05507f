"""IDK fine-tuning: teach the model to refuse the forget questions.

L = NLL(refusal | forget question) + λ · NLL(retain) (Maini, Feng, Schwarzschild, Lipton &
Kolter, 2024, "TOFU: A Task of Fictitious Unlearning for LLMs", the "IDK" baseline).
Each forget question is relabelled with a refusal from ``refusals.REFUSALS`` chosen by a
hash of its record id. Nothing pushes the true answer down directly: its probability
falls because the refusal takes its place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.methods.base import Batch, Objective, Range, TrainingContext, answer_nll
from obliviate.methods.refusals import refusal_examples, relabelled_batch
from obliviate.methods.registry import register_method


@register_method
@dataclass
class IDK(Objective):
    name = "idk"
    summary = "fine-tune forget questions to refusals + NLL on retain"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    retain_weight: float = 1.0
    """λ: weight of the retain NLL (TOFU uses 1.0)."""

    def prepare(self, context: TrainingContext) -> None:
        self._refusals = refusal_examples(context, self.name)
        self._pad_token_id = context.tokenizer.pad_token_id

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        refusals = relabelled_batch(self._refusals, forget, self._pad_token_id)
        refusal_nll = answer_nll(model, refusals)
        retain_nll = answer_nll(model, retain)
        loss = refusal_nll + self.retain_weight * retain_nll
        return loss, {"refusal_nll": refusal_nll.item(), "retain_nll": retain_nll.item()}
