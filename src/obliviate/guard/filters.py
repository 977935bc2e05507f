"""Input and output filters: refuse a question about a forget target, or an answer that
gives a forget fact away, without touching the model.

A filter is only useful if it leaves retained knowledge alone, so both are calibrated on
retained questions (``negatives``): each threshold is the lowest one at which at most
``false_refusal_rate`` of those questions are refused. The calibration uses the
negatives' paraphrases, so their main prompts stay unseen and can measure how the rate
holds on new questions. The hard case is a neighbour, a retained person who shares a
city or a profession with a forgotten one: a shared answer alone is never enough.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np

from obliviate.data.answers import normalize_answer
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.models.embeddings import embed
from obliviate.progress import progress_bar, say

__all__ = ["OUTPUT_MODES", "THRESHOLD_OFF", "Decision", "InputFilter", "OutputFilter"]

#: Above any cosine similarity: a semantic check with this threshold never fires.
THRESHOLD_OFF = 1.01
#: Below any cosine similarity: every candidate fires (nothing retained argued otherwise).
THRESHOLD_ALL = -1.0
OUTPUT_MODES = ("refuse", "redact")
REDACTED = "[redacted]"
#: A forget answer shorter than this (one word) is too common to be a keyword ("Lyon").
MIN_KEYWORD_CHARS = 6
#: Texts embedded per step of a calibration's progress bar.
PROGRESS_CHUNK = 256

_LINE_BREAK = re.compile(r"\n+")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
#: What normalize_answer deletes (punctuation), escaped for a character class.
_PUNCTUATION = re.escape(string.punctuation)
#: What may stand between two words of a normalised answer: whitespace and punctuation.
_SEPARATOR = rf"\s{_PUNCTUATION}"


@dataclass(frozen=True)
class Decision:
    """Whether a filter refuses, and why (``name:...``, ``answer:...``, ``similarity:0.83``;
    empty when it lets the text pass)."""

    refuse: bool
    reason: str = ""


PASS = Decision(refuse=False)


# --- text --------------------------------------------------------------------------------


def _padded(text: str) -> str:
    """The normalised text with a space each side, so `` phrase `` matches whole words."""
    return f" {normalize_answer(text)} "


def _mentions(padded_text: str, phrase: str) -> bool:
    """``phrase`` (normalised) occurs in ``padded_text`` as whole words (as answer_matches)."""
    return bool(phrase) and f" {phrase} " in padded_text


def _views(text: str) -> list[str]:
    """The text, its last line and the last sentence of that line, without repeats.

    A question after a long context is drowned in one embedding of the whole message
    (which the model also truncates), so its tail is scored on its own too.
    """
    lines = [line.strip() for line in _LINE_BREAK.split(text) if line.strip()]
    last_line = lines[-1] if lines else text
    sentences = [s for s in _SENTENCE_END.split(last_line) if s.strip()]
    return list(dict.fromkeys([text, last_line, sentences[-1] if sentences else last_line]))


def _embed(texts: list[str], label: str | None = None) -> np.ndarray:
    """``embed``; with a ``label`` (a calibration: thousands of texts, most of the guard's
    set-up), in chunks under a progress bar of that label."""
    if label is None or len(texts) <= PROGRESS_CHUNK:
        return embed(texts)
    parts = []
    with progress_bar(label, len(texts)) as advance:
        for start in range(0, len(texts), PROGRESS_CHUNK):
            parts.append(embed(texts[start : start + PROGRESS_CHUNK]))
            advance(start + len(parts[-1]))
    return np.concatenate(parts)


def _similarities(
    texts: Sequence[str], targets: np.ndarray, label: str | None = None
) -> np.ndarray:
    """Cosine similarity of each text (its best view) to each target row: (texts, targets).

    Every distinct view is embedded once (under a progress bar with ``label``).
    """
    if not texts:
        return np.zeros((0, len(targets)), dtype=np.float32)
    views = [_views(t) for t in texts]
    unique = list(dict.fromkeys(v for vs in views for v in vs))
    index = {v: i for i, v in enumerate(unique)}
    sims = np.clip(_embed(unique, label) @ targets.T, -1.0, 1.0)
    return np.stack([sims[[index[v] for v in vs]].max(axis=0) for vs in views])


# --- records and calibration -------------------------------------------------------------


def _facts(records: Sequence[Record], what: str) -> list[Record]:
    """The question-answer facts of ``records``; a filter has nothing to work with otherwise."""
    facts = [r for r in records if not r.is_text]
    if not facts:
        raise ObliviateError(
            f"the guard's filters need {what} question-answer records; got none "
            "(give facts with 'prompt' and 'answer', not text passages)"
        )
    return facts


def _check_rate(rate: float) -> None:
    """A rate of 1 would let calibration refuse every retained question (NaN fails too)."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        raise ObliviateError(
            f"false_refusal_rate must be a number in [0, 1), got {rate!r}; e.g. 0.05"
        )


