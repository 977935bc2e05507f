"""TOFU's statistics on inputs small enough to work out by hand (arithmetic in comments)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from rouge_score import rouge_scorer
from scipy import stats

from obliviate.evaluation.statistics import (
    answer_probability,
    forget_quality,
    model_utility,
    normalized_answer_probability,
    rouge_f1,
    rouge_recall,
    truth_ratio_prob_mean,
    truth_ratio_score,
    truth_ratios,
)

LN2, LN4 = math.log(2), math.log(4)
E2 = math.e**2

# ------------------------------------------------------------------------- probability


def test_answer_probability_is_the_mean_geometric_token_probability():
    # exp(-0) = 1, exp(-ln 2) = 0.5 -> mean 0.75
    assert answer_probability([0.0, LN2]) == pytest.approx(0.75)


def test_normalized_answer_probability_is_the_true_answers_share_of_the_mass():
    # example 1: p = 0.5, wrong answers 0.25 + 0.25 -> 0.5 / (0.5 + 0.5) = 1/2
    # example 2: p = 1, one wrong answer 0.5 (rows may be ragged) -> 1 / 1.5 = 2/3
    # mean = (1/2 + 2/3) / 2 = 7/12
    share = normalized_answer_probability([LN2, 0.0], [[LN4, LN4], [LN2]])
    assert share == pytest.approx(7 / 12)


def test_normalized_answer_probability_survives_losses_that_underflow_exp():
    # exp(-1000) is 0.0 in float64, yet the share is still 1 / (1 + 1) = 1/2
    assert normalized_answer_probability([1000.0], [[1000.0]]) == pytest.approx(0.5)


# ------------------------------------------------------------------------- truth ratio


def test_truth_ratio_uses_the_mean_perturbed_loss():
    # mean perturbed loss (2 + 4) / 2 = 3, paraphrased 1 -> R = exp(3 - 1) = e^2
    # ragged second row: mean 1, paraphrased 1 -> R = exp(0) = 1
    ratios = truth_ratios([1.0, 1.0], [[2.0, 4.0], [1.0]])
    np.testing.assert_allclose(ratios, [E2, 1.0])


def test_truth_ratio_score_on_forget_penalises_both_directions_away_from_one():
    # min(R, 1/R) over R = e^2, 1, 0.5 -> e^-2, 1, 0.5 -> mean (e^-2 + 1.5) / 3
    assert truth_ratio_score([E2, 1.0, 0.5], forget=True) == pytest.approx((math.exp(-2) + 1.5) / 3)


def test_truth_ratio_score_elsewhere_rewards_preferring_the_true_answer():
    # max(0, 1 - 1/R) over R = e^2, 1, 0.5 -> 1 - e^-2, 0, max(0, 1 - 2) = 0
    # mean (1 - e^-2) / 3
    assert truth_ratio_score([E2, 1.0, 0.5], forget=False) == pytest.approx((1 - math.exp(-2)) / 3)


@pytest.mark.parametrize(
    ("ratio", "forget", "expected"),
    [
        (0.0, True, 0.0),  # min(0, inf) = 0
        (0.0, False, 0.0),  # max(0, 1 - inf) = 0
        (math.inf, True, 0.0),  # min(inf, 0) = 0
        (math.inf, False, 1.0),  # max(0, 1 - 0) = 1
    ],
)
def test_truth_ratio_score_limits(ratio, forget, expected):
    assert truth_ratio_score([ratio], forget=forget) == expected


def test_truth_ratio_from_extreme_losses_overflows_to_inf_not_nan():
    # exp(1000 - 0) overflows float64 to inf; the non-forget score of inf is 1
    ratios = truth_ratios([0.0], [[1000.0]])
    assert ratios[0] == math.inf
    assert truth_ratio_score(ratios, forget=False) == 1.0


# ---------------------------------------------------------------------- forget quality


def test_forget_quality_of_identical_samples_is_one_with_statistic_zero():
    # the two empirical CDFs coincide everywhere: D = 0, and P(D >= 0) = 1
    assert forget_quality([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (1.0, 0.0)


def test_forget_quality_of_separated_samples_is_the_exact_permutation_probability():
    # D = 1 (all of one sample lies below all of the other). Under the null every one of
    # C(6, 3) = 20 ways to split the 6 pooled values into two groups of 3 is equally
    # likely, and exactly 2 of them (low/high or high/low) reach D = 1: p = 2/20 = 0.1
    p_value, statistic = forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert statistic == 1.0
    assert 2 / math.comb(6, 3) == 0.1
    assert p_value == pytest.approx(0.1)


def _ks_statistic(a: list[float], b: list[float]) -> float:
    """sup_x |F_a(x) - F_b(x)|, evaluated at every pooled point."""
    return max(
        abs(sum(v <= x for v in a) / len(a) - sum(v <= x for v in b) / len(b)) for x in a + b
    )


def test_forget_quality_matches_scipy_and_a_hand_enumeration():
    model, oracle = [0.1, 0.4, 0.7], [0.2, 0.3, 0.9, 1.2]
    # Pooled and sorted: 0.1a 0.2b 0.3b 0.4a 0.7a 0.9b 1.2b; F_a - F_b after each point:
    #   1/3-0, 1/3-1/4, 1/3-2/4, 2/3-2/4, 3/3-2/4, 1-3/4, 1-1 = 1/3, 1/12, -1/6, 1/6, 1/2, 1/4, 0
    # D = 1/2 (after 0.7).
    p_value, statistic = forget_quality(model, oracle)
    assert statistic == pytest.approx(0.5)
    reference = stats.ks_2samp(model, oracle)
    assert (p_value, statistic) == (pytest.approx(reference.pvalue), reference.statistic)
    # Exact p-value: the share of the C(7, 3) = 35 equally likely relabellings of the
    # pooled values whose D is at least the observed 1/2.
    pooled = model + oracle
    splits = [
        ([pooled[i] for i in idx], [pooled[i] for i in range(7) if i not in idx])
        for idx in combinations(range(7), 3)
    ]
    extreme = sum(_ks_statistic(a, b) >= 0.5 - 1e-12 for a, b in splits)
    assert p_value == pytest.approx(extreme / len(splits))


def test_forget_quality_depends_only_on_ranks_so_r_and_1_over_r_agree():
    model, oracle = np.array([0.5, 1.5, 3.0, 0.2]), np.array([1.1, 2.0, 4.0, 0.9, 5.0])
    assert forget_quality(model, oracle) == pytest.approx(forget_quality(1 / model, 1 / oracle))


# --------------------------------------------------------------------------- utility


def test_model_utility_is_the_harmonic_mean():
    # 2 / (1/0.5 + 1/1) = 2 / 3
    assert model_utility([0.5, 1.0]) == pytest.approx(2 / 3)
    # 3 / (1/0.25 + 1/0.5 + 1/1) = 3 / 7
    assert model_utility([0.25, 0.5, 1.0]) == pytest.approx(3 / 7)


def test_model_utility_collapses_to_zero_when_any_figure_is_zero():
    assert model_utility([0.9, 0.0, 0.8]) == 0.0


def test_model_utility_rejects_negative_figures():
    with pytest.raises(ValueError, match="non-negative"):
        model_utility([0.5, -0.1])


# ------------------------------------------------------------------------------- ROUGE


def test_rouge_recall_is_one_when_the_generation_contains_the_gold_answer():
    # LCS("the cat sat", "the cat sat on the mat") = 3 tokens, over 3 gold tokens
    assert rouge_recall("the cat sat", "the cat sat on the mat") == 1.0


def test_rouge_l_recall_is_the_lcs_over_the_gold_length():
    # LCS("a b c d", "a x c") = "a c", 2 tokens, over 4 gold tokens -> 0.5
    assert rouge_recall("a b c d", "a x c") == pytest.approx(0.5)


def test_rouge1_counts_unigrams_where_rouge_l_needs_their_order():
    # unigrams of "c a" in "a b c d": a, c -> 2/4; the LCS keeps one of them -> 1/4
    assert rouge_recall("a b c d", "c a", kind="rouge1") == pytest.approx(0.5)
    assert rouge_recall("a b c d", "c a", kind="rougeL") == pytest.approx(0.25)


def test_rouge_recall_stems_so_inflections_match():
    # Porter stemmer (tokens over 3 characters): "running" -> "run", "cats" -> "cat"
    assert rouge_recall("running cats", "run cat") == 1.0
    unstemmed = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    assert unstemmed.score("running cats", "run cat")["rougeL"].recall == 0.0


def test_rouge_recall_ignores_case_and_punctuation():
    assert rouge_recall("The Cat.", "the cat") == 1.0


def test_rouge_recall_of_an_empty_gold_answer_is_zero():
    assert rouge_recall("", "anything") == 0.0


def test_rouge_recall_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        rouge_recall("a", "a", kind="rouge2")


# ------------------------------------------------------------- the variants of other papers


def test_truth_ratio_prob_mean_is_the_correct_share_of_the_pair():
    # R = 1 (indifferent) -> 1/2; R = 3 -> 3/4; limits R = 0 -> 0 and R = inf -> 1
    assert truth_ratio_prob_mean([1.0, 3.0]) == pytest.approx((0.5 + 0.75) / 2)
    with np.errstate(all="raise"):
        assert truth_ratio_prob_mean([0.0, math.inf]) == 0.5


def test_rouge_f1_is_muses_unstemmed_f_measure():
    # "1980" against 5 words: precision 1/5, recall 1, F1 = 2 * (1/5) / (6/5) = 1/3
    assert rouge_f1("1980", "He was born in 1980.") == pytest.approx(1 / 3)
    assert rouge_recall("1980", "He was born in 1980.") == 1.0
    # no stemmer: "novels" is not "novel"; with TOFU's stemmer it is
    assert rouge_f1("novels", "novel") == 0.0
    assert rouge_f1("novels", "novel", stemmer=True) == 1.0
