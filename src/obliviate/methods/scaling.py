"""Task-vector negation and the choice of its scale λ (task arithmetic, SKU's second stage).

Task arithmetic (Ilharco et al., 2023, "Editing models with task arithmetic") subtracts
what a fine-tune toward the forget data added: τ = θ_ft − θ_orig, θ_new = θ_orig − λ·τ.
λ trades forgetting for utility, and no single value suits every model and data set, so
``select_scale`` picks it on held-out data: the largest λ of a grid whose utility on
retain data stays within a tolerance of the original model's. Utility is greedy answer
accuracy on retain questions (``select_by=accuracy``, short answers) or the perplexity of
the retain answers (``select_by=perplexity``: answers that are sentences change wording
long before they lose likelihood, so accuracy rejects every λ that does anything). The
utility function is a parameter, so the rule is tested with a fake one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.methods.base import Objective, TrainingContext, answer_logprob_sums
from obliviate.models.encoding import Encoded, collate
from obliviate.progress import say

SELECT_BY = ("accuracy", "perplexity")
"""What ``select_scale`` keeps within its tolerance: retain accuracy or retain perplexity."""

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
    utility: Callable[[float], float],
    tolerance: float,
    grid: Sequence[float] = SCALE_GRID,
) -> float:
    """The largest λ in ``grid`` with ``utility(λ) ≥ utility(0) − tolerance``.

    ``utility(0)`` is the original model's (higher is better). λ values are tried from the
    largest down and the first that passes is taken, so a non-monotone utility curve is
    still answered correctly and no λ above the answer is evaluated twice. When none
    passes, the smallest λ of the grid is returned: the gentlest negation on offer.
    """
    baseline = utility(0.0)
    for scale in sorted(grid, reverse=True):
        if utility(scale) >= baseline - tolerance:
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


@torch.no_grad()
def answer_logprob(
    model: torch.nn.Module, examples: Sequence[Encoded], pad_token_id: int, batch_size: int = 16
) -> float:
    """Mean log-probability per answer token over ``examples``: −log of their perplexity."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_token_id)
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
        total += float(answer_logprob_sums(model, batch).sum())
    model.train(was_training)
    return total / max(sum(e.n_label_tokens for e in examples), 1)


def finish_negation(
    model: torch.nn.Module,
    original: Mapping[str, torch.Tensor],
    scale: float,
    utility: Callable[[torch.nn.Module], float] | None = None,
    tolerance: float = 0.05,
) -> float:
    """Negate the task vector that training wrote into ``model``; return the λ used.

    With ``utility`` (a model's retain accuracy, or its retain answers' log-probability), λ
    is ``largest_scale_within`` the tolerance; otherwise ``scale``. The fine-tuned weights
    are copied once, on their device, so every λ tried starts from them.
    """
    finetuned = {name: p.detach().clone() for name, p in model.named_parameters()}
    if utility is not None:

        def utility_at(candidate: float) -> float:
            negate_task_vector(model, original, finetuned, candidate)
            return utility(model)

        scale = largest_scale_within(utility_at, tolerance)
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
    """Choose λ from ``SCALE_GRID`` on the first ``validation_size`` retain records: the
    largest whose utility (``select_by``) stays within ``tolerance`` of the original's."""
    select_by: str = "accuracy"
    """``select_scale``'s utility: ``accuracy`` (greedy answers to retain questions holding
    the gold answer) or ``perplexity`` (of the retain answers, teacher-forced; for answers
    that are sentences, as a behaviour's normal requests)."""
    tolerance: float = 0.05
    """Utility ``select_scale`` may give up: 0.05 is 5 points of accuracy, or a retain
    perplexity at most 1.05 × the original's."""
    validation_size: int = 50
    """How many retain records ``select_scale`` scores per λ tried."""

    def __post_init__(self) -> None:
        if self.select_by not in SELECT_BY:
            raise ObliviateError(f"{self.name}'s select_by must be one of {', '.join(SELECT_BY)}")

    def prepare_negation(
        self, context: TrainingContext, original: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        """Keep θ_orig (``original``, else a CPU snapshot of the model) and λ's utility on
        its validation set (the model in, a figure out: higher is better)."""
        self.chosen_scale: float | None = None
        self._original = original if original is not None else parameter_snapshot(context.model)
        self._utility: Callable[[torch.nn.Module], float] | None = None
        if not self.select_scale:
            return
        if self.select_by == "perplexity":
            examples = list(context.retain or [])[: self.validation_size]
            if not examples:
                raise ObliviateError(
                    f"method '{self.name}' with select_scale=true needs retain data to choose "
                    "λ on; pass --retain FILE (or set select_scale=false)"
                )
            pad = context.tokenizer.pad_token_id
            self._utility = lambda model: answer_logprob(model, examples, pad)
            return
        score, tokenizer = context.answer_accuracy, context.tokenizer
        if score is None:
            raise ObliviateError(
                f"method '{self.name}' with select_scale=true needs an answer scorer to choose "
                "λ; run it through obliviate unlearn (or give TrainingContext.answer_accuracy)"
            )
        questions = validation_records(context.retain_records, self.validation_size, self.name)
        self._utility = lambda model: score(model, tokenizer, questions)

    def finalize(self, model: torch.nn.Module) -> None:
        # Mean answer log-probability is −log perplexity: a ratio ≤ 1 + tolerance is a
        # fall of at most log(1 + tolerance).
        tolerance = math.log1p(self.tolerance) if self.select_by == "perplexity" else self.tolerance
        self.chosen_scale = finish_negation(
            model, self._original, self.scale, self._utility, tolerance
        )

    def outcome(self) -> dict[str, Any]:
        return {"scale": self.chosen_scale}
