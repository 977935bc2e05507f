"""Our TOFU statistics against TOFU's own published evaluation logs.

The data (``shared/data/tofu/eval-logs``, MIT, CMU Locus Lab) holds the per-example
records of two Llama-2-7b models from TOFU's repository and ``expected.json``, the
aggregates TOFU's ``aggregate_eval_stat.py`` computes from them. Reproducing those
figures to 1e-9 is what lets us claim our numbers are comparable with the paper's.
The hand-computed unit tests at the bottom need no data and always run.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from obliviate.evaluate.statistics import (
    answer_probability,
    forget_quality,
    model_utility,
    normalized_answer_probability,
    rouge_recall,
    truth_ratio_score,
    truth_ratios,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tofu" / "eval-logs"

FULL = "llama2-7b_full_wd0.01"
RETAIN90 = "llama2-7b_retain90_wd0.01"
MODELS = (FULL, RETAIN90)
SPLITS = ("retain", "forget10", "real_authors", "world_facts")
#: Multiple-choice splits, whose "Probability" is the normalised share of the gold answer.
CHOICE_SPLITS = frozenset({"real_authors", "world_facts"})
#: Splits that go into Model Utility (everything but the forget split).
UTILITY_SPLITS = ("retain", "real_authors", "world_facts")
#: TOFU's published forget quality of the full model against the retain90 oracle.
FULL_FORGET_QUALITY = 1.834066410994743e-21

TOL = 1e-9

needs_data = pytest.mark.skipif(
    not (DATA / "expected.json").is_file(), reason=f"TOFU eval logs not found at {DATA}"
)


@cache
def _records(model: str, split: str) -> tuple[dict[str, Any], ...]:
    path = DATA / f"{model}.{split}.jsonl"
    with path.open(encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


@cache
def _expected() -> dict[str, Any]:
    return json.loads((DATA / "expected.json").read_text(encoding="utf-8"))


def _split_figures(model: str, split: str) -> dict[str, float]:
    """Our Probability, ROUGE and Truth Ratio for one model and split."""
    rows = _records(model, split)
    gt = [r["avg_gt_loss"] for r in rows]
    perturbed = [r["average_perturb_loss"] for r in rows]
    if split in CHOICE_SPLITS:
        prob = normalized_answer_probability(gt, perturbed)
    else:
        prob = answer_probability(gt)
    ratios = truth_ratios([r["avg_paraphrased_loss"] for r in rows], perturbed)
    return {
        "prob": prob,
        "rougeL_recall": float(np.mean([r["rougeL_recall"] for r in rows])),
        "truth_ratio": truth_ratio_score(ratios, forget=split == "forget10"),
    }


def _forget_ratios(model: str) -> np.ndarray:
    rows = _records(model, "forget10")
    return truth_ratios(
        [r["avg_paraphrased_loss"] for r in rows], [r["average_perturb_loss"] for r in rows]
    )


# ------------------------------------------------------------------- against TOFU's logs


@needs_data
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("model", MODELS)
def test_split_figures_match_tofu(model: str, split: str) -> None:
    expected = _expected()["models"][model]["splits"][split]
    assert len(_records(model, split)) == expected["n"]
    ours = _split_figures(model, split)
    for key, value in ours.items():
        assert value == pytest.approx(expected[key], abs=TOL, rel=0), f"{model} {split} {key}"


@needs_data
@pytest.mark.parametrize("model", MODELS)
def test_model_utility_matches_tofu(model: str) -> None:
    figures = [v for split in UTILITY_SPLITS for v in _split_figures(model, split).values()]
    assert len(figures) == 9
    expected = _expected()["models"][model]["model_utility"]
    assert model_utility(figures) == pytest.approx(expected, abs=TOL, rel=0)


#: TOFU's CSV column stems for our split names and figure keys.
CSV_SPLIT = {
    "retain": "Retain",
    "forget10": "Forget",
    "real_authors": "Real Authors",
    "world_facts": "Real World",
}
CSV_FIGURE = {"prob": "Prob.", "rougeL_recall": "ROUGE", "truth_ratio": "Truth Ratio"}


@needs_data
@pytest.mark.parametrize("model", MODELS)
def test_all_figures_match_tofu_script_csv(model: str) -> None:
    """The 14 columns TOFU's unmodified ``aggregate_eval_stat.py`` wrote, by their own names."""
    csv = _expected()["tofu_aggregate_eval_stat"][model]
    ours: dict[str, float] = {}
    for split in SPLITS:
        for key, value in _split_figures(model, split).items():
            ours[f"{CSV_FIGURE[key]} {CSV_SPLIT[split]}"] = value
    figures = [v for split in UTILITY_SPLITS for v in _split_figures(model, split).values()]
    ours["Model Utility"] = model_utility(figures)
    p_value, _ = forget_quality(_forget_ratios(model), _forget_ratios(RETAIN90))
    ours["Forget Quality"] = p_value
    assert ours.keys() == csv.keys()
    for name, value in csv.items():
        if name == "Forget Quality":
            assert ours[name] == pytest.approx(value, rel=1e-6, abs=0), name
        else:
            assert ours[name] == pytest.approx(value, abs=TOL, rel=0), name


