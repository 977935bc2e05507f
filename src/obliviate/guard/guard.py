"""A guard: what keeps forgotten content out at inference, around any model.

Four components, combinable: ``prefix`` (an instruction naming the forget targets, put
before every question), ``icul`` (in-context unlearning: demonstrations of forget
questions answered with refusals), ``input_filter`` (refuse a question about a forget
target before the model sees it) and ``output_filter`` (refuse or redact an answer that
gives a forget fact away). The guard changes the prompt (``wrap``) and the answers
(``filter``); evaluation and audit call both, so any model, unlearned too, can be
measured behind it with the same figures.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.guard.filters import InputFilter, OutputFilter
from obliviate.guard.icul import icul_context, select_demonstrations
from obliviate.models.embeddings import embed
from obliviate.progress import say

COMPONENTS: tuple[str, ...] = ("prefix", "input_filter", "output_filter", "icul")
DEFAULT_REFUSAL = "I'm sorry, but I can't share information about that."

#: Phrases that mark an answer as a refusal in the model's own words (a prefix or ICUL
#: makes the model refuse; a filter answers with ``refusal``).
REFUSAL_MARKERS = re.compile(
    r"\b(i don't know|i do not know|i can't|i cannot|i'm unable|i am unable|i'm not able|"
    r"i am not able|i'm sorry|i am sorry|no idea|not sure|i'm afraid|can't share|"
    r"cannot share|not allowed|i don't have)\b",
    re.IGNORECASE,
)


def looks_like_refusal(text: str) -> bool:
    """True when an answer declines to answer (by a filter or in the model's words)."""
    return bool(REFUSAL_MARKERS.search(text.replace("’", "'")))


@dataclass(frozen=True)
class GuardConfig:
    """What the guard does; ``obliviate eval/audit/chat --guard`` takes a comma-separated
    list of components (defaults for the rest) or a YAML file with these keys."""

    components: tuple[str, ...]
    refusal: str = DEFAULT_REFUSAL
    """What a filter answers in place of the model."""
    false_refusal_rate: float = 0.05
    """The filters' thresholds are calibrated on retained questions to refuse at most
    this fraction of them."""
    output_mode: str = "refuse"
    """``refuse`` (the whole answer) or ``redact`` (only the forget answer in it)."""
    icul_k: int = 4
    """In-context demonstrations (chosen ERASE-style: k-means over the forget questions)."""
    icul_style: str = "refusal"
    """``refusal`` or ``wrong`` (a wrong answer of the same type) in the demonstrations."""
    prefix: str | None = None
    """The instruction put before every question; None: one naming the forget targets."""
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [c for c in self.components if c not in COMPONENTS]
        if unknown or not self.components:
            raise ObliviateError(
                f"unknown guard component '{unknown[0] if unknown else ''}'; "
                f"combine: {', '.join(COMPONENTS)}"
            )
        if self.output_mode not in ("refuse", "redact"):
            raise ObliviateError("guard output_mode must be refuse or redact")
        if self.icul_style not in ("refusal", "wrong"):
            raise ObliviateError("guard icul_style must be refusal or wrong")

    @classmethod
    def parse(cls, spec: str | Path) -> GuardConfig:
        """A YAML file of the fields, or ``prefix,input_filter`` (``all`` for every one)."""
        path = Path(spec)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if not path.is_file():
                raise ObliviateError(f"guard config {path} does not exist")
            try:
                values = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ObliviateError(f"guard config {path} is not valid YAML") from exc
            if not isinstance(values, dict):
                raise ObliviateError(f"guard config {path} must be a mapping of fields")
            known = {f.name for f in fields(cls)}
            extra = sorted(set(values) - known)
            if extra:
                raise ObliviateError(
                    f"guard config {path} has unknown key '{extra[0]}'; keys: {', '.join(known)}"
                )
            components = values.pop("components", None)
            if isinstance(components, str):
                components = components.split(",")
            return cls(components=tuple(c.strip() for c in components or ()), **values)
        names = [c.strip() for c in str(spec).split(",") if c.strip()]
        return cls(components=COMPONENTS if names == ["all"] else tuple(names))


def default_prefix(forget: Sequence[Record]) -> str:
    """An instruction that names the forget targets: their people, else their questions."""
    people = list(dict.fromkeys(r.person for r in forget if r.person))
    if people:
        listed = ", ".join(people)
        return (
            f"You must not reveal any information about these people: {listed}. "
            "If a question is about one of them, say that you cannot share it."
        )
    questions = " ".join(dict.fromkeys(r.prompt for r in forget))
    return (
        "You must not reveal the answers to these questions, however they are asked: "
        f"{questions} If a question is about them, say that you cannot share it."
    )


@dataclass
class Guard:
    """The built guard: the context it puts before questions and its two filters."""

    config: GuardConfig
    context: str | None = None
    input_filter: InputFilter | None = None
    output_filter: OutputFilter | None = None
    filter_seconds: float = 0.0
    checked: int = 0
    """Answers that went through ``filter`` (for the filters' time per answer)."""
    filtered: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0})

    @classmethod
    def build(
        cls, config: GuardConfig, forget: Sequence[Record], negatives: Sequence[Record]
    ) -> Guard:
        """Build the guard for ``forget``; ``negatives`` (retained questions) calibrate the
        filters' false-refusal rate."""
        facts = [r for r in forget if not r.is_text]
        if not facts:
            raise ObliviateError("a guard needs the forget records (questions and answers)")
        needs_negatives = {"input_filter", "output_filter"} & set(config.components)
        if needs_negatives and not negatives:
            raise ObliviateError(
                "the guard's filters calibrate on retained questions; give --bench or --retain"
            )
        started = time.perf_counter()
        say(
            f"guard: building {', '.join(config.components)} for {len(facts)} forget facts"
            + (f", calibrated on {len(negatives)} retained" if needs_negatives else "")
        )
        if {"icul", "input_filter", "output_filter"} & set(config.components):
            say("guard: loading the sentence-embedding model")
            embed([])  # loads it now (once per process): the wait is named, not hidden
        parts = []
        if "prefix" in config.components:
            parts.append(config.prefix or default_prefix(facts))
            say("guard: prefix " + ("given" if config.prefix else "naming the forget targets"))
        if "icul" in config.components:
            demos = select_demonstrations(facts, config.icul_k, config.seed)
            parts.append(icul_context(demos, config.icul_style, config.seed))
        rate = config.false_refusal_rate
        guard = cls(
            config=config,
            context="\n\n".join(parts) or None,
            input_filter=InputFilter.build(facts, list(negatives), rate)
            if "input_filter" in config.components
            else None,
            output_filter=OutputFilter.build(facts, list(negatives), rate, config.output_mode)
            if "output_filter" in config.components
            else None,
        )
        say(f"guard: ready ({time.perf_counter() - started:.0f} s)")
        return guard

    def wrap(self, context: str | None) -> str | None:
        """The context a question is asked with: the guard's, then the question's own."""
        parts = [c for c in (self.context, context) if c]
        return "\n\n".join(parts) or None

    def filter(
        self, questions: Sequence[str], contexts: Sequence[str | None], answers: Sequence[str]
    ) -> list[str]:
        """The answers the user sees: refused when the input filter fires on the user's
        message (context and question), refused or redacted by the output filter."""
        started = time.perf_counter()
        messages = [f"{c}\n\n{q}" if c else q for q, c in zip(questions, contexts, strict=True)]
        shown = list(answers)
        if self.input_filter is not None:
            for i, decision in enumerate(self.input_filter.check(messages)):
                if decision.refuse:
                    shown[i] = self.config.refusal
                    self.filtered["input"] += 1
        if self.output_filter is not None:
            open_ = [i for i, a in enumerate(shown) if a != self.config.refusal]
            filtered = self.output_filter.apply(
                [messages[i] for i in open_], [shown[i] for i in open_], self.config.refusal
            )
            for i, text in zip(open_, filtered, strict=True):
                self.filtered["output"] += text != shown[i]
                shown[i] = text
        self.filter_seconds += time.perf_counter() - started
        self.checked += len(shown)
        return shown

    def filter_ms(self) -> float | None:
        """Mean time the filters took per answer, in milliseconds."""
        return round(1000 * self.filter_seconds / self.checked, 3) if self.checked else None

    def to_json(self) -> dict[str, Any]:
        """The guard's settings and calibration, for results.json."""
        out: dict[str, Any] = {"config": asdict(self.config), "context": self.context}
        out["config"]["components"] = list(self.config.components)
        if self.input_filter is not None:
            out["input_filter"] = self.input_filter.to_json()
        if self.output_filter is not None:
            out["output_filter"] = self.output_filter.to_json()
        return out


def build_guard(spec: str | Path, splits: dict[str, list[Record]]) -> Guard:
    """The guard ``spec`` names, built for the forget split and calibrated on the retained
    questions (retain and neighbors) of ``splits``."""
    negatives = [r for name in ("retain", "neighbors") for r in splits.get(name, [])]
    return Guard.build(GuardConfig.parse(spec), splits["forget"], negatives)
