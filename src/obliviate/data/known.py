"""The built-in benchmark of knowledge a model already has (``bench make --kind known``).

The usual deletion request is not about people invented for a benchmark: a pretrained
model knows something from pretraining (a writer, a planet, a country) and it must go.
No model retrained without it can exist, so "forgotten" is judged against the starting
model itself, on facts it demonstrably answers. The candidate facts live in
``known/<topic>.jsonl`` (the record format: ``prompt``, at least two ``paraphrases``,
``answer``, three same-type wrong answers in ``perturbed``, the entity in ``topic``), one
file per topic holding its own facts and its *neighbour* facts (``neighbor_of``: close
entities of the same domain, which must stay), and ``known/invented.jsonl``: facts of the
same form about invented names, the never-seen control no model can answer.

A model answers only some of them, so the candidates are screened first (in
``obliviate.evaluation.screening``, which runs the model): a fact is kept when the model's
greedy answer to its question contains the answer, by evaluation's own check; an invented
fact is kept when it does not. This module holds the candidates and writes the splits
from a screening (or from none: ``--no-screen`` keeps every candidate). Data only: it
imports no model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.data.loaders import load_records
from obliviate.data.publish import publish_files
from obliviate.data.records import Record
from obliviate.data.world_facts import world_records
from obliviate.errors import ObliviateError

__all__ = [
    "KNOWN_FILES",
    "MIN_FACTS",
    "KnownTopic",
    "Screened",
    "candidate_records",
    "choose_topic",
    "invented_facts",
    "known_splits",
    "known_topics",
    "make_known_benchmark",
    "screening_summary",
]

#: Where the candidates are (package data, see pyproject's ``package-data``).
KNOWN_DIR = Path(__file__).parent / "known"
#: The topics in the order a default forget topic is chosen (file stems, ``--topic`` values).
TOPIC_KEYS: tuple[str, ...] = ("shakespeare", "united_states", "jupiter", "einstein")
#: The invented facts' file stem.
INVENTED = "invented"
#: The files of a known benchmark, in the order they are written.
KNOWN_FILES: tuple[str, ...] = (
    "forget.jsonl",
    "neighbors.jsonl",
    "retain.jsonl",
    "full.jsonl",
    "holdout.jsonl",
    "world.jsonl",
    "bench.json",
)
#: A topic with fewer facts the model answers is not a forget topic worth measuring.
MIN_FACTS = 8


@dataclass(frozen=True)
class KnownTopic:
    """One topic's candidates: its facts (the forget set when chosen) and its neighbours."""

    key: str
    """The ``--topic`` value (the file stem)."""
    name: str
    """The entity, as its facts' ``topic`` field names it."""
    facts: tuple[Record, ...]
    neighbors: tuple[Record, ...]


@dataclass(frozen=True)
class Screened:
    """How a model answered one candidate fact (greedy, evaluation's answer check)."""

    answered: bool
    """Its question (``prompt``)."""
    paraphrases_answered: int
    """How many of its paraphrases."""


def _read(key: str) -> list[Record]:
    path = KNOWN_DIR / f"{key}.jsonl"
    if not path.is_file():
        raise ObliviateError(f"{path} is missing; reinstall obliviate")
    return load_records(path)


def known_topics() -> tuple[KnownTopic, ...]:
    """Every topic's candidates, in ``TOPIC_KEYS`` order."""
    topics = []
    for key in TOPIC_KEYS:
        records = _read(key)
        facts = tuple(r for r in records if "neighbor_of" not in r.meta)
        neighbors = tuple(r for r in records if "neighbor_of" in r.meta)
        topics.append(KnownTopic(key, facts[0].meta["topic"], facts, neighbors))
    return tuple(topics)


def invented_facts() -> tuple[Record, ...]:
    """The invented facts: the never-seen control."""
    return tuple(_read(INVENTED))


def candidate_records() -> list[Record]:
    """Every candidate a screening asks about: each topic's facts and neighbours, then the
    invented facts."""
    found = [r for t in known_topics() for r in (*t.facts, *t.neighbors)]
    return [*found, *invented_facts()]


def _kept(records: tuple[Record, ...], screened: dict[str, Screened] | None) -> list[Record]:
    """The records the model answers (all of them when nothing was screened)."""
    return [r for r in records if screened is None or screened[r.id].answered]


