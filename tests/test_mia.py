"""Membership-inference attacks and PrivLeak, checked against values worked out by hand."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

from obliviate.evaluation.mia import (
    ATTACKS,
    TokenStats,
    attack_scores,
    mia_aucs,
    privleak,
    roc_points,
)


def _stats(logprobs, mu=None, sigma=None, text="an answer") -> TokenStats:
    """A TokenStats whose mu/sigma default to -1/1 per token (they only matter to minkpp)."""
    n = len(logprobs)
    return TokenStats(
        logprobs=tuple(logprobs),
        mu=tuple(mu) if mu is not None else (-1.0,) * n,
        sigma=tuple(sigma) if sigma is not None else (1.0,) * n,
        text=text,
    )


FIVE = (-1.0, -3.0, -2.0, -4.0, -0.5)


# ------------------------------------------------------------------------- the attacks


def test_attack_scores_gives_every_attack_in_order_one_score_per_example():
    scores = attack_scores([_stats(FIVE), _stats((-1.0,))])
    assert tuple(scores) == ATTACKS == ("loss", "zlib", "mink", "minkpp")
    assert all(len(v) == 2 for v in scores.values())


def test_loss_is_the_mean_token_logprob():
    # (-1 - 3 - 2 - 4 - 0.5) / 5 = -10.5 / 5 = -2.1
    assert attack_scores([_stats(FIVE)])["loss"] == [pytest.approx(-2.1)]


def test_zlib_divides_the_mean_nll_by_the_compressed_length():
    text = "hello"
    n_bytes = len(zlib.compress(text.encode("utf-8")))
    # 2-byte zlib header + 7-byte fixed-Huffman block for 5 literals + 4-byte Adler-32
    assert n_bytes == 13
    # mean NLL = (1 + 2 + 3) / 3 = 2; ratio = 2 / 13; score = -2 / 13
    score = attack_scores([_stats((-1.0, -2.0, -3.0), text=text)])["zlib"][0]
    assert score == pytest.approx(-2 / 13)


def test_zlib_ranks_the_same_loss_higher_on_a_less_compressible_text():
    # Same NLL: the text that zlib compresses worse (more "surprising") is the likelier member.
    plain, repetitive = "Marie Curie, Warsaw", "aaaaaaaaaaaaaaaaaaa"
    assert len(zlib.compress(plain.encode())) > len(zlib.compress(repetitive.encode()))
    scores = attack_scores([_stats(FIVE, text=plain), _stats(FIVE, text=repetitive)])["zlib"]
    assert scores[0] > scores[1]


def test_mink_averages_the_lowest_k_fraction_of_logprobs():
    # k = 0.4 of 5 tokens -> int(2.0) = 2 lowest: -4, -3 -> mean -3.5
    assert attack_scores([_stats(FIVE)], k=0.4)["mink"] == [pytest.approx(-3.5)]


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (0.5, -3.5),  # int(2.5) = 2 tokens: rounds down -> (-4 - 3) / 2
        (0.1, -4.0),  # int(0.5) = 0 -> at least 1 token: -4
        (0.2, -4.0),  # the default k: int(1.0) = 1 token
        (1.0, -2.1),  # every token: the LOSS score
    ],
)
def test_mink_takes_max_1_int_k_n_tokens(k, expected):
    assert attack_scores([_stats(FIVE)], k=k)["mink"] == [pytest.approx(expected)]


def test_minkpp_averages_the_lowest_standardised_logprobs():
    # z = (logprob - mu) / sigma:
    #   (-1 + 1.5) / 0.5 = 1,  (-2 + 1) / 2 = -0.5,  (-0.5 + 1) / 0.25 = 2,  (-3 + 1) / 1 = -2
    # k = 0.5 of 4 tokens -> 2 lowest: -2, -0.5 -> mean -1.25
    stats = _stats(
        (-1.0, -2.0, -0.5, -3.0), mu=(-1.5, -1.0, -1.0, -1.0), sigma=(0.5, 2.0, 0.25, 1.0)
    )
    assert attack_scores([stats], k=0.5)["minkpp"] == [pytest.approx(-1.25)]


def test_minkpp_floors_a_zero_sigma_instead_of_dividing_by_it():
    # sigma = 0 is floored to 1e-3: z = (-0.001 - 0) / 1e-3 = -1
    stats = _stats((-0.001,), mu=(0.0,), sigma=(0.0,))
    assert attack_scores([stats])["minkpp"] == [pytest.approx(-1.0)]


def test_token_stats_stores_any_sequence_as_a_tuple_of_floats():
    stats = TokenStats(logprobs=[-1, -2], mu=np.array([-1.0, -1.0]), sigma=[1.0, 1.0], text="x")
    assert stats.logprobs == (-1.0, -2.0)
    assert type(stats.mu) is tuple and all(type(v) is float for v in stats.mu)


@pytest.mark.parametrize("attack", ATTACKS)
def test_members_with_higher_logprobs_get_auc_above_one_half(attack):
    rng = np.random.default_rng(0)

    def examples(centre: float) -> list[TokenStats]:
        out = []
        for _ in range(10):
            lp = -np.abs(rng.normal(centre, 0.3, size=8))
            out.append(_stats(lp, mu=[-1.5] * 8, sigma=[1.0] * 8, text="the same answer"))
        return out

    members = attack_scores(examples(0.5))
    nonmembers = attack_scores(examples(2.5))
    assert mia_aucs(members, nonmembers)[f"{attack}_auc"] > 0.5


# --------------------------------------------------------------------------------- AUC


def test_mia_aucs_counts_pairs_each_attack_on_its_own_scores():
    members = {
        # pairs member > non-member: 0.9 beats both, 0.8 beats both, 0.3 beats 0.1 only
        # -> 5 of 3 * 2 = 6 pairs -> 5/6
        "loss": [0.9, 0.8, 0.3],
        "zlib": [3.0, 4.0],  # perfect separation -> 1
        "mink": [1.0, 2.0],  # reversed -> 0
        "minkpp": [0.5],  # a tie counts half -> 0.5
    }
    nonmembers = {"loss": [0.5, 0.1], "zlib": [1.0, 2.0], "mink": [3.0, 4.0], "minkpp": [0.5]}
    assert mia_aucs(members, nonmembers) == {
        "loss_auc": pytest.approx(5 / 6),
        "zlib_auc": 1.0,
        "mink_auc": 0.0,
        "minkpp_auc": 0.5,
    }


def test_roc_points_run_from_0_0_to_1_1_and_enclose_the_auc():
    fpr, tpr = roc_points([0.9, 0.8, 0.3], [0.5, 0.1])
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(5 / 6)


# ---------------------------------------------------------------------------- PrivLeak


@pytest.mark.parametrize(
    ("auc_model", "auc_oracle", "expected"),
    [
        (0.75, 0.5, 0.5),  # (0.75 - 0.5) / 0.5: under-unlearned, members still detectable
        (0.25, 0.5, -0.5),  # (0.25 - 0.5) / 0.5: over-unlearned
        (1.0, 0.8, 0.25),  # (1.0 - 0.8) / 0.8 = 0.2 / 0.8
    ],
)
def test_privleak_is_the_relative_auc_gap(auc_model, auc_oracle, expected):
    assert privleak(auc_model, auc_oracle) == pytest.approx(expected)


@pytest.mark.parametrize("auc", [0.1, 0.5, 0.73, 1.0])
def test_privleak_of_a_model_equal_to_the_oracle_is_zero(auc):
    assert privleak(auc, auc) == 0.0


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"logprobs": ()}, "empty"),
        ({"logprobs": (-1.0, math.nan)}, "non-finite"),
        ({"mu": (math.nan, -1.0)}, "non-finite"),
        ({"sigma": (1.0, math.inf)}, "non-finite"),
        ({"mu": (-1.0,)}, "one entry per token"),
        ({"sigma": (1.0, -0.5)}, "non-negative"),
        ({"text": None}, "string"),
    ],
)
def test_token_stats_rejects_bad_inputs(kwargs, message):
    fields = {"logprobs": (-1.0, -2.0), "mu": (-1.0, -1.0), "sigma": (1.0, 1.0), "text": "x"}
    with pytest.raises(ValueError, match=message):
        TokenStats(**(fields | kwargs))


@pytest.mark.parametrize("k", [0.0, -0.2, 1.5, math.nan])
def test_attack_scores_rejects_k_outside_0_1(k):
    with pytest.raises(ValueError, match="k must be"):
        attack_scores([_stats(FIVE)], k=k)


def test_attack_scores_rejects_no_examples():
    with pytest.raises(ValueError, match="empty"):
        attack_scores([])


def test_mia_aucs_needs_both_classes_and_every_attack():
    scores = attack_scores([_stats(FIVE)])
    empty = {name: [] for name in ATTACKS}
    with pytest.raises(ValueError, match="both classes"):
        mia_aucs(scores, empty)
    with pytest.raises(ValueError, match="both classes"):
        mia_aucs(empty, scores)
    with pytest.raises(ValueError, match="'minkpp' are missing"):
        mia_aucs(scores, {k: v for k, v in scores.items() if k != "minkpp"})
    with pytest.raises(ValueError, match="non-finite"):
        mia_aucs(scores, {k: [math.nan] for k in ATTACKS})


def test_roc_points_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        roc_points([0.5], [])


@pytest.mark.parametrize(
    ("auc_model", "auc_oracle", "message"),
    [
        (0.5, 0.0, "undefined"),
        (1.2, 0.5, "in \\[0, 1\\]"),
        (0.5, math.nan, "in \\[0, 1\\]"),
    ],
)
def test_privleak_rejects_an_undefined_ratio_or_a_non_auc(auc_model, auc_oracle, message):
    with pytest.raises(ValueError, match=message):
        privleak(auc_model, auc_oracle)


# ------------------------------------------------ PrivLeak as the evaluation computes it


def _evaluation(name: str, members: list[TokenStats], nonmembers: list[TokenStats]):
    """A model's forget (members) and holdout (non-members) answers, scored by the registry."""
    from obliviate.data.records import Record
    from obliviate.evaluation.metrics import SplitOutputs
    from obliviate.evaluation.runner import score_split
    from obliviate.evaluation.suite import ModelEvaluation

    splits = {}
    for split, stats in (("forget", members), ("holdout", nonmembers)):
        records = [
            Record(id=f"{split}-{i}", prompt=f"q{i}?", answer="a") for i in range(len(stats))
        ]
        outputs = SplitOutputs(split, records, ["a"] * len(stats), stats, stats, [[]] * len(stats))
        splits[split] = score_split(outputs)
    return ModelEvaluation(name, name, splits, eval_seconds=0.0, eval_peak_rss_mb=0.0)


