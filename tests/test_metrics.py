"""The per-split metric registry on hand-made outputs, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from obliviate.data.answers import normalize_answer
from obliviate.data.records import Probe, Record
from obliviate.evaluation.metrics import METRICS, ProbeAnswer, SplitOutputs, answer_matches
from obliviate.evaluation.mia import TokenStats


def stats(*logprobs: float) -> TokenStats:
    n = len(logprobs)
    return TokenStats(logprobs=logprobs, mu=(-1.0,) * n, sigma=(1.0,) * n, text="x")


def outputs(split: str = "retain") -> SplitOutputs:
    """Two records: the model answers the first right in a sentence, the second wrong."""
    records = [
        Record(id="a", prompt="Where was Ada born?", answer="Hamburg", perturbed=("Rome", "Oslo"),
               probes={"multihop": Probe("Where was Ada's mentor born?", "Hamburg")}),
        Record(id="b", prompt="What does Bo do?", answer="civil engineer",
               perturbed=("baker", "pilot")),
    ]  # fmt: skip
    return SplitOutputs(
        split=split,
        records=records,
        generated=["Ada was born in Hamburg.", "Bo is an engineer."],
        # mean log-probs: a → -0.5 (p = e^-0.5), b → -2 (p = e^-2)
        answer=[stats(-0.25, -0.75), stats(-2.0)],
        # paraphrased = the answer itself here: per-token losses 0.5 and 2
        paraphrased=[stats(-0.25, -0.75), stats(-2.0)],
        # wrong answers: a → losses 2 and 4 (mean 3); b → losses 1 and 1 (mean 1)
        perturbed=[[stats(-2.0), stats(-4.0)], [stats(-1.0), stats(-1.0)]],
        probes={
            "multihop": [ProbeAnswer(0, "Where was Ada's mentor born?", "Hamburg", "In Rome.")],
            "paraphrase": [
                ProbeAnswer(0, "Ada's birthplace?", "Hamburg", "hamburg"),
                ProbeAnswer(1, "Bo's job?", "civil engineer", "A civil engineer!"),
                ProbeAnswer(1, "Bo works as?", "civil engineer", "engineer"),
            ],
        },
    )


def figures(split: str = "retain") -> dict[str, float | None]:
    out = outputs(split)
    return {name: metric(out) for name, metric in METRICS.items()}


def test_accuracy_needs_the_whole_normalised_answer() -> None:
    assert answer_matches("Hamburg", "Ada was born in Hamburg.")
    assert not answer_matches("civil engineer", "Bo is an engineer.")
    assert not answer_matches("1935", "19356")
    assert figures()["accuracy"] == 0.5


def test_prob_is_the_mean_length_normalised_probability() -> None:
    assert figures()["prob"] == pytest.approx((math.exp(-0.5) + math.exp(-2.0)) / 2)


def test_prob_normalized_is_the_gold_share_among_the_options() -> None:
    # a: e^-0.5 / (e^-0.5 + e^-2 + e^-4); b: e^-2 / (e^-2 + e^-1 + e^-1)
    a = math.exp(-0.5) / (math.exp(-0.5) + math.exp(-2) + math.exp(-4))
    b = math.exp(-2) / (math.exp(-2) + 2 * math.exp(-1))
    assert figures()["prob_normalized"] == pytest.approx((a + b) / 2)


def test_rouge_l_is_the_recall_of_the_gold_answer() -> None:
    # a: "hamburg" found → 1; b: gold "civil engineer", LCS "engineer" → 1/2
    assert figures()["rouge_l"] == pytest.approx(0.75)


def test_truth_ratio_in_both_of_tofus_forms() -> None:
    # R = exp(mean wrong loss - paraphrased loss): a → e^(3 - 0.5) = e^2.5; b → e^(1 - 2) = e^-1
    r_a, r_b = math.exp(2.5), math.exp(-1.0)
    retain = (max(0.0, 1 - 1 / r_a) + max(0.0, 1 - 1 / r_b)) / 2  # b prefers a wrong answer → 0
    forget = (min(r_a, 1 / r_a) + min(r_b, 1 / r_b)) / 2
    assert figures("retain")["truth_ratio"] == pytest.approx(retain)
    assert figures("forget")["truth_ratio"] == pytest.approx(forget)


def test_probe_accuracies_and_missing_probes() -> None:
    result = figures()
    assert result["paraphrase_accuracy"] == pytest.approx(2 / 3)
    assert result["multihop_accuracy"] == 0.0
    assert result["crosslingual_accuracy"] is None


def test_a_split_without_wrong_answers_has_no_truth_ratio() -> None:
    out = outputs()
    out.perturbed = [[], []]
    assert METRICS["truth_ratio"](out) is None
    assert METRICS["prob_normalized"](out) is None


def test_answers_are_normalised_as_squad_does() -> None:
    """SQuAD deletes punctuation (it does not turn it into a space), then drops articles."""
    assert normalize_answer("The 1,000-page Book!") == "1000page book"
    assert answer_matches("1,000", "It sold 1000 copies.")
    assert answer_matches("Jean-Paul Sartre", "It was Jean-Paul Sartre.")
    assert not answer_matches("Jean-Paul Sartre", "It was Jean Paul Sartre.")
    assert answer_matches("the Hague", "In The Hague, of course")


def test_knowmem_is_muses_rouge_l_f1() -> None:
    # a: "hamburg" in a 5-word answer: precision 1/5, recall 1 → F1 1/3;
    # b: LCS "engineer": precision 1/4 ("bo is an engineer"), recall 1/2 → F1 1/3
    assert figures()["knowmem"] == pytest.approx((1 / 3 + 1 / 3) / 2)


def test_truth_ratio_prob_mean_is_the_correct_share_on_every_split() -> None:
    # R = e^2.5 and e^-1 (as above): R / (1 + R) each, the same on forget and retain
    share = (1 / (1 + math.exp(-2.5)) + 1 / (1 + math.exp(1.0))) / 2
    assert figures("retain")["truth_ratio_prob_mean"] == pytest.approx(share)
    assert figures("forget")["truth_ratio_prob_mean"] == pytest.approx(share)


def hits(*flags: bool, logprob: float = -1.0) -> TokenStats:
    """An answer whose tokens are the model's argmax where ``flags`` say, then its EOS."""
    n = len(flags) + 1
    return TokenStats((logprob,) * n, (-1.0,) * n, (1.0,) * n, "x", (*flags, True))


