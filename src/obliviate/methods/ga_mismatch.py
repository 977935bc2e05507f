"""Gradient ascent with random mismatch (Yao et al., 2023, "Large Language Model Unlearning").

    L = −ε₁·NLL(y | x) + ε₂·NLL(y' | x) + ε₃·KL(π_orig ‖ π_θ)

- ascent on each harmful answer y given its harmful prompt x;
- random mismatch: NLL of k *normal* answers y' (the retain data's) given the same harmful
  prompt x, so the model learns to answer x with something harmless instead of being
  pushed into gibberish by ascent alone;
- a KL from the original model π_orig to π_θ on normal (retain) answers, which keeps the
  model's normal outputs where they were.

Defaults are the paper's script (``unlearn_harm.py``): ε₁ = 0.5 (``bad_weight``),
ε₂ = 1 (``random_weight``), ε₃ = 1 (``normal_weight``), k = 5; its optimiser settings
(lr 2e-6, batch 2, 1000 steps on OPT-1.3B) are the training loop's to set.

Masks differ from their code: there the mismatch term's answer start is the length of a
tokenizer output (2), so it trains on the prompt too, and the KL covers every position,
padding included; here every term covers answer tokens only. Their 5 random answers are
drawn per batch from all TruthfulQA answers; here k per harmful example are drawn once,
seeded, from the retain answers, never one equal to the harmful answer (``mismatch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.errors import ObliviateError
from obliviate.methods.base import Batch, Objective, Range, TrainingContext, answer_nll, frozen_copy
from obliviate.methods.ga_kl import answer_kl
from obliviate.methods.mismatch import disassociation_pairs, mismatched_batch, mismatched_examples
from obliviate.methods.registry import register_method


@register_method
@dataclass
class GradAscentMismatch(Objective):
    name = "ga_mismatch"
    summary = "ascent on forget + NLL of random retain answers to forget prompts + KL on retain"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "ascent_weight": Range(0.1, 2.0, log=True),
        "mismatch_weight": Range(0.1, 3.0, log=True),
        "kl_weight": Range(0.3, 10.0, log=True),
    }

    ascent_weight: float = 0.5
    """ε₁: weight of the ascent term (Yao et al.'s ``bad_weight``, 0.5)."""
    mismatch_weight: float = 1.0
    """ε₂: weight of the random-mismatch NLL (``random_weight``, 1)."""
    kl_weight: float = 1.0
    """ε₃: weight of the KL on retain answers (``normal_weight``, 1)."""
    k: int = 5
    """Retain answers paired with each forget prompt (their K, 5)."""
    seed: int = 0
    """Seed of the random pairing."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ObliviateError("ga_mismatch's k must be at least 1")

    def prepare(self, context: TrainingContext) -> None:
        self._reference = frozen_copy(context.model)
        records, pool = context.primary_records, context.retain_records
        pairs = disassociation_pairs(records, self.k, self.seed, pool, method=self.name)
        self._pad_token_id = context.tokenizer.pad_token_id
        self._mismatched = mismatched_examples(context.tokenizer, records, pool, pairs)

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        forget_nll = answer_nll(model, forget)
        mismatched = mismatched_batch(self._mismatched, forget, self._pad_token_id)
        mismatch_nll = answer_nll(model, mismatched) if mismatched else forget_nll.new_zeros(())
        retain_kl = answer_kl(model, self._reference, retain)
        loss = (
            -self.ascent_weight * forget_nll
            + self.mismatch_weight * mismatch_nll
            + self.kl_weight * retain_kl
        )
        return loss, {
            "forget_nll": forget_nll.item(),
            "mismatch_nll": mismatch_nll.item(),
            "retain_kl": retain_kl.item(),
        }
