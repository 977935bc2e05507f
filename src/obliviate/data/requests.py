"""Deletion requests that arrive one after another, as slices of a benchmark's nested splits.

The built-in benchmark's forget splits are nested (forget01 ⊂ forget05 ⊂ forget10 ⊂
forget25, the last with ``bench make --forget25``), so a list of them, smallest first, is
a sequence of requests: request k removes the people of split k whom no earlier request
removed (its *slice*), and keeps split k's complement as its retain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.data.scenario import scenario_files
from obliviate.errors import ObliviateError


@dataclass(frozen=True)
class Request:
    """One deletion request of a sequence: the people of ``split`` no earlier request removed."""

    index: int
    """1 for the first request."""
    split: str
    """The benchmark's forget split holding everyone removed once this request is done."""
    previous: str | None
    """The split of the request before (None for the first)."""
    people: tuple[str, ...]
    """The people this request removes (its slice), in the benchmark's order."""
    removed: frozenset[str]
    """Everyone removed once this request is done: the people of ``split``."""
    facts: list[Record]
    """The slice's question-answer records (evaluated as the split ``request-<index>``)."""
    passages: list[Record]
    """The slice's passages (the text scenario's forget data)."""
    retain: Path
    """The complement of ``split``: what this step keeps (facts or passages)."""

    @property
    def name(self) -> str:
        """The slice's split name in the step evaluations (``request-1``...)."""
        return f"request-{self.index}"


def parse_requests(requests: str | Sequence[str]) -> list[str]:
    """``forget01,forget05`` (or a list) as split names, refusing an empty or repeated one."""
    items = requests.split(",") if isinstance(requests, str) else list(requests)
    names = [str(name).strip() for name in items if str(name).strip()]
    if not names:
        raise ObliviateError(
            "no requests given; list forget splits smallest first, e.g. "
            "--requests forget01,forget05,forget10"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ObliviateError(
            f"request {repeated[0]} is listed twice; each request must remove new people"
        )
    return names


def _people(records: list[Record], path: Path) -> list[str]:
    people = [r.person for r in records]
    if not people or None in people:
        raise ObliviateError(
            f"{path} does not name the person of every record; a sequence of requests needs "
            "the built-in benchmark's people (obliviate bench make)"
        )
    return list(dict.fromkeys(people))


def request_slices(
    bench: str | Path, requests: str | Sequence[str], text: bool = False
) -> list[Request]:
    """The requests of a sequence, checked: known forget splits, each holding the one before
    and someone more. Request k's slice is split k minus split k − 1; its retain data is
    split k's complement (passages with ``text``, facts otherwise)."""
    bench = Path(bench).expanduser()
    if not bench.is_dir():
        raise ObliviateError(f"benchmark {bench} not found; make one with `obliviate bench make`")
    names = parse_requests(requests)
    available = sorted(
        p.name.removesuffix(".jsonl")
        for p in bench.glob("forget*.jsonl")
        if not p.name.endswith(".text.jsonl")
    )
    example = ",".join(available) or "forget01,forget05,forget10"
    for name in names:
        if name not in available:
            hint = " (forget25 comes with `obliviate bench make --forget25`)" * (name == "forget25")
            raise ObliviateError(
                f"unknown request {name!r}: benchmark {bench} has the forget splits "
                f"{', '.join(available) or 'none'}{hint}; give them smallest first, e.g. "
                f"--requests {example}"
            )
    out: list[Request] = []
    removed: frozenset[str] = frozenset()
    for index, name in enumerate(names, start=1):
        files = scenario_files(bench, name, text=True) if text else {}
        facts_path = bench / f"{name}.jsonl"
        facts = load_records(facts_path)
        people = _people(facts, facts_path)
        split_people = frozenset(people)
        previous = names[index - 2] if index > 1 else None
        if not removed <= split_people:
            raise ObliviateError(
                f"requests must be nested, each split holding the one before: {name} lacks "
                f"{len(removed - split_people)} of {previous}'s people; list the splits "
                f"smallest first, e.g. --requests {example}"
            )
        if split_people == removed:
            raise ObliviateError(
                f"request {name} removes no one that {previous} did not (the benchmark has too "
                "few people to tell them apart); drop one of them or make the benchmark with "
                "more --people"
            )
        new = tuple(p for p in people if p not in removed)
        passages = []
        if text:
            passages = [r for r in load_records(files["forget"]) if r.person in new]
            if {r.person for r in passages} != set(new):
                raise ObliviateError(
                    f"{files['forget']} lacks the passage of someone in {name}; make the "
                    "benchmark again with `obliviate bench make`"
                )
        retain = files["retain"] if text else scenario_files(bench, name)["retain"]
        out.append(
            Request(
                index=index,
                split=name,
                previous=previous,
                people=new,
                removed=split_people,
                facts=[r for r in facts if r.person in new],
                passages=passages,
                retain=retain,
            )
        )
        removed = split_people
    return out