@needs_data
def test_forget_quality_full_vs_retain90() -> None:
    expected = _expected()["models"][FULL]
    assert expected["forget_quality"] == FULL_FORGET_QUALITY
    p_value, statistic = forget_quality(_forget_ratios(FULL), _forget_ratios(RETAIN90))
    assert p_value == pytest.approx(FULL_FORGET_QUALITY, rel=1e-6, abs=0)
    assert statistic == pytest.approx(expected["ks_statistic"], abs=TOL, rel=0)
    assert statistic == pytest.approx(119 / 300, abs=TOL, rel=0)


@needs_data
def test_forget_quality_is_rank_based() -> None:
    """1/R and TOFU's stored float32 per-example ``truth_ratio`` give the same p-value."""
    full, oracle = _forget_ratios(FULL), _forget_ratios(RETAIN90)
    stored = [[r["truth_ratio"] for r in _records(model, "forget10")] for model in (FULL, RETAIN90)]
    reference = forget_quality(full, oracle)
    assert forget_quality(1 / full, 1 / oracle) == pytest.approx(reference, rel=1e-12)
    assert forget_quality(*stored) == pytest.approx(reference, rel=1e-12)


@needs_data
def test_forget_quality_oracle_against_itself() -> None:
    oracle = _forget_ratios(RETAIN90)
    assert forget_quality(oracle, oracle) == (1.0, 0.0)
    expected = _expected()["models"][RETAIN90]
    assert (expected["forget_quality"], expected["ks_statistic"]) == (1.0, 0.0)


@needs_data
@pytest.mark.parametrize("model", MODELS)
def test_rouge_rescoring_reproduces_every_stored_value(model: str) -> None:
    """Re-score all examples of all four splits: every stored recall is reproduced exactly."""
    mismatches = []
    for split in SPLITS:
        for r in _records(model, split):
            for kind in ("rougeL", "rouge1"):
                ours = rouge_recall(r["answer"], r["generated"], kind)
                if ours != r[f"{kind}_recall"]:
                    mismatches.append((split, r["id"], kind, ours, r[f"{kind}_recall"]))
    assert mismatches == []


# ------------------------------------------------------------ hand-computed unit tests


def test_answer_probability_by_hand() -> None:
    assert answer_probability([0.0, math.log(2.0)]) == pytest.approx((1.0 + 0.5) / 2)
    assert answer_probability([math.log(4.0)]) == pytest.approx(0.25)


def test_normalized_answer_probability_by_hand() -> None:
    # p_true = 1/2 against perturbed 1/4 and 1/4: 1/2 / (1/2 + 1/2) = 1/2
    # p_true = 1 against perturbed 1/3: 1 / (1 + 1/3) = 3/4
    losses = [math.log(2.0), 0.0]
    perturbed = [[math.log(4.0), math.log(4.0)], [math.log(3.0)]]  # ragged on purpose
    assert normalized_answer_probability(losses, perturbed) == pytest.approx((0.5 + 0.75) / 2)


def test_normalized_answer_probability_survives_huge_losses() -> None:
    """exp(-1000) underflows to 0, but the share is still well defined: no 0/0 NaN."""
    share = normalized_answer_probability([1000.0], [[1000.0 + math.log(3.0)]])
    assert share == pytest.approx(0.75)