def _calibration_questions(negatives: Sequence[Record]) -> list[tuple[str, Record]]:
    """Each negative's paraphrases (its prompt when it has none), with the record."""
    return [(q, r) for r in negatives for q in (r.paraphrases or (r.prompt,))]


def _calibrate(scores: np.ndarray, forced: int, n: int, rate: float) -> float:
    """The lowest threshold at which at most ``rate * n`` calibration items are refused.

    ``forced`` items are refused whatever the threshold (a keyword, a name) and use up
    the budget first; if they alone exceed it the semantic check is turned off.
    """
    allowed = math.floor(rate * n + 1e-9) - forced
    if allowed < 0:
        return THRESHOLD_OFF
    ranked = np.sort(np.asarray(scores, dtype=np.float32))[::-1]
    if allowed >= len(ranked):
        return THRESHOLD_ALL
    return float(np.nextafter(ranked[allowed], np.float32(2.0)))


def _calibration_report(
    refused: int, n: int, rate: float, threshold: float, **extra: Any
) -> dict[str, Any]:
    """What calibration achieved, kept in results.json so a turned-off check is visible."""
    return {
        "n": n,
        "target_rate": rate,
        "rate": refused / n if n else 0.0,
        "threshold": threshold,
        "semantic_off": threshold >= THRESHOLD_OFF,
        **extra,
    }


def _calibration_summary(report: dict[str, Any]) -> str:
    """What a calibration achieved, in a few words for the terminal."""
    similarity = (
        "similarity check off"
        if report["semantic_off"]
        else f"similarity threshold {report['threshold']:.3f}"
    )
    return f"{similarity}, refuses {report['rate']:.1%} of the {report['n']} calibrated on"


# --- input filter ------------------------------------------------------------------------


def _keywords(forget: Sequence[Record], negatives: Sequence[Record]) -> dict[str, str]:
    """Normalised phrase -> reason: the forget people's names, then distinctive answers.

    An answer is distinctive when no negative has it as its answer, no negative question
    mentions it (a retained sibling's or mentor's name would otherwise refuse every
    question about that retained person) and it is not one short word (a year).
    """
    keywords: dict[str, str] = {}
    for record in forget:
        if record.person:
            keywords.setdefault(normalize_answer(record.person), f"name:{record.person}")
    retained_answers = {normalize_answer(r.answer or "") for r in negatives}
    # One string of every negative question: one search per answer instead of one per pair.
    retained_questions = "\n".join(
        _padded(q) for r in negatives for q in (r.prompt, *r.paraphrases)
    )
    for record in forget:
        answer = normalize_answer(record.answer or "")
        distinctive = len(answer.split()) >= 2 or len(answer) >= MIN_KEYWORD_CHARS
        if (
            distinctive
            and answer not in retained_answers
            and not _mentions(retained_questions, answer)
        ):
            keywords.setdefault(answer, f"answer:{record.answer}")
    return keywords


def _keyword_pattern(keywords: dict[str, str]) -> re.Pattern[str] | None:
    """One regex for all keywords (longest first), matched on padded normalised text."""
    if not keywords:
        return None
    alternatives = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
    return re.compile(f" ({alternatives}) ")