def _five(*logprobs: float, z: float = 0.0) -> TokenStats:
    """Five tokens whose Min-K%++ z-score is ``z`` at each (mu = log p - z, sigma 1)."""
    return _stats(logprobs, mu=[lp - z for lp in logprobs], sigma=[1.0] * 5)


def test_privleak_is_muses_min_k_at_0_4_on_a_hand_built_auc_pair():
    """The model's members and non-members are built so that Min-K% at k = 0.4 (the mean
    of the 2 lowest of 5 log-probs) ranks 3 of the 4 member/non-member pairs right (AUC
    0.75), Min-K% at k = 0.2 (the lowest) none (AUC 0) and Min-K%++ none (members z = 0,
    non-members z = 1: AUC 0); the oracle is at chance (0.5) under every attack.

    MUSE's PrivLeak, in MUSE's orientation (AUC' = 1 - AUC): (0.25 - 0.5) / 0.5 = -0.5, a
    model that still gives its forget set away; Min-K%++ would say (1 - 0.5) / 0.5 = +1."""
    from obliviate.evaluation.suite import results_document

    members = [_five(0, 0, 0, -0.2, -1.5), _five(0, 0, 0, -0.4, -1.6)]  # k=.4: -0.85, -1.0
    nonmembers = [_five(*[-1.2] * 5, z=1.0), _five(*[-0.9] * 5, z=1.0)]  # -1.2, -0.9
    model = _evaluation("model", members, nonmembers)
    oracle = _evaluation(
        "oracle", [_five(*[-1.0] * 5), _five(*[-2.0] * 5)], [_five(*[-1.5] * 5)] * 2
    )
    document = results_document({"model": model, "oracle": oracle}, "model", "forget10")
    assert document["privleak_aucs"] == {"privleak": 0.75, "privleak_minkpp": 0.0}
    assert document["reference"]["oracle"]["privleak_aucs"] == {
        "privleak": 0.5,
        "privleak_minkpp": 0.5,
    }
    assert document["privleak"] == pytest.approx(-0.5)
    assert document["privleak_minkpp"] == pytest.approx(1.0)
    assert document["mia"]["mink_auc"] == 0.0  # the mia table's Min-K% is at k = 0.2
    assert document["reference"]["oracle"]["privleak"] == 0.0


