"""``diff``: an attacker who holds the model before and after unlearning.

Whoever kept the old checkpoint can compare it with the new one. Every candidate fact
(forget, retained and holdout records) is scored by how much more likely the model
before unlearning finds its answer than the model after; the facts that dropped most are
the ones that were deleted. ``auc`` says how well that ranking singles out the forget
set; the attacker then reads the answers of its top-ranked questions off the old model,
and ``after.accuracy`` is the fraction of forget facts extracted that way. The same
attack against the target/oracle pair shows how much even exact retraining gives away
to someone holding both checkpoints (the uplift is what unlearning gives away beyond it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    NotApplicable,
    Score,
    VariantResult,
    calibrating,
    calibration,
    plain,
    register_attack,
)
from obliviate.data.answers import answer_matches
from obliviate.data.records import Record
from obliviate.evaluation.model_outputs import answer_logprobs
from obliviate.models.loader import LoadedModel, load_model

#: Retained records among the candidates (holdout records join them all).
RETAIN_CANDIDATES = {"small": 100, "full": 400}


def _logprobs(loaded: LoadedModel, records: list[Record]) -> np.ndarray:
    """Per record: the mean log-probability of its answer."""
    pairs = [(r.prompt, r.answer) for r in records]
    return np.asarray(answer_logprobs(loaded.model, loaded.tokenizer, pairs))


@dataclass(frozen=True)
class OldModel:
    """What the attacker reads off the model before unlearning, per candidate: the mean
    log-probability of the answer, whether its greedy answer is right, and TOFU's
    probability. The same for every attacked model, so computed once per audit."""

    logprobs: np.ndarray
    correct: np.ndarray
    probs: np.ndarray


def old_model_figures(ctx: AuditContext, candidates: list[Record]) -> OldModel:
    """The target's figures on ``candidates``, computed on first use and kept in
    ``ctx.shared`` for the next attacked model (the oracle after the unlearned model)."""
    key = ("diff", ctx.target, ctx.precision, tuple(r.id for r in candidates))
    if key not in ctx.shared:
        old = load_model(ctx.target)
        old_asker = Asker(old, ctx.precision, ctx.max_new_tokens)
        questions = plain(candidates)
        answers = old_asker.answers(questions)
        ctx.shared[key] = OldModel(
            logprobs=_logprobs(old, candidates),
            correct=np.array(
                [answer_matches(r.answer, a) for r, a in zip(candidates, answers, strict=True)]
            ),
            probs=np.array([old_asker.score([q]).prob for q in questions]),
        )
    return ctx.shared[key]


def extraction(
    scores: np.ndarray,
    is_forget: np.ndarray,
    correct_before: np.ndarray,
    prob_before: np.ndarray,
    seed: int = 0,
) -> Score:
    """What the attacker gets by answering, from the old model, the questions it ranks in
    the top |forget|: the fraction of forget facts among them answered right, and the
    old model's probability of those answers (0 for forget facts it did not pick). Ties
    are broken at random, so identical models give away no more than chance."""
    k = int(is_forget.sum())
    tie_break = np.random.default_rng(seed).random(len(scores))
    picked = np.zeros(len(scores), dtype=bool)
    picked[np.lexsort((tie_break, -scores))[:k]] = True
    hit = picked & is_forget
    return Score(
        accuracy=float((hit & correct_before).sum() / k),
        prob=float((prob_before * hit).sum() / k),
        n=k,
    )


@register_attack(
    "diff",
    "rank facts by how much less likely they became; read the top ones off the old model",
    lambda ctx: {
        "before": "the target",
        "candidates": f"forget, holdout and up to {RETAIN_CANDIDATES[ctx.budget]} retained",
        "extraction": "the old model's greedy answers to the top-|forget| ranked questions",
    },
)
def diff(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    if ctx.target is None:
        raise NotApplicable("the attacker holds the model before unlearning; give --target")
    forget = ctx.forget
    others = ctx.holdout + ctx.retain[: RETAIN_CANDIDATES[ctx.budget]]
    if not others:
        raise NotApplicable("no retained or holdout records to rank the forget set among")
    if calibrating(ctx, role):  # the target against itself gives nothing away
        return calibration(asker, {"default": forget})
    candidates = forget + others
    is_forget = np.array([True] * len(forget) + [False] * len(others))
    old = old_model_figures(ctx, candidates)
    scores = old.logprobs - _logprobs(loaded, candidates)
    after = extraction(scores, is_forget, old.correct, old.probs, ctx.seed)
    auc = float(roc_auc_score(is_forget, scores))
    return {
        "default": VariantResult(
            Measurement(
                asker.score(plain(forget)), after, {"auc": auc, "candidates": len(candidates)}
            )
        )
    }
