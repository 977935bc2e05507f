"""Negative Preference Optimization (NPO).

L = −(2/β) · E log σ(−β · (log π_θ(y|x) − log π_ref(y|x))) + λ · retain term,
with log π the summed log-probability of the forget answer (Zhang, Lin, Bai & Mei, 2024,
"Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning").
NPO is DPO with only a rejected answer: as the forget answer becomes unlikely the
sigmoid saturates and the gradient fades, so unlike gradient ascent it does not race
off to collapse. The retain term is the paper's NPO+RT (NLL) or NPO+KL variant, or none.

π_ref is the model before unlearning and the forget set is fixed, so log π_ref(y|x) is
computed once in ``prepare`` and looked up by the batch's ``index``: no reference model
runs during training (one is kept only for the KL retain term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from obliviate.errors import ObliviateError
from obliviate.methods.base import (
    Batch,
    Objective,
    Range,
    TrainingContext,
    answer_logprob_sums,
    answer_nll,
    frozen_copy,
    per_example,
)
from obliviate.methods.ga_kl import answer_kl
from obliviate.methods.registry import register_method

RETAIN_TERMS = ("nll", "kl", "none")


def npo_loss(log_ratios: torch.Tensor, beta: float) -> torch.Tensor:
    """−(2/β) · mean log σ(−β · r) for log-ratios r = log π_θ − log π_ref (in float32)."""
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratios.float()).mean()


@register_method
@dataclass
class NPO(Objective):
    name = "npo"
    summary = "negative preference optimisation on forget (+ NLL or KL on retain)"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "beta": Range(0.05, 1.0, log=True),
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    beta: float = 0.1
    """β: inverse temperature of the preference loss (the paper's TOFU value, 0.1)."""
    retain: str = "nll"
    """Retain term: ``nll`` (NPO+RT), ``kl`` (NPO+KL to the original model) or ``none``."""
    retain_weight: float = 1.0
    """λ: weight of the retain term (the paper's TOFU value, 1.0)."""

    def __post_init__(self) -> None:
        if self.retain not in RETAIN_TERMS:
            raise ObliviateError(
                f"npo's retain must be one of {', '.join(RETAIN_TERMS)}, not '{self.retain}'"
            )
        if self.beta <= 0:
            raise ObliviateError("npo's beta must be > 0")

    def prepare(self, context: TrainingContext) -> None:
        pad_token_id = context.tokenizer.pad_token_id
        self._reference_logprobs = per_example(
            context.model, context.primary, pad_token_id, answer_logprob_sums
        )
        if self.retain == "kl":
            self._reference = frozen_copy(context.model)

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        index = forget["index"]
        log_ratios = (
            answer_logprob_sums(model, forget) - self._reference_logprobs.to(index.device)[index]
        )
        forget_loss = npo_loss(log_ratios, self.beta)
        logs = {"forget_loss": forget_loss.item(), "log_ratio": log_ratios.mean().item()}
        if self.retain == "none":
            return forget_loss, logs
        if self.retain == "nll":
            retain_loss = answer_nll(model, retain)
        else:
            retain_loss = answer_kl(model, self._reference, retain)
        logs[f"retain_{self.retain}"] = retain_loss.item()
        return forget_loss + self.retain_weight * retain_loss, logs
