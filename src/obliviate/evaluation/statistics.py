"""TOFU's aggregate statistics, computed from per-example figures.

These functions reproduce ``aggregate_eval_stat.py`` of TOFU (Maini et al., 2024,
"TOFU: A Task of Fictitious Unlearning for LLMs", github.com/locuslab/tofu), whose
figures are the ones the paper reports. They take plain per-example numbers (per-token
losses, ROUGE recalls) so they can be checked against TOFU's published evaluation logs
without a model; nothing here imports torch.

Conventions, following TOFU:

* every loss is a *per-token* (length-normalised) cross-entropy in nats, so
  ``exp(-loss)`` is the geometric-mean token probability of an answer;
* "perturbed" losses are a list per example (one entry per wrong answer); the lists may
  have different lengths from one example to the next;
* inputs must be finite: a NaN or infinite loss means something upstream is broken, and
  letting it through would turn an aggregate into NaN silently, so it raises
  ``ValueError`` instead. Empty inputs raise ``ValueError`` too, because the mean of
  nothing is NaN.

Every aggregate is returned as a Python ``float``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from rouge_score.rouge_scorer import RougeScorer
    from rouge_score.scoring import Score

__all__ = [
    "ROUGE_KINDS",
    "answer_probability",
    "forget_quality",
    "model_utility",
    "normalized_answer_probability",
    "rouge_f1",
    "rouge_recall",
    "truth_ratio_prob_mean",
    "truth_ratio_score",
    "truth_ratios",
]

#: The ROUGE variants TOFU computes; ``rougeL`` is the one its "ROUGE" figure reports.
ROUGE_KINDS: tuple[str, ...] = ("rouge1", "rougeL")


# --------------------------------------------------------------------------- validation


def _vector(values: ArrayLike, name: str, *, allow_inf: bool = False) -> np.ndarray:
    """Return ``values`` as a non-empty 1-D float64 array, or raise ``ValueError``.

    ``allow_inf`` admits ``+inf`` (a truth ratio overflows to it for extreme losses);
    NaN and negative infinity are always rejected.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a flat sequence of numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one number per example), got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty: an aggregate over no examples is undefined")
    bad = np.isnan(arr) | (arr == -np.inf) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} holds {int(bad.sum())} non-finite value(s), the first at index {i} "
            f"({arr[i]!r}); refusing to aggregate them into a NaN"
        )
    return arr


def _rows(values: Sequence[ArrayLike], name: str) -> list[np.ndarray]:
    """Validate a (possibly ragged) list of per-example lists of finite losses."""
    if isinstance(values, np.ndarray) and values.ndim == 2:
        values = list(values)
    try:
        n = len(values)
    except TypeError as exc:
        raise ValueError(f"{name} must be a list with one list of losses per example") from exc
    if n == 0:
        raise ValueError(f"{name} is empty: an aggregate over no examples is undefined")
    rows = []
    for i, row in enumerate(values):
        arr = _vector(row, f"{name}[{i}]")
        rows.append(arr)
    return rows


def _same_length(a: np.ndarray, b: Sequence[object], a_name: str, b_name: str) -> None:
    if len(a) != len(b):
        raise ValueError(
            f"{a_name} has {len(a)} examples but {b_name} has {len(b)}: they must be paired"
        )


def _row_means(rows: list[np.ndarray]) -> np.ndarray:
    """Per-example mean of the perturbed losses.

    When every example has the same number of perturbed answers this is TOFU's own
    ``array.mean(axis=-1)`` (so the rounding is identical); ragged rows fall back to a
    mean per row.
    """
    if len({r.size for r in rows}) == 1:
        return np.stack(rows).mean(axis=-1)
    return np.array([r.mean() for r in rows], dtype=np.float64)


# ------------------------------------------------------------------------- probability


def answer_probability(avg_answer_loss: ArrayLike) -> float:
    """TOFU's "Probability" on the retain and forget splits: ``mean(exp(-loss))``.

    ``avg_answer_loss`` is the per-token loss of each gold answer, so ``exp(-loss)`` is
    the length-normalised probability ``P(a|q)^(1/|a|)`` of the paper; normalising by
    length keeps long answers from dominating the mean.
    """
    loss = _vector(avg_answer_loss, "avg_answer_loss")
    return float(np.mean(np.exp(-loss)))


