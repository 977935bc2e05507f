"""Our TOFU figures against TOFU's own published evaluation logs.

The data (``shared/data/tofu/eval-logs``, MIT, CMU Locus Lab) holds the per-example
records of two Llama-2-7b models from TOFU's repository and ``expected.json``, the
aggregates TOFU's ``aggregate_eval_stat.py`` computes from them. Reproducing those
figures to 1e-9 is what lets us claim our numbers are comparable with the paper's: first
with the statistics functions, then through the path ``obliviate eval`` runs (TOFU's own
Real Authors and World Facts files read by ``evaluation_splits``, every registered metric
by ``runner.score_split``, forget quality and model utility by ``suite.results_document``),
with ROUGE re-scored from the logged answers rather than read from the logs.

``shared/`` sits beside the repository (``../shared`` from its root; CI checks it out
there) or inside it; without it the tests that need it fail, they are not skipped. The
hand-computed unit tests at the bottom need no data.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from obliviate.data.records import Record
from obliviate.data.scenario import evaluation_splits
from obliviate.evaluation.metrics import SplitOutputs
from obliviate.evaluation.mia import TokenStats
from obliviate.evaluation.runner import score_split
from obliviate.evaluation.statistics import (
    answer_probability,
    forget_quality,
    model_utility,
    normalized_answer_probability,
    rouge_recall,
    truth_ratio_score,
    truth_ratios,
)
from obliviate.evaluation.suite import ModelEvaluation, results_document

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where ``shared/`` may be: beside the repository (CI, and the usual checkout), or in it.
SHARED_CANDIDATES = (REPO_ROOT.parent / "shared", REPO_ROOT / "shared")

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


@cache
def _tofu() -> Path:
    """``shared/data/tofu``; the test fails (it is not skipped) when it is missing."""
    for shared in SHARED_CANDIDATES:
        if (shared / "data" / "tofu" / "eval-logs" / "expected.json").is_file():
            return shared / "data" / "tofu"
    tried = " or ".join(str(s) for s in SHARED_CANDIDATES)
    pytest.fail(
        f"TOFU's evaluation logs are missing: no data/tofu/eval-logs/expected.json under {tried}; "
        "check out shared/ beside the repository",
        pytrace=False,
    )


@cache
def _records(model: str, split: str) -> tuple[dict[str, Any], ...]:
    path = _tofu() / "eval-logs" / f"{model}.{split}.jsonl"
    with path.open(encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


@cache
def _expected() -> dict[str, Any]:
    return json.loads((_tofu() / "eval-logs" / "expected.json").read_text(encoding="utf-8"))


def _split_figures(model: str, split: str) -> dict[str, float]:
    """Our Probability, ROUGE (re-scored from the logged answers) and Truth Ratio for one
    model and split, from the statistics functions."""
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
        "rougeL_recall": float(np.mean([rouge_recall(r["answer"], r["generated"]) for r in rows])),
        "truth_ratio": truth_ratio_score(ratios, forget=split == "forget10"),
    }


def _forget_ratios(model: str) -> np.ndarray:
    rows = _records(model, "forget10")
    return truth_ratios(
        [r["avg_paraphrased_loss"] for r in rows], [r["average_perturb_loss"] for r in rows]
    )


# ------------------------------------------------------------------- against TOFU's logs


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("model", MODELS)
def test_split_figures_match_tofu(model: str, split: str) -> None:
    expected = _expected()["models"][model]["splits"][split]
    assert len(_records(model, split)) == expected["n"]
    ours = _split_figures(model, split)
    for key, value in ours.items():
        assert value == pytest.approx(expected[key], abs=TOL, rel=0), f"{model} {split} {key}"


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


def test_forget_quality_full_vs_retain90() -> None:
    expected = _expected()["models"][FULL]
    assert expected["forget_quality"] == FULL_FORGET_QUALITY
    p_value, statistic = forget_quality(_forget_ratios(FULL), _forget_ratios(RETAIN90))
    assert p_value == pytest.approx(FULL_FORGET_QUALITY, rel=1e-6, abs=0)
    assert statistic == pytest.approx(expected["ks_statistic"], abs=TOL, rel=0)
    assert statistic == pytest.approx(119 / 300, abs=TOL, rel=0)


def test_forget_quality_is_rank_based() -> None:
    """1/R and TOFU's stored float32 per-example ``truth_ratio`` give the same p-value."""
    full, oracle = _forget_ratios(FULL), _forget_ratios(RETAIN90)
    stored = [[r["truth_ratio"] for r in _records(model, "forget10")] for model in (FULL, RETAIN90)]
    reference = forget_quality(full, oracle)
    assert forget_quality(1 / full, 1 / oracle) == pytest.approx(reference, rel=1e-12)
    assert forget_quality(*stored) == pytest.approx(reference, rel=1e-12)


