"""The validation request ``obliviate tune`` tunes on: never the request it is tuned for.

A recipe tuned on the forget split it is then judged on has seen its test set: its forget
quality says how well the search fitted those people, not how well the recipe forgets.
So tuning unlearns other people, chosen here:

- On the built-in benchmark, ``validate10`` holds as many people as ``forget10``, drawn
  from the retained people who are *not* forget10's neighbours (no shared birthplace,
  profession or employer, no mentor, mentee or sibling among them), so nothing about the
  test request leaks into the search, not even through a related person.
  ``validate10_retain`` is everyone trained but forget10 and validate10 (the test request's
  people are in no file tuning reads) and ``validate10_neighbors`` the retained people
  close to the validation people. ``bench make`` writes the three files for forget10
  (:func:`validation_files`); for any forget split (and for a benchmark made before they
  existed) :func:`bench_validation` derives the same records from ``facts.json`` and
  ``full.jsonl``. The choice is a pure function of the benchmark's seed and the split.
- On the user's own forget file, :func:`held_out_part` keeps a deterministic share of it
  (whole groups — people or topics — where the records name two or more, else every
  other record) to tune on.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.errors import ObliviateError

#: The attributes two people share to be neighbours (as ``people.neighbours`` defines them).
SHARED_ATTRIBUTES = ("birthplace", "profession", "employer")
#: The roles of a validation request, and the file suffix of each.
ROLES = {"forget": "", "retain": "_retain", "neighbors": "_neighbors"}


def validation_name(split: str) -> str:
    """The validation request of a forget split: ``forget10`` → ``validate10``."""
    share = split.removeprefix("forget")
    if not split.startswith("forget") or not share.isdigit():
        raise ObliviateError(f"split {split!r} is not a forget split; use e.g. forget10")
    return f"validate{share}"


def validation_files(split: str) -> dict[str, str]:
    """Role (forget, retain, neighbors) → file name of the validation request of ``split``."""
    name = validation_name(split)
    return {role: f"{name}{suffix}.jsonl" for role, suffix in ROLES.items()}


@dataclass(frozen=True)
class Validation:
    """A validation request: its records by role and who it removes."""

    name: str
    records: dict[str, list[Record]]
    people: tuple[str, ...]
    """The names of the people it removes (those an oracle must be retrained without)."""
    clear_of_neighbours: bool
    """Whether no validation person is a neighbour of the test request's people (False
    only on a benchmark too small to find enough others)."""


def _close(person: dict[str, Any], others: list[dict[str, Any]]) -> bool:
    """Whether ``person`` shares an attribute with, or is related to, one of ``others``."""
    mine = person["attributes"]
    relations = {r["id"] for r in person.get("relations", {}).values()}
    for other in others:
        if any(mine[a] == other["attributes"][a] for a in SHARED_ATTRIBUTES):
            return True
        theirs = {r["id"] for r in other.get("relations", {}).values()}
        if other["id"] in relations or person["id"] in theirs:
            return True
    return False


def validation_request(
    kb: dict[str, Any], full: list[Record], split: str = "forget10"
) -> Validation:
    """The validation request of ``split`` from the knowledge base (``facts.json``) and
    every trained person's facts (``full.jsonl``); see the module's docstring."""
    if split not in kb.get("splits", {}):
        raise ObliviateError(f"the benchmark has no split {split!r}")
    people = {p["id"]: p for p in kb["people"]}
    forget_ids = set(kb["splits"][split])
    forgotten = [people[i] for i in kb["splits"][split]]
    rest = [people[i] for i in kb["splits"]["full"] if i not in forget_ids]
    far = [p for p in rest if not _close(p, forgotten)]
    near = [p for p in rest if _close(p, forgotten)]
    count = len(forgotten)
    if len(rest) <= count:
        raise ObliviateError(
            f"the benchmark has too few people besides {split}'s to tune on; make it with "
            "more --people"
        )
    rng = random.Random(f"obliviate validation {kb['seed']} {split}")
    chosen = rng.sample(far, count) if len(far) >= count else far + near[: count - len(far)]
    chosen_ids = {p["id"] for p in chosen}
    chosen = [p for p in rest if p["id"] in chosen_ids]  # in the benchmark's order
    kept = [p for p in rest if p["id"] not in chosen_ids]
    groups = {
        "forget": chosen,
        "retain": kept,
        "neighbors": [p for p in kept if _close(p, chosen)],
    }
    records = {}
    for role, group in groups.items():
        names = {p["name"] for p in group}
        records[role] = [r for r in full if r.person in names]
    return Validation(
        name=validation_name(split),
        records=records,
        people=tuple(p["name"] for p in chosen),
        clear_of_neighbours=len(far) >= count,
    )


def bench_validation(bench: str | Path, split: str = "forget10") -> Validation:
    """The validation request of ``split`` in a benchmark directory: the files ``bench make``
    wrote for it where they are there, else derived from ``facts.json`` and ``full.jsonl``."""
    bench = Path(bench).expanduser()
    kb_path, full_path = bench / "facts.json", bench / "full.jsonl"
    if not kb_path.is_file() or not full_path.is_file():
        raise ObliviateError(
            f"{bench} is not a built-in benchmark (no facts.json and full.jsonl); make one "
            "with `obliviate bench make`, or tune on your own files with --forget and --retain"
        )
    kb = json.loads(kb_path.read_text(encoding="utf-8"))
    derived = validation_request(kb, load_records(full_path), split)
    files = {role: bench / name for role, name in validation_files(split).items()}
    if not all(path.is_file() for path in files.values()):
        return derived
    written = {role: load_records(path) for role, path in files.items()}
    if [r.id for r in written["forget"]] != [r.id for r in derived.records["forget"]]:
        raise ObliviateError(
            f"{files['forget']} does not hold the validation people of this benchmark's "
            "seed; make the benchmark again with `obliviate bench make`"
        )
    return Validation(derived.name, written, derived.people, derived.clear_of_neighbours)


def held_out_part(records: list[Record], share: float = 0.5) -> tuple[list[Record], list[Record]]:
    """(the part of the user's forget records to tune on, the rest): a deterministic
    ``share`` of them. Records that name their group (``Record.group``: a group, topic or
    person) are kept together, whole groups taken in turn (so no person or topic is in
    both parts); otherwise, or when they are all one group (one topic), records are taken
    in turn. Each part keeps the file's order."""
    if not 0 < share < 1:
        raise ObliviateError(f"the held-out share must be between 0 and 1, not {share}")
    keyed = all(r.group for r in records) and len({r.group for r in records}) > 1
    keys = list(dict.fromkeys(r.group if keyed else r.id for r in records))
    if len(keys) < 2:
        raise ObliviateError(
            f"the forget file has {len(keys)} records; tuning needs at least 2 (one part to "
            "tune on, one it never sees)"
        )
    taken = max(1, min(len(keys) - 1, round(share * len(keys))))
    # Evenly spaced through the file, so each part samples all of it.
    chosen = {keys[int(i * len(keys) / taken)] for i in range(taken)}
    inside = [r for r in records if (r.group if keyed else r.id) in chosen]
    outside = [r for r in records if (r.group if keyed else r.id) not in chosen]
    return inside, outside