def test_truth_ratios_by_hand() -> None:
    # R = exp(mean(pert) - para): mean(1, 3) - 1 = 1 -> e; mean(2) - 2 = 0 -> 1
    ratios = truth_ratios([1.0, 2.0], [[1.0, 3.0], [2.0]])
    np.testing.assert_allclose(ratios, [math.e, 1.0], rtol=1e-15)


def test_truth_ratio_score_by_hand() -> None:
    ratios = [2.0, 0.5, 1.0]
    # forget: min(R, 1/R) = 0.5, 0.5, 1
    assert truth_ratio_score(ratios, forget=True) == pytest.approx(2.0 / 3.0)
    # otherwise: max(0, 1 - 1/R) = 0.5, 0, 0
    assert truth_ratio_score(ratios, forget=False) == pytest.approx(0.5 / 3.0)


def test_truth_ratio_score_limits_give_no_nan() -> None:
    with np.errstate(invalid="raise"):  # an invalid operation is what would make a NaN
        ratios = truth_ratios([0.0, 1000.0], [[1000.0], [0.0]])  # R overflows / underflows
        np.testing.assert_array_equal(ratios, [math.inf, 0.0])
        assert truth_ratio_score(ratios, forget=True) == 0.0
        assert truth_ratio_score(ratios, forget=False) == 0.5


def test_forget_quality_by_hand() -> None:
    assert forget_quality([0.2, 0.5, 0.9], [0.2, 0.5, 0.9]) == (1.0, 0.0)
    # completely separated samples of 3: statistic 1, exact p-value 2 / C(6, 3) = 0.1
    p_value, statistic = forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert statistic == 1.0
    assert p_value == pytest.approx(0.1)


def test_model_utility_by_hand() -> None:
    assert model_utility([0.5, 1.0]) == pytest.approx(2.0 / 3.0)
    assert model_utility([0.25, 0.5, 1.0]) == pytest.approx(3.0 / (4.0 + 2.0 + 1.0))
    assert model_utility([0.5, 0.0, 1.0]) == 0.0


def test_rouge_recall_by_hand() -> None:
    # Recall against the gold answer: extra generated words do not hurt.
    assert rouge_recall("William Shakespeare", "It was written by William Shakespeare.") == 1.0
    # The Porter stemmer folds inflections: "writes" -> "write", "novels" -> "novel".
    assert rouge_recall("she writes novels", "she write novel") == 1.0
    # LCS of "a b c d" and "a c x" is "a c": recall 2/4; unigram overlap is also 2/4.
    assert rouge_recall("a b c d", "a c x") == pytest.approx(0.5)
    assert rouge_recall("a b c d", "d c", kind="rouge1") == pytest.approx(0.5)
    assert rouge_recall("a b c d", "d c", kind="rougeL") == pytest.approx(0.25)


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: answer_probability([]),
        lambda: normalized_answer_probability([], []),
        lambda: truth_ratios([], []),
        lambda: truth_ratio_score([], forget=True),
        lambda: forget_quality([], [1.0]),
        lambda: model_utility([]),
    ],
)
def test_empty_input_raises(call: Any) -> None:
    with pytest.raises(ValueError, match="empty"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: answer_probability([0.1, math.nan]),
        lambda: normalized_answer_probability([0.1], [[math.nan]]),
        lambda: truth_ratios([math.inf], [[1.0]]),
        lambda: truth_ratio_score([1.0, math.nan], forget=False),
        lambda: forget_quality([math.nan], [1.0]),
        lambda: model_utility([0.5, math.nan]),
    ],
)
def test_non_finite_input_raises(call: Any) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        call()


def test_other_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="paired"):
        truth_ratios([1.0, 2.0], [[1.0]])
    with pytest.raises(ValueError, match="empty"):
        truth_ratios([1.0], [[]])
    with pytest.raises(ValueError, match="non-negative"):
        model_utility([0.5, -0.1])
    with pytest.raises(ValueError, match="non-negative"):
        truth_ratio_score([-1.0], forget=True)
    with pytest.raises(ValueError, match="kind"):
        rouge_recall("a", "a", kind="rouge2")
