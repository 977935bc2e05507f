"""The built-in benchmark: fictitious people, their facts, and TOFU-style splits.

Unlearning is only measurable against knowledge whose origin is known exactly. A model
cannot have seen these people before it is fine-tuned on them, so "forgotten" can be
judged against an oracle trained without them (TOFU's design), with no licence or
download involved. Everything comes from one ``random.Random(seed)``: the same seed
gives byte-identical files on any machine, and no set is ever iterated, so hash
randomisation cannot leak into the output.

Each person (``people.py``) has seven attributes with short answers (birthplace, birth
year, profession, employer, a parent, best-known work, award) and, for many, relations
to other people (a mentor, a sibling), so the hard in-scope probes of the survey exist
(``facts.py``): multi-hop questions that reach a fact through a relation, and the same
question in Spanish, French or German. ``neighbors`` holds the retained people closest
to the forgotten ones (shared birthplace, profession or employer; mentor, mentee or
sibling): the "hard out-of-scope" knowledge an over-eager method damages first. This
module draws them all from the seed, in one fixed order, and writes the splits.

Every split of people also comes as passages of text (``forget10.text.jsonl`` beside
``forget10.jsonl``): one prose biography per person stating all of that person's facts
(see ``passages``), so the same people serve the text scenario (MUSE's setting), whose
knowledge questions are this benchmark's own. ``forget25``/``retain75`` (the largest
request of a scale run, MUSE's "removal requests that grow") are written only on
request, so a default benchmark's files stay what they were.

``validate10`` (with ``validate10_retain`` and ``validate10_neighbors``) is the request
``obliviate tune`` tunes on instead of forget10: as many other people, none of them
forget10's neighbours (``validation``). Written beside the splits; every other file is
the same as without it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.data.facts import fact_records, passage_records
from obliviate.data.people import (
    DECOY_TITLES,
    choose_splits,
    forget_count,
    make_people,
    neighbours,
    plant_neighbours,
    work_titles,
)
from obliviate.data.publish import publish_files
from obliviate.data.records import Record
from obliviate.data.validation import validation_files, validation_request
from obliviate.data.world_facts import world_records
from obliviate.errors import ObliviateError
from obliviate.options import BENCH_SEED, PEOPLE

__all__ = [
    "MAX_PEOPLE",
    "MIN_PEOPLE",
    "SPLIT_FILES",
    "generate_benchmark",
    "generate_passages",
    "make_benchmark",
    "split_files",
]

#: The splits of people (TOFU's names), each written as facts and as passages.
PEOPLE_SPLITS: tuple[str, ...] = (
    "full",
    "forget01",
    "retain99",
    "forget05",
    "retain95",
    "forget10",
    "retain90",
    "neighbors",
    "holdout",
)
#: The extra splits of ``forget25=True``.
SCALE_SPLITS: tuple[str, ...] = ("forget25", "retain75")
#: The forget split whose validation request (``obliviate tune``'s) is written as files.
VALIDATED_SPLIT = "forget10"


def split_files(forget25: bool = False) -> tuple[str, ...]:
    """Every file :func:`make_benchmark` writes, in this order: per split of people its facts
    (``<split>.jsonl``) and passages (``<split>.text.jsonl``), the validation request of
    forget10 (facts), then ``world``, ``facts`` and ``bench`` (``BENCH_DOCUMENT``)."""
    splits = PEOPLE_SPLITS[:7] + (SCALE_SPLITS if forget25 else ()) + PEOPLE_SPLITS[7:]
    per_split = tuple(f"{s}{kind}.jsonl" for s in splits for kind in ("", ".text"))
    validation = tuple(validation_files(VALIDATED_SPLIT).values())
    return (*per_split, *validation, "world.jsonl", "facts.json", "bench.json")


#: ``bench.json``: what the directory is, for the commands that read it. The forget and
#: holdout people are drawn from one generated pool, so membership inference applies.
BENCH_DOCUMENT = {"kind": "facts", "split": VALIDATED_SPLIT, "holdout": "random"}

#: The files of a default benchmark.
SPLIT_FILES: tuple[str, ...] = split_files()

#: forget10 must hold at least one person and leave people to retain.
MIN_PEOPLE = 10
#: The invented name and title spaces stay far from exhausted below this.
MAX_PEOPLE = 500
#: Bumped whenever the generator changes what a seed produces.
FORMAT_VERSION = 2

FORGET_PERCENTS = (1, 5, 10)
#: The extra forget split of ``forget25=True``.
SCALE_PERCENT = 25


def _check_size(people: int) -> None:
    if isinstance(people, bool) or not isinstance(people, int):
        raise ObliviateError(f"people must be a whole number, got {people!r}")
    if people < MIN_PEOPLE:
        raise ObliviateError(
            f"people must be at least {MIN_PEOPLE} (got {people}) so that forget10 holds "
            "someone and people remain to retain"
        )
    if people > MAX_PEOPLE:
        raise ObliviateError(f"people must be at most {MAX_PEOPLE} (got {people})")


@dataclass(frozen=True)
class _Benchmark:
    """Everything one (seed, people, forget25) produces."""

    kb: dict[str, Any]
    """The knowledge base, written as ``facts.json``."""
    facts: dict[str, list[Record]]
    """Split name -> question-answer records (``world`` too)."""
    passages: dict[str, list[Record]]
    """Split name -> one passage per person of the split."""


def _build(seed: int, people: int, forget25: bool = False) -> _Benchmark:
    """The knowledge base (for ``facts.json``) and every split's facts and passages."""
    _check_size(people)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ObliviateError(f"seed must be a whole number, got {seed!r}")
    rng = random.Random(seed)
    holdout = max(4, forget_count(10, people))
    persons = make_people(rng, people, holdout)
    # Drawing the splits takes no random numbers per percent, so forget25 changes nothing else.
    percents = FORGET_PERCENTS + ((SCALE_PERCENT,) if forget25 else ())
    splits = choose_splits(rng, persons, percents)
    plant_neighbours(rng, persons, splits["forget10"])
    splits["neighbors"] = neighbours(persons, splits["forget10"])
    splits["holdout"] = [p.index for p in persons if p.group == "holdout"]
    used = {p.work for p in persons}
    titles = work_titles(rng, len(persons) + DECOY_TITLES)
    decoys = [t for t in titles if t not in used][:DECOY_TITLES]

    by_person = fact_records(rng, persons, decoys)
    passages = passage_records(seed, persons)
    facts = {name: [r for i in members for r in by_person[i]] for name, members in splits.items()}
    facts["world"] = world_records()

    membership = {p.pid: [s for s in splits if p.index in splits[s]] for p in persons}
    kb = {
        "generator": "obliviate.data.bench",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "people_trained": people,
        "people_holdout": holdout,
        "people": [
            {
                "id": p.pid,
                "name": p.name,
                "group": p.group,
                "attributes": {
                    "birthplace": p.birthplace,
                    "birth_year": p.birth_year,
                    "profession": p.profession,
                    "employer": p.employer,
                    "parent": p.parent,
                    "work": p.work,
                    "award": p.award,
                },
                "relations": {
                    key: {"id": persons[i].pid, "name": persons[i].name}
                    for key, i in (("mentor", p.mentor), ("sibling", p.sibling))
                    if i is not None
                },
                "splits": membership[p.pid],
            }
            for p in persons
        ],
        "splits": {s: [persons[i].pid for i in members] for s, members in splits.items()},
    }
    return _Benchmark(
        kb=kb,
        facts=facts,
        passages={name: [passages[i] for i in members] for name, members in splits.items()},
    )