def screening_summary(screened: dict[str, Screened]) -> dict[str, Any]:
    """``topics``: per topic (key), how many facts and neighbours the model answered out of
    the candidates, and the share of the answered facts' paraphrases it also answers;
    ``invented``: how many invented facts it did not answer."""
    topics: dict[str, Any] = {}
    for topic in known_topics():
        facts = _kept(topic.facts, screened)
        asked = sum(len(r.paraphrases) for r in facts)
        hits = sum(screened[r.id].paraphrases_answered for r in facts)
        topics[topic.key] = {
            "topic": topic.name,
            "facts": len(facts),
            "fact_candidates": len(topic.facts),
            "paraphrase_accuracy": round(hits / asked, 4) if asked else None,
            "neighbors": len(_kept(topic.neighbors, screened)),
            "neighbor_candidates": len(topic.neighbors),
        }
    invented = invented_facts()
    return {
        "topics": topics,
        "invented": {
            "unanswered": sum(not screened[r.id].answered for r in invented),
            "candidates": len(invented),
        },
    }


def choose_topic(screened: dict[str, Screened] | None, topic: str | None = None) -> KnownTopic:
    """The forget topic: ``topic`` (its key or its entity's name, any case), or the first
    topic with at least ``MIN_FACTS`` facts the model answers."""
    topics = known_topics()

    def usable(t: KnownTopic) -> bool:
        return len(_kept(t.facts, screened)) >= MIN_FACTS

    names = ", ".join(t.key for t in topics)
    if topic is None:
        for t in topics:
            if usable(t):
                return t
        raise ObliviateError(
            f"the model answers fewer than {MIN_FACTS} facts of every topic ({names}); it "
            "knows too little for this benchmark (--no-screen keeps every candidate)"
        )
    wanted = topic.strip().lower()
    match = [t for t in topics if wanted in (t.key, t.name.lower())]
    if not match:
        raise ObliviateError(f"unknown topic {topic!r}; choose one of {names}")
    if not usable(match[0]):
        others = ", ".join(t.key for t in topics if usable(t)) or "none"
        raise ObliviateError(
            f"the model answers only {len(_kept(match[0].facts, screened))} facts of "
            f"{match[0].key} (at least {MIN_FACTS} needed); topics it knows: {others}"
        )
    return match[0]


def known_splits(
    screened: dict[str, Screened] | None, topic: str | None = None
) -> tuple[KnownTopic, dict[str, list[Record]]]:
    """The chosen topic and the records of each file (stem → records): ``forget`` (its facts
    the model answers), ``neighbors`` (its neighbours it answers), ``retain`` (the other
    topics' facts it answers), ``full`` (the three), ``holdout`` (invented facts it does not
    answer) and ``world`` (the general questions). ``screened`` None keeps every candidate."""
    chosen = choose_topic(screened, topic)
    forget = _kept(chosen.facts, screened)
    neighbors = _kept(chosen.neighbors, screened)
    retain = [r for t in known_topics() if t.key != chosen.key for r in _kept(t.facts, screened)]
    holdout = [r for r in invented_facts() if screened is None or not screened[r.id].answered]
    empty = {
        "neighbors": f"it answers none of {chosen.key}'s neighbours",
        "retain": "it answers no fact of the other topics",
        "holdout": "it answers every invented fact",
    }
    for name, records in (("neighbors", neighbors), ("retain", retain), ("holdout", holdout)):
        if not records:
            raise ObliviateError(
                f"no {name} records: {empty[name]}; choose another --topic or use --no-screen"
            )
    splits = {
        "forget": forget,
        "neighbors": neighbors,
        "retain": retain,
        "full": [*forget, *retain, *neighbors],
        "holdout": holdout,
        "world": world_records(),
    }
    return chosen, splits


def make_known_benchmark(
    out_dir: str | Path,
    screened: dict[str, Screened] | None,
    topic: str | None = None,
    model: str | None = None,
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Write the known benchmark to ``out_dir`` (published in one step, as ``bench make``'s
    files are); return file stem → path and the ``bench.json`` document.

    ``screened`` (record id → how ``model`` answered it, for every candidate) keeps the
    facts ``model`` knows; None (``--no-screen``) keeps every candidate, and ``model`` is
    then recorded as null.
    """
    chosen, splits = known_splits(screened, topic)
    document = {
        "kind": "known",
        "split": "forget",
        "topic": chosen.name,
        "model": model if screened is not None else None,
        "holdout": "invented",
        "counts": {name: len(records) for name, records in splits.items()},
        "screening": screening_summary(screened) if screened is not None else None,
    }
    files = {
        f"{name}.jsonl": "".join(
            json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records
        ).encode("utf-8")
        for name, records in splits.items()
    }
    files["bench.json"] = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    what = f"the known benchmark of topic {chosen.key}"
    out = publish_files(out_dir, {name: files[name] for name in KNOWN_FILES}, what)
    return {name.rsplit(".", 1)[0]: out / name for name in KNOWN_FILES}, document