def test_forget_quality_oracle_against_itself() -> None:
    oracle = _forget_ratios(RETAIN90)
    assert forget_quality(oracle, oracle) == (1.0, 0.0)
    expected = _expected()["models"][RETAIN90]
    assert (expected["forget_quality"], expected["ks_statistic"]) == (1.0, 0.0)


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


# ------------------------------------------------- through obliviate eval's own code path

#: TOFU's split names in the logs → ours in results.json.
OUR_SPLIT = {
    "retain": "retain",
    "forget10": "forget",
    "real_authors": "real_authors",
    "world_facts": "world_facts",
}


def _logged(answer: str, loss: float) -> TokenStats:
    """One logged answer as the scoring pass would give it: its per-token loss as a single
    mean log-probability (every TOFU figure reads only the mean)."""
    return TokenStats(logprobs=(-loss,), mu=(0.0,), sigma=(0.0,), text=answer)


def _splits(tmp: Path) -> dict[str, list[Record]]:
    """The four splits as ``obliviate eval`` reads them: TOFU's own Real Authors and World
    Facts files as they are (``--real-authors``, ``--world-facts``), and the logs'
    forget10 and retain questions in TOFU's fields as the user's ``--forget``/``--retain``."""
    own = {}
    for split in ("forget10", "retain"):
        own[split] = tmp / f"{split}.json"
        rows = (
            json.dumps({"question": r["question"], "answer": r["answer"]})
            for r in _records(FULL, split)
        )
        own[split].write_text("\n".join(rows) + "\n", encoding="utf-8")
    return evaluation_splits(
        None,
        "forget10",
        forget=own["forget10"],
        retain=own["retain"],
        real_authors=_tofu() / "real_authors_perturbed.jsonl",
        world_facts=_tofu() / "world_facts_perturbed.jsonl",
    )


def _evaluation(model: str, splits: dict[str, list[Record]]) -> ModelEvaluation:
    """One model's logged outputs, scored by every registered metric (``score_split``)."""
    results = {}
    for split, ours in OUR_SPLIT.items():
        rows, records = _records(model, split), splits[ours]
        assert [r.prompt for r in records] == [row["question"] for row in rows], split
        outputs = SplitOutputs(
            split=ours,
            records=records,
            generated=[row["generated"] for row in rows],
            answer=[_logged(row["answer"], row["avg_gt_loss"]) for row in rows],
            paraphrased=[_logged(row["answer"], row["avg_paraphrased_loss"]) for row in rows],
            perturbed=[[_logged("", loss) for loss in row["average_perturb_loss"]] for row in rows],
        )
        results[ours] = score_split(outputs)
    return ModelEvaluation(model, f"tofu/{model}", results, eval_seconds=0.0, eval_peak_rss_mb=0.0)


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """results.json of the full model, with itself as the target and retain90 as the oracle."""
    splits = _splits(tmp_path_factory.mktemp("tofu"))
    full, oracle = _evaluation(FULL, splits), _evaluation(RETAIN90, splits)
    return results_document({"model": full, "target": full, "oracle": oracle}, "model", "forget10")


def test_tofus_own_files_load_as_they_are() -> None:
    """``real_authors_perturbed.json`` and ``world_facts_perturbed.json``: TOFU's fields
    (question, answer, perturbed_answer), three wrong answers each, in the logs' order."""
    splits = evaluation_splits(
        None,
        "forget10",
        forget=_tofu() / "real_authors_perturbed.jsonl",
        real_authors=_tofu() / "real_authors_perturbed.jsonl",
        world_facts=_tofu() / "world_facts_perturbed.jsonl",
    )
    assert (len(splits["real_authors"]), len(splits["world_facts"])) == (100, 117)
    for split in ("real_authors", "world_facts"):
        assert all(len(r.perturbed) == 3 for r in splits[split])
        logged = [(row["question"], row["answer"]) for row in _records(FULL, split)]
        assert [(r.prompt, r.answer) for r in splits[split]] == logged