def normalized_answer_probability(
    avg_answer_loss: ArrayLike, avg_perturbed_losses: Sequence[ArrayLike]
) -> float:
    """TOFU's "Probability" on Real Authors and World Facts: ``mean(p / (p + sum_j p_j))``.

    With ``p = exp(-avg_answer_loss)`` and ``p_j = exp(-avg_perturbed_losses[j])``. These
    splits are multiple choice, so the paper scores the correct answer's share of the
    probability mass among all the options rather than its raw probability.

    Every row is shifted by its smallest loss before exponentiating; the ratio is the
    same, but the denominator is then at least 1, so very large losses cannot underflow
    it to ``0/0 = NaN``. On TOFU's logs this matches TOFU's direct formula to within
    1e-16.
    """
    loss = _vector(avg_answer_loss, "avg_answer_loss")
    rows = _rows(avg_perturbed_losses, "avg_perturbed_losses")
    _same_length(loss, rows, "avg_answer_loss", "avg_perturbed_losses")
    shares = np.empty_like(loss)
    for i, (true_loss, pert) in enumerate(zip(loss, rows, strict=True)):
        all_losses = np.concatenate(([true_loss], pert))
        probs = np.exp(-(all_losses - all_losses.min()))
        shares[i] = probs[0] / probs.sum()
    return float(np.mean(shares))


# ------------------------------------------------------------------------- truth ratio


def truth_ratios(
    avg_paraphrased_loss: ArrayLike, avg_perturbed_losses: Sequence[ArrayLike]
) -> np.ndarray:
    """Per-example truth ratio ``R = exp(mean_j(pert_j) - para)``, as TOFU aggregates it.

    ``R`` is the paraphrased answer's length-normalised probability divided by the
    *geometric* mean of the perturbed answers' ones: above 1 the model prefers the
    correct (paraphrased) answer to wrong ones. This is the orientation of
    ``aggregate_eval_stat.py`` and the paper; note that the ``truth_ratio`` TOFU stores
    per example in its logs is ``1/R``, and that TOFU's in-training ``utils.py`` uses an
    arithmetic mean of the perturbed probabilities instead (its figures differ by up to
    about 0.12, so they are not reproduced here).

    ``R`` may be ``0`` or ``inf`` when ``exp`` under/overflows for extreme losses; the
    downstream scores handle both limits without producing NaN.
    """
    para = _vector(avg_paraphrased_loss, "avg_paraphrased_loss")
    rows = _rows(avg_perturbed_losses, "avg_perturbed_losses")
    _same_length(para, rows, "avg_paraphrased_loss", "avg_perturbed_losses")
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(_row_means(rows) - para)


def truth_ratio_score(ratios: ArrayLike, forget: bool) -> float:
    """TOFU's "Truth Ratio" figure from the per-example ratios ``R`` of :func:`truth_ratios`.

    * ``forget=True`` (forget split): ``mean(min(R, 1/R))``. A model that has forgotten
      should be indifferent between right and wrong answers (``R`` near 1) rather than
      confidently either way, so both directions away from 1 are penalised.
    * ``forget=False`` (retain, Real Authors, World Facts): ``mean(max(0, 1 - 1/R))``,
      rewarding a model that prefers the correct answer and scoring 0 when it does not.

    Limits: ``R = 0`` scores 0 either way; ``R = inf`` scores 0 on forget and 1 otherwise.
    """
    r = _vector(ratios, "ratios", allow_inf=True)
    if (r < 0).any():
        raise ValueError("ratios must be non-negative: a truth ratio is a ratio of probabilities")
    with np.errstate(divide="ignore"):
        inverse = 1.0 / r
    if forget:
        return float(np.mean(np.minimum(r, inverse)))
    return float(np.mean(np.maximum(0.0, 1.0 - inverse)))


def truth_ratio_prob_mean(ratios: ArrayLike) -> float:
    """open-unlearning's ``prob_mean`` truth-ratio aggregate: ``mean(p / (p + p_wrong))``.

    ``p`` is the paraphrased answer's length-normalised probability and ``p_wrong`` the
    geometric mean of the wrong answers' (``exp(-mean_j pert_j)``), so with ``R = p /
    p_wrong`` from :func:`truth_ratios` each record scores ``R / (1 + R)``: the correct
    answer's share of the pair, 1/2 for a model indifferent between right and wrong.
    Unlike TOFU's two forms it is the same on every split and never clips at 0, so it
    also tells apart how strongly a model prefers the wrong answers. Limits: ``R = 0``
    scores 0, ``R = inf`` scores 1.
    """
    r = _vector(ratios, "ratios", allow_inf=True)
    if (r < 0).any():
        raise ValueError("ratios must be non-negative: a truth ratio is a ratio of probabilities")
    with np.errstate(divide="ignore"):
        return float(np.mean(1.0 / (1.0 + 1.0 / r)))


# --------------------------------------------------------------- forget quality, utility


