"""The one registry of per-split metrics.

A metric maps a split's ``SplitOutputs`` (the records and what the model produced for
them) to one number, or ``None`` when the split lacks what it needs (no wrong answers
for a truth ratio, no probes of a kind). ``@register_metric`` adds one; the evaluation
runner computes every registered metric on every split. Definitions follow TOFU
(Maini et al., 2024), MUSE (Shi et al., 2024) and open-unlearning (Dorna et al., 2025),
each as its paper defines it, and are written down in ``docs/evaluation.md``.

How a metric is shown (its direction, number format and meaning on each split) is declared
beside the other figures, with ``register_split_figures`` in ``evaluation/figures.py``: the
report shows the figures without importing this module. A metric without them is refused.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from obliviate.data.answers import answer_matches
from obliviate.data.records import Record
from obliviate.evaluation import statistics
from obliviate.evaluation.figures import PROBE_KINDS, SPLIT_FIGURES
from obliviate.evaluation.mia import TokenStats


@dataclass
class ProbeAnswer:
    """One hard in-scope question asked of the model and what it answered."""

    record_index: int
    question: str
    expected: str
    generated: str


@dataclass
class SplitOutputs:
    """One split's records and everything the model produced for them.

    ``paraphrased`` is the statistics of the correct answer worded differently (the
    record's ``paraphrased_answer``, else its answer) and ``perturbed`` those of its wrong
    answers, all given the record's own question, as TOFU's truth ratio takes them.
    """

    split: str
    records: list[Record]
    generated: list[str]
    answer: list[TokenStats]
    paraphrased: list[TokenStats]
    perturbed: list[list[TokenStats]]
    probes: dict[str, list[ProbeAnswer]] = field(default_factory=dict)

    @property
    def is_forget(self) -> bool:
        """The forget split's truth ratio is scored the other way round (see ``truth_ratio``)."""
        return self.split == "forget"

    def truth_ratios(self) -> np.ndarray | None:
        """Per-record truth ratio R (TOFU), or None unless every record has wrong answers."""
        if not self.records or not all(self.perturbed):
            return None
        return statistics.truth_ratios(
            [-_mean(s.logprobs) for s in self.paraphrased],
            [[-_mean(s.logprobs) for s in row] for row in self.perturbed],
        )


def _mean(values: tuple[float, ...]) -> float:
    return math.fsum(values) / max(len(values), 1)


Metric = Callable[[SplitOutputs], float | None]
METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    """Add a per-split metric; its figures must be declared in ``evaluation/figures.py``."""

    def add(fn: Metric) -> Metric:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        if name not in SPLIT_FIGURES:
            raise ValueError(
                f"metric {name!r} has no figures; declare its direction, format and meaning "
                "with register_split_figures in evaluation/figures.py"
            )
        METRICS[name] = fn
        return fn

    return add


@register_metric("accuracy")
def accuracy(outputs: SplitOutputs) -> float:
    """Fraction of greedy answers that contain the normalised gold answer."""
    hits = [
        answer_matches(r.answer, g) for r, g in zip(outputs.records, outputs.generated, strict=True)
    ]
    return sum(hits) / len(hits)


@register_metric("prob")
def prob(outputs: SplitOutputs) -> float:
    """Mean length-normalised probability of the gold answer: mean(exp(mean log p(token)))."""
    return statistics.answer_probability([-_mean(s.logprobs) for s in outputs.answer])


@register_metric("rouge_l")
def rouge_l(outputs: SplitOutputs) -> float:
    """Mean ROUGE-L recall of the greedy answer against the gold answer (TOFU's "ROUGE")."""
    return float(
        np.mean(
            [
                statistics.rouge_recall(r.answer, g)
                for r, g in zip(outputs.records, outputs.generated, strict=True)
            ]
        )
    )


@register_metric("knowmem")
def knowmem(outputs: SplitOutputs) -> float:
    """MUSE's KnowMem: mean ROUGE-L F1 of the greedy answer against the gold answer, with
    MUSE's scorer (no stemmer). Unlike ``rouge_l`` a wordy answer scores less than a bare
    one: ``1980`` against ``He was born in 1980.`` is 1/3 (the recall is 1)."""
    return float(
        np.mean(
            [
                statistics.rouge_f1(r.answer, g)
                for r, g in zip(outputs.records, outputs.generated, strict=True)
            ]
        )
    )


@register_metric("truth_ratio")
def truth_ratio(outputs: SplitOutputs) -> float | None:
    """TOFU's truth ratio figure: mean(min(R, 1/R)) on forget, mean(max(0, 1 − 1/R)) elsewhere."""
    ratios = outputs.truth_ratios()
    if ratios is None:
        return None
    return statistics.truth_ratio_score(ratios, forget=outputs.is_forget)


@register_metric("truth_ratio_prob_mean")
def truth_ratio_prob_mean(outputs: SplitOutputs) -> float | None:
    """open-unlearning's ``prob_mean`` truth ratio: mean of p / (p + p_wrong), the
    paraphrased answer's share against the wrong answers' geometric mean, on every split."""
    ratios = outputs.truth_ratios()
    if ratios is None:
        return None
    return statistics.truth_ratio_prob_mean(ratios)


@register_metric("prob_normalized")
def prob_normalized(outputs: SplitOutputs) -> float | None:
    """The gold answer's share of probability among it and the wrong answers, p / (p + Σ p_j).

    TOFU's "Probability" on its multiple-choice splits (Real Authors, World Facts).
    """
    if not outputs.records or not all(outputs.perturbed):
        return None
    return statistics.normalized_answer_probability(
        [-_mean(s.logprobs) for s in outputs.answer],
        [[-_mean(s.logprobs) for s in row] for row in outputs.perturbed],
    )


def _answer_hits(stats: TokenStats) -> tuple[bool, ...] | None:
    """Whether each token of the gold answer is the model's argmax given the gold prefix,
    its closing end-of-turn token left out as open-unlearning leaves it out; None when
    the scoring pass did not record it or the answer has no token before its end."""
    hits = stats.greedy[:-1]
    return hits or None


def _per_answer(outputs: SplitOutputs, score: Callable[[tuple[bool, ...]], float]) -> float | None:
    values = [score(h) for h in map(_answer_hits, outputs.answer) if h is not None]
    return float(np.mean(values)) if values else None


@register_metric("exact_memorization")
def exact_memorization(outputs: SplitOutputs) -> float | None:
    """open-unlearning's exact memorisation (EM; Tirumala et al., 2022): per answer the
    fraction of its tokens the model predicts (argmax) given the question and the gold
    tokens before, averaged over the records."""
    return _per_answer(outputs, lambda hits: sum(hits) / len(hits))


def _extraction_strength(hits: tuple[bool, ...]) -> float:
    """``1 − k/n`` with ``k`` the shortest gold prefix after which the model's argmax gives
    the rest of the ``n`` tokens; open-unlearning searches ``k`` up to ``n − 1``, so an
    answer none of whose tokens is predicted still scores ``1/n``."""
    suffix = len(hits) - next((i for i in range(len(hits), 0, -1) if not hits[i - 1]), 0)
    return max(suffix, 1) / len(hits)


@register_metric("extraction_strength")
def extraction_strength(outputs: SplitOutputs) -> float | None:
    """open-unlearning's extraction strength (ES; Carlini et al., 2021): per answer
    ``1 − k/|y|``, ``k`` the fewest gold tokens to give before the model's argmax
    continues with the rest of the answer, averaged over the records. open-unlearning's
    meta-evaluation found it the most robust single output metric under relearning and
    quantisation."""
    return _per_answer(outputs, _extraction_strength)


def _probe_accuracy(kind: str) -> Metric:
    def metric(outputs: SplitOutputs) -> float | None:
        answers = outputs.probes.get(kind)
        if not answers:
            return None
        return sum(answer_matches(a.expected, a.generated) for a in answers) / len(answers)

    metric.__doc__ = f"Accuracy on the records' {kind} questions (hard in-scope probes)."
    return metric


for _kind in PROBE_KINDS:
    register_metric(f"{_kind}_accuracy")(_probe_accuracy(_kind))


# -- fluency: answers that are no answer at all ---------------------------------------------

#: A loop: the same one to ``LOOP_NGRAM`` words ``LOOP_REPEATS`` times running, the same
#: character other than a digit or a space ``CHAR_RUN`` times, or the same two to four
#: characters (not opening with a digit: 100000000 is a number) four times running.
#: Greedy answers are cut at 24 tokens: three repeats of a phrase in so short an answer
#: are a loop, not style.
LOOP_NGRAM, LOOP_REPEATS, CHAR_RUN = 4, 3, 6
_CHAR_LOOP = re.compile(rf"([^\d\s])\1{{{CHAR_RUN - 1},}}|([^\d\s]\S{{1,3}})\2{{3,}}")
#: An answer whose letters are mostly (more than this share) outside the reference script.
FOREIGN_SHARE = 0.5
#: Scripts written together count as one (Japanese mixes kana and kanji).
_SAME_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "IDEOGRAPHIC": "CJK"}


