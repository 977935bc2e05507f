"""The answer as the starting model states it: what likelihood figures score for a chat model.

A chat model asked "What is the capital of France?" says "The capital of France is Paris."
and never the bare "Paris". Scoring the bare gold answer measures how likely a phrasing
the model does not use is: training on bare answers then *raises* such figures (a model
whose retain accuracy had halved showed 32× the target's utility), and unlearning can
"forget" the bare word while the sentence stays. So where the starting model answers in
sentences, the likelihood figures (probability, truth ratio, TOFU's utility and forget
quality, exact memorisation, extraction strength) score its own greedy answer that
contains the gold, and its wrong answers are that sentence with the gold swapped for each
wrong one; the figures on the bare gold answer keep their names with ``_gold`` added.

A record is restated only when the starting model's greedy answer contains the gold
answer verbatim (case aside), so the swap is exact; and a split only when most of the
starting model's correct answers are sentences (``MIN_EXTRA_WORDS`` words or more beyond
the gold), so a model trained on bare answers (the built-in benchmark's fine-tunes) keeps
today's figures. Records the starting model does not answer (a never-seen control) keep
the bare gold: there is no statement of theirs to score. Membership inference stays on
the bare answers for that reason: its holdout side has no statement by the starting
model, and comparing sentences with words would measure phrasing, not membership.
"""

from __future__ import annotations

import re
from dataclasses import replace

from obliviate.data.answers import answer_matches
from obliviate.data.records import Record

#: A correct answer this many words longer than the gold is a sentence, not the answer.
MIN_EXTRA_WORDS = 3

#: A split is restated when at least this share of the starting model's correct answers
#: are sentences.
SENTENCE_SHARE = 0.5


def _swap(statement: str, gold: str, wrong: str) -> str | None:
    """``statement`` with its first verbatim (case-insensitive) ``gold`` replaced."""
    found = re.search(re.escape(gold), statement, flags=re.IGNORECASE)
    if found is None:
        return None
    return statement[: found.start()] + wrong + statement[found.end() :]


def is_sentence(gold: str, generated: str) -> bool:
    """A correct answer that says more than the gold answer: a sentence around it."""
    extra = len(generated.split()) - len(gold.split())
    return answer_matches(gold, generated) and extra >= MIN_EXTRA_WORDS


def restate(record: Record, statement: str) -> Record | None:
    """The record with the starting model's ``statement`` as its answer and the statement
    with each wrong answer swapped in as its wrong answers; None where the statement does
    not hold the gold verbatim or is no sentence."""
    if record.is_text or not is_sentence(record.answer, statement):
        return None
    wrong = [_swap(statement, record.answer, w) for w in record.perturbed]
    if _swap(statement, record.answer, record.answer) is None or None in wrong:
        return None
    return replace(record, answer=statement, perturbed=tuple(wrong), paraphrased_answer=None)


def stated_records(records: list[Record], answers: dict[str, str]) -> dict[str, Record]:
    """Record id → its restated form, for a split whose correct answers (``answers``: the
    starting model's greedy answer by question) are mostly sentences; empty otherwise."""
    facts = [r for r in records if not r.is_text]
    correct = [r for r in facts if answer_matches(r.answer, answers.get(r.prompt, ""))]
    sentences = [r for r in correct if is_sentence(r.answer, answers[r.prompt])]
    if not correct or len(sentences) < SENTENCE_SHARE * len(correct):
        return {}
    restated = {r.id: restate(r, answers[r.prompt]) for r in sentences}
    return {rid: r for rid, r in restated.items() if r is not None}


def stated_splits(
    splits: dict[str, list[Record]], answers: dict[str, str]
) -> dict[str, dict[str, Record]]:
    """Per split with statements, record id → its restated form (see ``stated_records``)."""
    found = {name: stated_records(records, answers) for name, records in splits.items()}
    return {name: by_id for name, by_id in found.items() if by_id}