@dataclass(eq=False)
class InputFilter:
    """Refuses a user message that names a forget target or asks a forget question."""

    keywords: dict[str, str]
    """Normalised phrase -> reason; a message containing one as whole words is refused."""
    questions: np.ndarray | None
    """The forget questions (prompts and paraphrases), embedded; None: semantic check off."""
    threshold: float = THRESHOLD_OFF
    calibration: dict[str, Any] = field(default_factory=dict)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._pattern = _keyword_pattern(self.keywords)

    @classmethod
    def build(
        cls,
        forget: list[Record],
        negatives: list[Record],
        false_refusal_rate: float = 0.05,
        semantic: bool = True,
        keywords: bool = True,
    ) -> InputFilter:
        """The filter for ``forget``, its threshold calibrated on ``negatives``' paraphrases."""
        _check_rate(false_refusal_rate)
        if not (semantic or keywords):
            raise ObliviateError("an input filter needs keywords, semantic matching or both")
        facts, retained = _facts(forget, "forget"), _facts(negatives, "retained (negative)")
        questions = [q for r in facts for q in (r.prompt, *r.paraphrases)]
        say(
            f"guard: input filter: keywords of {len(facts)} forget facts"
            + (f", embedding their {len(questions)} questions" if semantic else "")
        )
        unfitted = cls(
            keywords=_keywords(facts, retained) if keywords else {},
            questions=embed(questions) if semantic else None,
        )
        calibration = [q for q, _ in _calibration_questions(retained)]
        built = unfitted._calibrated(calibration, false_refusal_rate)
        say(f"guard: input filter ready: {_calibration_summary(built.calibration)}")
        return built

    def _calibrated(self, questions: list[str], rate: float) -> InputFilter:
        """A copy with the threshold that refuses at most ``rate`` of ``questions``."""
        open_ = [q for q in questions if self._keyword(q) is None]
        forced = len(questions) - len(open_)
        threshold = THRESHOLD_OFF
        refused = forced
        if self.questions is not None:
            say(
                f"guard: calibrating the input filter on {len(questions)} retained "
                f"questions (at most {rate:.0%} refused)"
            )
            scores = self._scores(open_, "guard: embedding retained questions")
            threshold = _calibrate(scores, forced, len(questions), rate)
            refused += int((scores >= threshold).sum())
        report = _calibration_report(
            refused, len(questions), rate, threshold, keyword_refusals=forced
        )
        return replace(self, threshold=threshold, calibration=report)

    def _keyword(self, text: str) -> str | None:
        """The reason of the first keyword in ``text``, or None."""
        found = self._pattern.search(_padded(text)) if self._pattern else None
        return self.keywords[found.group(1)] if found else None

    def _scores(self, texts: Sequence[str], label: str | None = None) -> np.ndarray:
        """Each text's highest similarity to a forget question (``label``: see _embed)."""
        if self.questions is None:
            return np.zeros(len(texts), dtype=np.float32)
        return _similarities(texts, self.questions, label).max(axis=1)

    def check(self, prompts: Sequence[str]) -> list[Decision]:
        """One decision per user message (context included), embedded in one batch."""
        reasons = [self._keyword(p) for p in prompts]
        decisions = [PASS if r is None else Decision(True, r) for r in reasons]
        open_ = [i for i, r in enumerate(reasons) if r is None]
        for i, score in zip(open_, self._scores([prompts[i] for i in open_]), strict=True):
            if score >= self.threshold:
                decisions[i] = Decision(True, f"similarity:{score:.2f}")
        return decisions

    def to_json(self) -> dict[str, Any]:
        """The filter's settings and calibration, for results.json."""
        return {
            "keywords": len(self.keywords),
            "semantic": self.questions is not None,
            "threshold": self.threshold,
            "calibration": self.calibration,
        }


# --- output filter -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Evidence:
    """What one answer reveals: forget records whose answer it contains, split into those
    whose person the prompt or answer names and the others, with their similarity."""

    named: tuple[int, ...] = ()
    similar: dict[int, float] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
        return bool(self.named or self.similar)

    def fired(self, threshold: float) -> list[int]:
        """The records this answer gives away at ``threshold``."""
        return [*self.named, *(i for i, s in self.similar.items() if s >= threshold)]


@cache
def _redaction_pattern(answer: str) -> re.Pattern[str]:
    """The answer in raw text as answer_matches sees it: any case, any punctuation or
    articles between its words, punctuation inside a word too (normalize_answer deletes
    it: ``1,000`` is ``1000``), whole words only."""
    gap = rf"(?:[{_SEPARATOR}]|\b(?:a|an|the)\b)+"
    inside = f"[{_PUNCTUATION}]*"
    words = gap.join(inside.join(re.escape(c) for c in w) for w in normalize_answer(answer).split())
    return re.compile(rf"(?<![^{_SEPARATOR}]){words}(?![^{_SEPARATOR}])", re.IGNORECASE)


