"""Plain supervised fine-tuning: the objective that makes targets and oracles."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.methods.base import Batch, Objective, answer_nll


@dataclass
class FineTune(Objective):
    """Minimise NLL(answer | question) on the training records."""

    name = "finetune"
    summary = "supervised fine-tuning (NLL on answer tokens)"

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        nll = answer_nll(model, forget)
        return nll, {"nll": nll.item()}