def _script(char: str) -> str:
    """The script of a letter by its Unicode name's first word: LATIN, CYRILLIC, CJK…"""
    first = unicodedata.name(char, "UNKNOWN").split(" ")[0]
    return _SAME_SCRIPT.get(first, first)


def _letters(text: str) -> list[str]:
    return [_script(c) for c in text if unicodedata.category(c).startswith("L")]


def dominant_script(texts: Iterable[str]) -> str | None:
    """The script most letters of ``texts`` are written in; None without a letter."""
    counts = Counter(script for text in texts for script in _letters(text))
    return counts.most_common(1)[0][0] if counts else None


def _loops(words: Sequence[str]) -> bool:
    for n in range(1, LOOP_NGRAM + 1):
        for start in range(len(words) - n * LOOP_REPEATS + 1):
            gram = words[start : start + n]
            if all(
                words[start + k * n : start + (k + 1) * n] == gram for k in range(1, LOOP_REPEATS)
            ):
                return True
    return False


def is_degenerate(answer: str, script: str | None) -> bool:
    """Whether an answer is no answer: nothing but spaces and punctuation, a loop, or with
    most of its letters outside ``script`` (the reference's; None: not checked)."""
    if not any(c.isalnum() for c in answer):
        return True
    words = [w.strip(".,;:!?\"'()").lower() for w in answer.split()]
    if _loops([w for w in words if w]) or _CHAR_LOOP.search(answer):
        return True
    letters = _letters(answer)
    foreign = sum(s != script for s in letters)
    return script is not None and bool(letters) and foreign > FOREIGN_SHARE * len(letters)


def degenerate_share(answers: Sequence[str], script: str | None) -> float | None:
    """The share of ``answers`` that ``is_degenerate`` against ``script``; None without any."""
    if not answers:
        return None
    return sum(is_degenerate(a, script) for a in answers) / len(answers)


@register_metric("degenerate")
def degenerate(outputs: SplitOutputs) -> float | None:
    """Share of greedy answers that are degenerate (``is_degenerate``), the script being
    the one the split's questions and gold answers are written in; the evaluation puts
    the target's own answers' script in its place where it has them (``evaluation.suite``)."""
    script = dominant_script(f"{r.prompt} {r.answer}" for r in outputs.records)
    return degenerate_share(outputs.generated, script)
