"""Task-vector negation and the choice of its scale λ (task arithmetic, SKU's second stage).

Task arithmetic (Ilharco et al., 2023, "Editing models with task arithmetic") subtracts
what a fine-tune toward the forget data added: τ = θ_ft − θ_orig, θ_new = θ_orig − λ·τ.
λ trades forgetting for utility, and no single value suits every model and data set, so
``select_scale`` picks it on held-out data: the largest λ of a grid whose retain
accuracy stays within a tolerance of the original model's. The accuracy function is a
parameter, so the rule is tested with a fake one and any measure of utility can be
plugged in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.methods.base import Objective, TrainingContext
from obliviate.progress import say

SCALE_GRID: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
"""The λ values ``select_scale`` tries. Ilharco et al. also pick λ on held-out data (from 0
to 1 in steps of 0.05, keeping control accuracy at 95 % of the original's); this grid is
coarser, since every λ costs a round of generation, and reaches past 1 for short stage-1
runs."""


def parameter_snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of every parameter, by name: θ_orig, taken before training moves it.

    ``named_parameters`` lists tied weights (embeddings and LM head) once, so a tied
    weight is negated once, not twice as a ``state_dict`` walk would.
    """
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters()}


@torch.no_grad()
def negate_task_vector(
    model: torch.nn.Module,
    original: Mapping[str, torch.Tensor],
    finetuned: Mapping[str, torch.Tensor],
    scale: float,
) -> None:
    """Set ``model``'s parameters to θ_orig − λ·(θ_ft − θ_orig), in place (λ = ``scale``)."""
    for name, parameter in model.named_parameters():
        base = original[name].to(parameter.device, torch.float32)
        tuned = finetuned[name].to(parameter.device, torch.float32)
        parameter.copy_(base - scale * (tuned - base))


def largest_scale_within(
    accuracy: Callable[[float], float],
    tolerance: float,
    grid: Sequence[float] = SCALE_GRID,
) -> float:
    """The largest λ in ``grid`` with ``accuracy(λ) ≥ accuracy(0) − tolerance``.

    ``accuracy(0)`` is the original model's. λ values are tried from the largest down and
    the first that passes is taken, so a non-monotone accuracy curve is still answered
    correctly and no λ above the answer is evaluated twice. When none passes, the
    smallest λ of the grid is returned: the gentlest negation on offer.
    """
    baseline = accuracy(0.0)
    for scale in sorted(grid, reverse=True):
        if accuracy(scale) >= baseline - tolerance:
            return scale
    return min(grid)


def validation_records(records: Sequence[Record] | None, size: int, method: str) -> list[Record]:
    """The first ``size`` question–answer records of the retain data: λ's validation set."""
    facts = [r for r in records or [] if not r.is_text][:size]
    if not facts:
        raise ObliviateError(
            f"method '{method}' with select_scale=true needs retain questions to choose λ on; "
            "pass --retain FILE with question-answer records (or set select_scale=false)"
        )
    return facts


def finish_negation(
    model: torch.nn.Module,
    original: Mapping[str, torch.Tensor],
    scale: float,
    accuracy: Callable[[torch.nn.Module], float] | None = None,
    tolerance: float = 0.05,
) -> float:
    """Negate the task vector that training wrote into ``model``; return the λ used.

    With ``accuracy`` (a model's retain accuracy), λ is ``largest_scale_within`` the
    tolerance; otherwise ``scale``. The fine-tuned weights are copied once, on their
    device, so every λ tried starts from them.
    """
    finetuned = {name: p.detach().clone() for name, p in model.named_parameters()}
    if accuracy is not None:

        def accuracy_at(candidate: float) -> float:
            negate_task_vector(model, original, finetuned, candidate)
            return accuracy(model)

        scale = largest_scale_within(accuracy_at, tolerance)
    negate_task_vector(model, original, finetuned, scale)
    say(f"negated the task vector with λ = {scale:g}")
    return scale


@dataclass
class NegatedTaskVector(Objective):
    """Base of the methods whose training moves toward the forget data (stage 1) and whose
    ``finalize`` subtracts that move (stage 2): task arithmetic and SKU.

    After ``finalize``, ``chosen_scale`` holds the λ used (the selected one under
    ``select_scale``); it is a result, not a hyper-parameter, so ``params()`` omits it and
    ``outcome()`` records it (``method_outcome.scale`` in the run's manifest).
    """

    scale: float = 1.0
    """λ in θ_orig − λ·(θ_ft − θ_orig) (1.0, SKU's code's; Ilharco et al. choose it on held-out
    data, as ``select_scale`` does); ignored when ``select_scale`` is on."""
    select_scale: bool = False
    """Choose λ from ``SCALE_GRID`` on the first ``validation_size`` retain questions: the
    largest whose greedy accuracy stays within ``tolerance`` of the original model's."""
    tolerance: float = 0.05
    """Retain accuracy that ``select_scale`` may give up (absolute; 0.05 = 5 points)."""
    validation_size: int = 50
    """How many retain questions ``select_scale`` answers per λ tried."""

    def prepare_negation(
        self, context: TrainingContext, original: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        """Keep θ_orig (``original``, else a CPU snapshot of the model) and λ's validation set."""
        self.chosen_scale: float | None = None
        self._original = original if original is not None else parameter_snapshot(context.model)
        self._tokenizer = context.tokenizer
        self._score = context.answer_accuracy
        if self.select_scale and self._score is None:
            raise ObliviateError(
                f"method '{self.name}' with select_scale=true needs an answer scorer to choose "
                "λ; run it through obliviate unlearn (or give TrainingContext.answer_accuracy)"
            )
        self._validation = (
            validation_records(context.retain_records, self.validation_size, self.name)
            if self.select_scale
            else []
        )

    def finalize(self, model: torch.nn.Module) -> None:
        accuracy = (
            (lambda m: self._score(m, self._tokenizer, self._validation))
            if self.select_scale
            else None
        )
        self.chosen_scale = finish_negation(
            model, self._original, self.scale, accuracy, self.tolerance
        )

    def outcome(self) -> dict[str, Any]:
        return {"scale": self.chosen_scale}