def forget_quality(model_ratios: ArrayLike, oracle_ratios: ArrayLike) -> tuple[float, float]:
    """TOFU's Forget Quality: the two-sample Kolmogorov-Smirnov test of truth ratios.

    ``model_ratios`` and ``oracle_ratios`` are the per-example ``R`` (untransformed, from
    :func:`truth_ratios`) on the forget split, for the unlearned model and for the oracle
    retrained without the forget set. Returns ``(p_value, statistic)``; the p-value is
    the Forget Quality: high means the two distributions cannot be told apart, i.e. the
    unlearned model behaves like one that never saw the forget set.

    Uses ``scipy.stats.ks_2samp`` with its default ``method='auto'`` exactly as TOFU does;
    for TOFU's sample sizes that is the exact p-value (the asymptotic one differs by a
    factor of about 2 at the 1e-21 level). The test depends only on the ranks, so ``R``,
    ``1/R`` and TOFU's stored per-example ``truth_ratio`` all give the same answer.
    """
    model = _vector(model_ratios, "model_ratios", allow_inf=True)
    oracle = _vector(oracle_ratios, "oracle_ratios", allow_inf=True)
    result = stats.ks_2samp(model, oracle)
    return float(result.pvalue), float(result.statistic)


def model_utility(figures: Sequence[float]) -> float:
    """TOFU's Model Utility: the harmonic mean of the non-forget figures.

    In TOFU these are nine numbers, {ROUGE, Probability, Truth Ratio} on each of the
    retain, Real Authors and World Facts splits (nothing from the forget split). The
    harmonic mean is used so that utility collapses when any one ability does.

    If any figure is exactly 0 the result is 0.0: that is the limit of the harmonic mean
    as one term goes to 0 (its reciprocal diverges), and it is the meaning TOFU intends
    (a model with no ability on some axis has no utility). Returning it explicitly rather
    than leaving it to ``scipy.stats.hmean`` avoids a divide-by-zero that older SciPy
    versions reported with a warning or an error. Negative figures raise ``ValueError``,
    since every TOFU figure lies in [0, 1] and the harmonic mean is undefined for them.
    """
    values = _vector(figures, "figures")
    if (values < 0).any():
        raise ValueError(
            f"figures must be non-negative to take a harmonic mean, got {values.tolist()}"
        )
    if (values == 0).any():
        return 0.0
    return float(stats.hmean(values))


# ------------------------------------------------------------------------------- ROUGE


@lru_cache(maxsize=2)
def _scorer(stemmer: bool) -> RougeScorer:
    """Build a ROUGE scorer once; constructing it (and its stemmer) per call is slow."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_KINDS), use_stemmer=stemmer)


def rouge_recall(gold: str, generated: str, kind: str = "rougeL", *, stemmer: bool = True) -> float:
    """ROUGE recall of ``generated`` against the ``gold`` answer, as TOFU computes it.

    ``RougeScorer(['rouge1', 'rougeL'], use_stemmer=True).score(gold, generated)``, keeping
    ``.recall``: the fraction of the gold answer recovered by the generation, so a long
    answer that contains the gold one still scores 1. The Porter stemmer matters: without
    it a few percent of TOFU's stored values are not reproduced. ``kind`` is ``"rougeL"``
    (TOFU's reported "ROUGE") or ``"rouge1"``. An empty gold answer scores 0.0.
    """
    return float(_rouge(gold, generated, kind, stemmer).recall)


def rouge_f1(gold: str, generated: str, kind: str = "rougeL", *, stemmer: bool = False) -> float:
    """ROUGE F1 of ``generated`` against ``gold``, as MUSE computes it.

    MUSE's VerbMem and KnowMem (``mean_rougeL``: the F-measure) with MUSE's scorer,
    ``RougeScorer([...], use_stemmer=False).score(gold, generated)``: no Porter stemmer,
    unlike TOFU's ROUGE (open-unlearning's ``rougeL_f1`` keeps TOFU's stemmer; pass
    ``stemmer=True`` for it). The F-measure weighs precision as much as recall, so a
    continuation or an answer that rambles on past the true one scores lower:
    ``rouge_f1('1980', 'He was born in 1980.')`` is 1/3 where the recall is 1.
    """
    return float(_rouge(gold, generated, kind, stemmer).fmeasure)


def _rouge(gold: str, generated: str, kind: str, stemmer: bool) -> Score:
    """The scorer's ``Score`` (precision, recall, fmeasure) of one kind, inputs checked."""
    if kind not in ROUGE_KINDS:
        raise ValueError(f"kind must be one of {ROUGE_KINDS}, got {kind!r}")
    if not isinstance(gold, str) or not isinstance(generated, str):
        raise ValueError(
            f"gold and generated must be strings, got {type(gold).__name__} "
            f"and {type(generated).__name__}"
        )
    return _scorer(stemmer).score(gold, generated)[kind]