# ------------------------------------------------------------- the scoring pass's figures


class _Head(torch.nn.Module):
    """An output layer that returns fixed logits, some of them -inf (a banned entry)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.logits[: hidden.shape[0]]


def test_minkpp_mu_and_sigma_are_finite_when_a_logit_is_minus_infinity():
    """p log p is 0 where p = 0 (its limit), not 0 · -inf = NaN: mu and sigma are those of
    the entries that have probability."""
    from obliviate.evaluation.model_outputs import _token_stats

    inf = math.inf
    logits = torch.tensor([[0.0, math.log(3.0), -inf, -inf], [1.0, 1.0, 1.0, -inf]])
    hidden = torch.zeros(1, 2, 8)
    labels = torch.tensor([[1, 0]])
    picked, mu, sigma, greedy, counts = _token_stats(_Head(logits), hidden, labels)
    # first position: p = (1/4, 3/4); second: p = 1/3 each of three
    p = torch.tensor([0.25, 0.75])
    expected_mu = float((p * p.log()).sum())
    expected_var = float((p * p.log().square()).sum()) - expected_mu**2
    assert torch.isfinite(mu).all() and torch.isfinite(sigma).all()
    assert mu.tolist() == pytest.approx([expected_mu, math.log(1 / 3)])
    assert sigma.tolist() == pytest.approx([math.sqrt(expected_var), 0.0], abs=1e-6)
    assert picked.tolist() == pytest.approx([math.log(0.75), math.log(1 / 3)])
    assert greedy.tolist() == [True, True] and counts == [2]  # a three-way tie: argmax is 0
    stats = TokenStats(picked.tolist(), mu.tolist(), sigma.tolist(), "x", greedy.tolist())
    assert all(math.isfinite(s) for s in attack_scores([stats])["minkpp"])


def test_token_stats_greedy_has_one_flag_per_token_or_none():
    assert _stats([-1.0, -2.0]).greedy == ()
    with pytest.raises(ValueError, match="greedy"):
        TokenStats((-1.0, -2.0), (-1.0, -1.0), (1.0, 1.0), "x", greedy=(True,))