def test_exact_memorization_and_extraction_strength_as_open_unlearning_computes_them() -> None:
    """EM: the share of answer tokens the model predicts. ES: 1 - k/n, k the fewest gold
    tokens to give before the argmax continues with the rest; open-unlearning looks no
    further than k = n - 1, so an answer with no token right still scores 1/n. The
    closing end-of-turn token is left out of both, as open-unlearning leaves it."""
    out = outputs()
    out.answer = [hits(True, False, True, True), hits(False, False)]
    figures = {name: METRICS[name](out) for name in ("exact_memorization", "extraction_strength")}
    assert figures["exact_memorization"] == pytest.approx((3 / 4 + 0 / 2) / 2)
    # a: the last two tokens follow from the first two (k = 2 of 4) → 1/2; b: k = 1 of 2 → 1/2
    assert figures["extraction_strength"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    out.answer = [hits(True, True, True), hits(False, True)]
    assert METRICS["extraction_strength"](out) == pytest.approx((1 + 1 / 2) / 2)
    out.answer = [stats(-1.0), stats(-2.0)]  # scored without the argmax flags
    assert METRICS["exact_memorization"](out) is None
    assert METRICS["extraction_strength"](out) is None


def test_a_name_in_the_possessive_is_still_the_answer() -> None:
    """ "William Shakespeare's sonnets" still names Shakespeare: deleting the apostrophe
    alone would leave "shakespeares" and count a model that still knows as forgotten."""
    from obliviate.data.answers import answer_matches

    assert answer_matches("William Shakespeare", "It is by William Shakespeare's hand.")
    assert answer_matches("Hamlet's father", "The ghost is Hamlet’s father.")
    assert not answer_matches("Shakespeare", "the Shakespeares of this world")
