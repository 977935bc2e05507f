"""Selective Knowledge negation Unlearning (SKU): learn the forget data, then negate it.

Liu et al., 2024, "Towards Safer Large Language Models through Machine Unlearning".
Stage 1 (training) moves the model *toward* the forget data with three terms:

    L = ε₁·NLL(y | x) + ε₂·NLL(y' | x) + s·ε₃·KL(π_orig ‖ π_θ)

- guided distortion: NLL of each forget answer y given its question x;
- random disassociation: NLL of k answers y' of *other* forget examples given x, so the
  task vector also carries "answer x with anything from the forget set" (SKU's code;
  ``answer_pool=normal`` draws y' from the retain answers instead, as Yao et al.'s random
  mismatch does, see ``ga_mismatch``);
- preservation divergence: KL from the original model π_orig to π_θ at the answer
  positions of retain (normal) examples.

Stage 2 (``finalize``): τ = θ₁ − θ_orig, θ_new = θ_orig − λ·τ (``scaling``).

Where each default comes from (the authors' code, franciscoliu/SKU; the paper's text
could not be consulted here beyond its abstract, so the code stands for it):

- ε₁ = 2.5, ε₂ = 2.5, ε₃ = 1: the README's unlearning command (``--bad_weight 2.5
  --random_weight 2.5 --normal_weight 1``, OPT-2.7B, lr 2e-4, 1000 steps of batch 2).
  The script's own argparse defaults (0.5, 1, 1) are those of Yao et al.'s script it
  grew from, kept by ``ga_mismatch``;
- k = 5: ``get_rand_ans_loss(..., K=5)`` in ``unlearn_harm_new.py``;
- s = −1: ``compute_reverse_kl`` returns −KL(π_orig ‖ π_θ) and the script adds
  ``normal_weight`` times it to the loss, so stage 1 *maximises* the divergence on normal
  prompts: the harmful model's behaviour there is its own, and τ is meant to hold the
  harmful knowledge apart from the normal (the paper's "preservation divergence"). A
  first-order argument points the other way (if stage 1 keeps π on normal data, negating
  τ keeps it too), so s = +1 is offered as a variant, not the default. On the built-in
  facts benchmark with SmolLM2-135M (forget10, 32 steps at lr 2e-5, λ = 1, the earlier
  weights 1, 1, 1 and k = 2) s = −1 took forget accuracy 1.00 → 0.26 and retain
  0.88 → 0.42; s = +1 gave 0.35 and 0.72;
- λ = 1 (``scale``): ``TaskVector.apply_to``'s ``scaling_coef``; ``select_scale`` chooses
  it on the retain questions instead (the benchmarks do).

A term whose weight is 0 is not computed, so each term can be run alone (the
benchmark's split of τ by loss term) for the cost of that term only.

Every term is masked: NLLs and KL cover answer (label) positions only, never prompt or
padding tokens (SKU's public code averages its KL over every position, padding included).
Random answers are drawn once, seeded, and never an example's own answer (SKU's code
samples k answers from the whole set each step, which may include the example's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.errors import ObliviateError
from obliviate.methods.base import Batch, Range, TrainingContext, answer_nll, frozen_copy
from obliviate.methods.ga_kl import answer_kl
from obliviate.methods.mismatch import disassociation_pairs, mismatched_batch, mismatched_examples
from obliviate.methods.registry import register_method
from obliviate.methods.scaling import NegatedTaskVector


@register_method
@dataclass
class SKU(NegatedTaskVector):
    name = "sku"
    summary = "learn forget answers (+ mismatched answers, KL on retain), then negate the change"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "scale": Range(0.3, 3.0, log=True),
        "distortion_weight": Range(0.3, 3.0, log=True),
        "disassociation_weight": Range(0.3, 3.0, log=True),
        "preserve_weight": Range(0.3, 3.0, log=True),
    }

    distortion_weight: float = 2.5
    """ε₁: weight of the guided-distortion NLL (the authors' README command: 2.5)."""
    disassociation_weight: float = 2.5
    """ε₂: weight of the random-disassociation NLL (the authors' README command: 2.5)."""
    preserve_weight: float = 1.0
    """ε₃: weight of the preservation-divergence KL (the authors' README command: 1)."""
    preserve_sign: float = -1.0
    """s: −1 maximises the KL on retain in stage 1 (the authors' code), +1 minimises it (a
    variant; see the module docstring)."""
    k: int = 5
    """Answers of other forget examples paired with each question (the authors' code: 5)."""
    seed: int = 0
    """Seed of the random pairing."""
    answer_pool: str = "forget"
    """Where the k answers come from: ``forget`` (other forget answers, as SKU's code
    draws them) or ``normal`` (the retain answers, as Yao et al.'s random mismatch)."""

    def __post_init__(self) -> None:
        if self.preserve_sign not in (-1.0, 1.0):
            raise ObliviateError("sku's preserve_sign must be 1 or -1")
        if self.k < 1:
            raise ObliviateError("sku's k must be at least 1")
        if self.answer_pool not in ("forget", "normal"):
            raise ObliviateError("sku's answer_pool must be forget or normal")
        weights = (self.distortion_weight, self.disassociation_weight, self.preserve_weight)
        if min(weights) < 0 or not any(weights):
            raise ObliviateError("sku's loss weights must be ≥ 0, and one of them above 0")

    def prepare(self, context: TrainingContext) -> None:
        self._reference = frozen_copy(context.model)
        self.prepare_negation(context, dict(self._reference.named_parameters()))
        records = context.primary_records
        pool = records if self.answer_pool == "forget" else context.retain_records
        pairs = disassociation_pairs(records, self.k, self.seed, pool)
        self._pad_token_id = context.tokenizer.pad_token_id
        self._mismatched = mismatched_examples(context.tokenizer, records, pool, pairs)

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        values: dict[str, torch.Tensor] = {}  # each term unweighted, as logged
        if self.distortion_weight:
            values["distortion_nll"] = answer_nll(model, forget)
        if self.disassociation_weight:
            mismatched = mismatched_batch(self._mismatched, forget, self._pad_token_id)
            if mismatched is not None:
                values["disassociation_nll"] = answer_nll(model, mismatched)
        if self.preserve_weight:
            values["retain_kl"] = answer_kl(model, self._reference, retain)
        weights = {
            "distortion_nll": self.distortion_weight,
            "disassociation_nll": self.disassociation_weight,
            "retain_kl": self.preserve_sign * self.preserve_weight,
        }
        if not values:  # random disassociation alone, and no question-answer record
            raise ObliviateError("sku has no loss term to compute on these records")
        terms = [weights[name] * value for name, value in values.items()]
        loss = terms[0] + sum(terms[1:])  # terms may differ in dtype under autocast
        return loss, {name: value.item() for name, value in values.items()}