@dataclass(eq=False)
class OutputFilter:
    """Refuses (or redacts) an answer that states a forget fact about its subject."""

    forget: list[Record]
    vectors: np.ndarray
    """Each forget record as ``question + answer``, embedded."""
    mode: str = "refuse"
    threshold: float = THRESHOLD_OFF
    calibration: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        forget: list[Record],
        negatives: list[Record],
        false_refusal_rate: float = 0.05,
        mode: str = "refuse",
    ) -> OutputFilter:
        """The filter for ``forget``, calibrated on ``negatives`` answered correctly.

        Only negatives whose gold answer contains a forget answer can fire, so the rate
        is taken over those: over all negatives, the budget would be spent exactly on
        the neighbours it exists to protect.
        """
        _check_rate(false_refusal_rate)
        if mode not in OUTPUT_MODES:
            raise ObliviateError(f"output filter mode must be one of {OUTPUT_MODES}, got {mode!r}")
        facts, retained = _facts(forget, "forget"), _facts(negatives, "retained (negative)")
        say(f"guard: output filter: embedding {len(facts)} forget facts")
        vectors = embed([f"{r.prompt} {r.answer}" for r in facts])
        unfitted = cls(forget=facts, vectors=vectors, mode=mode)
        pairs = _calibration_questions(retained)
        say(
            f"guard: calibrating the output filter on {len(pairs)} retained answers "
            f"(at most {false_refusal_rate:.0%} of those naming a forget answer refused)"
        )
        built = unfitted._calibrated(pairs, false_refusal_rate)
        say(f"guard: output filter ready: {_calibration_summary(built.calibration)}")
        return built

    def _calibrated(self, pairs: list[tuple[str, Record]], rate: float) -> OutputFilter:
        """A copy with the threshold that fires on at most ``rate`` of the candidates."""
        evidence = self._evidence(
            [q for q, _ in pairs], [r.answer or "" for _, r in pairs], "guard: embedding answers"
        )
        candidates = [e for e in evidence if e.matched]
        forced = sum(bool(e.named) for e in candidates)
        scores = np.array([max(e.similar.values()) for e in candidates if not e.named])
        threshold = _calibrate(scores, forced, len(candidates), rate)
        refused = sum(bool(e.fired(threshold)) for e in candidates)
        report = _calibration_report(
            refused,
            len(candidates),
            rate,
            threshold,
            name_refusals=forced,
            pairs=len(pairs),
            rate_all=refused / len(pairs),
        )
        return replace(self, threshold=threshold, calibration=report)

    def _evidence(
        self, prompts: Sequence[str], outputs: Sequence[str], label: str | None = None
    ) -> list[_Evidence]:
        """What each answer reveals; only answers with an unnamed match are embedded
        (``label``: see _embed)."""
        answers = [normalize_answer(r.answer or "") for r in self.forget]
        people = [normalize_answer(r.person or "") for r in self.forget]
        named: list[list[int]] = []
        unnamed: list[list[int]] = []
        for prompt, output in zip(prompts, outputs, strict=True):
            said, context = _padded(output), _padded(f"{prompt} {output}")
            matched = [i for i, a in enumerate(answers) if _mentions(said, a)]
            named.append([i for i in matched if _mentions(context, people[i])])
            unnamed.append([i for i in matched if i not in named[-1]])
        todo = [k for k, u in enumerate(unnamed) if u]
        sims = _similarities([f"{prompts[k]} {outputs[k]}" for k in todo], self.vectors, label)
        similar = {
            k: {i: float(row[i]) for i in unnamed[k]} for k, row in zip(todo, sims, strict=True)
        }
        return [_Evidence(tuple(n), similar.get(k, {})) for k, n in enumerate(named)]

    def _decision(self, evidence: _Evidence) -> Decision:
        fired = evidence.fired(self.threshold)
        if not fired:
            return PASS
        record = self.forget[fired[0]]
        why = (
            f"name:{record.person}"
            if fired[0] in evidence.named
            else f"similarity:{evidence.similar[fired[0]]:.2f}"
        )
        return Decision(True, f"answer:{record.answer},{why}")

    def check(self, prompts: Sequence[str], outputs: Sequence[str]) -> list[Decision]:
        """One decision per (user message, generated answer)."""
        return [self._decision(e) for e in self._evidence(prompts, outputs)]

    def apply(self, prompts: Sequence[str], outputs: Sequence[str], refusal: str) -> list[str]:
        """The answers the user sees: refused whole (``refuse``) or with every forget answer
        they give away replaced by ``[redacted]`` (``redact``)."""
        shown = []
        for output, evidence in zip(outputs, self._evidence(prompts, outputs), strict=True):
            fired = [self.forget[i] for i in evidence.fired(self.threshold)]
            if not fired:
                shown.append(output)
            elif self.mode == "refuse":
                shown.append(refusal)
            else:
                shown.append(_redacted(output, fired, refusal))
        return shown

    def to_json(self) -> dict[str, Any]:
        """The filter's settings and calibration, for results.json."""
        return {"mode": self.mode, "threshold": self.threshold, "calibration": self.calibration}


def _redacted(output: str, records: Sequence[Record], refusal: str) -> str:
    """``output`` with the records' answers replaced; the refusal if one still shows."""
    for record in records:
        output = _redaction_pattern(record.answer or "").sub(REDACTED, output)
    padded = _padded(output)
    leaked = any(_mentions(padded, normalize_answer(r.answer or "")) for r in records)
    return refusal if leaked else output