@pytest.mark.parametrize("entry", ["model", "oracle"])
def test_model_utility_through_the_suite_matches_tofu(document: dict[str, Any], entry: str) -> None:
    """TOFU's Model Utility of the full model, 0.6226773637, from obliviate eval's functions."""
    model = FULL if entry == "model" else RETAIN90
    results = document if entry == "model" else document["reference"]["oracle"]
    expected = _expected()["models"][model]["model_utility"]
    assert results["model_utility"] == pytest.approx(expected, abs=TOL, rel=0)
    assert results["model_utility_inputs"] == [
        "retain.prob", "retain.rouge_l", "retain.truth_ratio",
        "real_authors.prob_normalized", "real_authors.rouge_l", "real_authors.truth_ratio",
        "world_facts.prob_normalized", "world_facts.rouge_l", "world_facts.truth_ratio",
    ]  # fmt: skip
    if entry == "model":
        assert round(results["model_utility"], 10) == 0.6226773637


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("entry", ["model", "oracle"])
def test_registry_figures_match_tofu(document: dict[str, Any], entry: str, split: str) -> None:
    """Every split's Probability, ROUGE (re-scored from the answers) and Truth Ratio, as the
    metric registry computes them, against TOFU's aggregates of its stored values."""
    model = FULL if entry == "model" else RETAIN90
    results = document if entry == "model" else document["reference"]["oracle"]
    expected = _expected()["models"][model]["splits"][split]
    figures = results["splits"][OUR_SPLIT[split]]
    prob = "prob_normalized" if split in CHOICE_SPLITS else "prob"
    assert figures["n"] == expected["n"]
    assert figures[prob] == pytest.approx(expected["prob"], abs=TOL, rel=0)
    assert figures["rouge_l"] == pytest.approx(expected["rougeL_recall"], abs=TOL, rel=0)
    assert figures["truth_ratio"] == pytest.approx(expected["truth_ratio"], abs=TOL, rel=0)


def test_forget_quality_through_the_suite_with_its_ks_statistic_and_sizes(
    document: dict[str, Any],
) -> None:
    expected = _expected()["models"][FULL]
    assert document["forget_quality"] == pytest.approx(expected["forget_quality"], rel=1e-6, abs=0)
    assert document["forget_quality_ks"] == pytest.approx(expected["ks_statistic"], abs=TOL, rel=0)
    assert document["forget_quality_n"] == {"model": 300, "oracle": 300}
    # the target here is the full model itself: its forget quality at the same n is the model's
    assert document["forget_quality_target"] == document["forget_quality"]
    oracle = document["reference"]["oracle"]
    assert (oracle["forget_quality"], oracle["forget_quality_ks"]) == (1.0, 0.0)


def test_prob_mean_truth_ratio_is_the_correct_share_against_the_wrong_answers(
    document: dict[str, Any],
) -> None:
    """open-unlearning's prob_mean: mean of p_para / (p_para + p_wrong), p_wrong the wrong
    answers' geometric-mean probability, worked out here from the logged losses."""
    for split in SPLITS:
        shares = [
            math.exp(-r["avg_paraphrased_loss"])
            / (math.exp(-r["avg_paraphrased_loss"]) + math.exp(-np.mean(r["average_perturb_loss"])))
            for r in _records(FULL, split)
        ]
        figure = document["splits"][OUR_SPLIT[split]]["truth_ratio_prob_mean"]
        assert figure == pytest.approx(float(np.mean(shares)), abs=1e-12), split


def test_knowmem_is_muses_rouge_l_f1_and_lower_than_tofus_recall(document: dict[str, Any]) -> None:
    """KnowMem on the logged answers: ROUGE-L F1 without a stemmer, below the recall when
    the model answers in sentences (World Facts' one-word gold answers)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rows = _records(FULL, "world_facts")
    f1 = np.mean([scorer.score(r["answer"], r["generated"])["rougeL"].fmeasure for r in rows])
    world = document["splits"]["world_facts"]
    assert world["knowmem"] == pytest.approx(float(f1), abs=1e-12)
    assert world["knowmem"] < world["rouge_l"] - 0.3


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