def generate_benchmark(
    seed: int = BENCH_SEED.default, people: int = PEOPLE.default
) -> dict[str, list[Record]]:
    """Split name (file stem: ``forget10``, ``retain90``, ``full``, ``world``...) -> records.

    In memory and fast (well under a second), so tests and the tiny model's tokenizer
    can rebuild it instead of reading files. ``people`` trained people (at least
    ``MIN_PEOPLE``); holdout people, as many as forget10 but at least 4, are generated
    the same way but are in no training split: the "never seen" reference.
    """
    return _build(seed, people).facts


def generate_passages(
    seed: int = BENCH_SEED.default, people: int = PEOPLE.default, forget25: bool = False
) -> dict[str, list[Record]]:
    """Split name (``forget10``, ``retain90``, ``full``, ``holdout``...) -> the passages of its
    people (``{"id", "text", "person"}``, in the order of the split's facts), in memory."""
    return _build(seed, people, forget25).passages


def _contents(seed: int, people: int, forget25: bool) -> dict[str, bytes]:
    built = _build(seed, people, forget25)
    records = built.facts | {f"{name}.text": rs for name, rs in built.passages.items()}
    validation = validation_request(built.kb, built.facts["full"], VALIDATED_SPLIT)
    for role, filename in validation_files(VALIDATED_SPLIT).items():
        records[filename.removesuffix(".jsonl")] = validation.records[role]
    files: dict[str, bytes] = {}
    for filename in split_files(forget25):
        if filename.endswith(".jsonl"):
            stem = filename.removesuffix(".jsonl")
            text = "".join(
                json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records[stem]
            )
        elif filename == "bench.json":
            text = json.dumps(BENCH_DOCUMENT, indent=2) + "\n"
        else:
            text = json.dumps(built.kb, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        files[filename] = text.encode("utf-8")
    return files


def make_benchmark(
    out_dir: str | Path,
    seed: int = BENCH_SEED.default,
    people: int = PEOPLE.default,
    forget25: bool = False,
) -> dict[str, Path]:
    """Write the benchmark to ``out_dir``; return file stem (``forget10``, ``forget10.text``,
    ``facts``...) -> path. ``forget25`` adds the ``forget25``/``retain75`` splits.

    The files are written into a temporary directory next to ``out_dir`` and renamed
    into place in one step, so an interrupted call never leaves half a benchmark that
    a later run would train on. An existing non-empty ``out_dir`` is refused (it may
    hold someone's data), unless it already holds exactly this benchmark, byte for
    byte, in which case nothing is written: making it twice is harmless.
    """
    out = Path(out_dir).expanduser()
    files = _contents(seed, people, forget25)
    paths = {name.rsplit(".", 1)[0]: out / name for name in files}
    what = f"the benchmark for seed={seed}, people={people}, forget25={forget25}"
    publish_files(out, files, what)
    return paths
