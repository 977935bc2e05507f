"""The one registry of per-split metrics.

A metric maps a split's ``SplitOutputs`` (the records and what the model produced for
them) to one number. ``@register_metric`` adds one; the evaluation runner computes every
registered metric whose inputs the split has.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from obliviate.data.records import Record


@dataclass
class SplitOutputs:
    """One split's records with the model's greedy answers and answer log-probabilities."""

    records: list[Record]
    generated: list[str]
    answer_logprob: list[float]


Metric = Callable[[SplitOutputs], float]
METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    def add(fn: Metric) -> Metric:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = fn
        return fn

    return add


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def normalize_answer(text: str) -> str:
    """Lower-case, punctuation and articles removed, whitespace collapsed (SQuAD-style)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


def answer_matches(gold: str, generated: str) -> bool:
    """The generated text contains the normalised gold answer as whole words."""
    gold_n, generated_n = normalize_answer(gold), normalize_answer(generated)
    return bool(gold_n) and f" {gold_n} " in f" {generated_n} "


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
    return sum(math.exp(lp) for lp in outputs.answer_logprob) / len(outputs.answer_logprob)
