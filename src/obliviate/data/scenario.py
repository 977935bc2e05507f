"""Scenario resolution: which benchmark files (or the user's own) a command reads.

A benchmark directory (``obliviate bench make``) holds a TOFU-style set of splits; a
command names a forget split and this module finds its complement, the evaluation splits
and the passages beside them. The user's own files take precedence role by role.
"""

from __future__ import annotations

import json
from pathlib import Path

from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.data.world_facts import world_records
from obliviate.errors import ObliviateError
from obliviate.options import SPLIT

#: TOFU's general-knowledge splits of model utility, by the file names a benchmark directory
#: may hold them under (``real_authors.jsonl``, ``world_facts.jsonl``) and the options
#: that give them (``--real-authors``, ``--world-facts``).
UTILITY_SPLITS = ("real_authors", "world_facts")


def resolve_data(data: str | Path, text: bool = False) -> Path:
    """A records file or folder, or a benchmark directory: its ``full.jsonl`` (every
    person's facts) or, with ``text``, its ``full.text.jsonl`` (every person's passage)."""
    path = Path(data).expanduser()
    full = path / ("full.text.jsonl" if text else "full.jsonl")
    if path.is_dir() and full.is_file():
        return full
    if text and (path / "full.jsonl").is_file():
        raise ObliviateError(
            f"{path} has no full.text.jsonl (made before benchmarks had passages); "
            "make it again with `obliviate bench make`"
        )
    return path


def retain_split_for(split: str) -> str | None:
    """The retain split that completes a forget split (``forget10`` → ``retain90``,
    ``forget`` → ``retain``: a known-knowledge benchmark's one split)."""
    if split == "forget":
        return "retain"
    share = split.removeprefix("forget")
    if not share.isdigit():
        return None
    return f"retain{100 - int(share):02d}"


def resolve_split(bench: str | Path, split: str) -> str:
    """The forget split a command reads in a benchmark directory: ``split``, unless its file
    is missing, ``split`` is the default (``--split`` left out) and the directory's
    ``bench.json`` names a ``split`` (a known-knowledge benchmark's ``forget``)."""
    bench = Path(bench).expanduser()
    if split != SPLIT.default or (bench / f"{split}.jsonl").is_file():
        return split
    try:
        named = json.loads((bench / "bench.json").read_text(encoding="utf-8")).get("split")
    except (OSError, ValueError, AttributeError):  # no bench.json, or not an object
        return split
    return named if isinstance(named, str) and named.strip() else split


def scenario_files(bench: str | Path, split: str, text: bool = False) -> dict[str, Path]:
    """The benchmark files one scenario trains on: ``full`` (the target's data), ``forget``
    (``split``, see ``resolve_split``) and ``retain`` (its complement, the oracle's data).
    ``text`` takes the passages (``<split>.text.jsonl``) instead of the facts: MUSE's
    setting, where target and oracle learn the people from prose and unlearning removes the
    prose."""
    bench = Path(bench).expanduser()
    split = resolve_split(bench, split)
    kind = ".text" if text else ""
    retain = retain_split_for(split)
    if retain is None:
        raise ObliviateError(f"split {split!r} is not a forget split; use e.g. forget10")
    names = {"full": "full", "forget": split, "retain": retain}
    files = {role: bench / f"{name}{kind}.jsonl" for role, name in names.items()}
    for path in files.values():
        if not path.is_file():
            raise ObliviateError(
                f"{path} not found; make the benchmark with `obliviate bench make`"
            )
    return files


def evenly_spaced(records: list[Record], limit: int | None) -> list[Record]:
    """An evenly spaced, deterministic sample of at most ``limit`` records."""
    if limit is None or len(records) <= limit:
        return records
    stride = len(records) / limit
    return [records[int(i * stride)] for i in range(limit)]


def bench_splits(
    bench: str | Path, split: str, max_per_split: int | None = None
) -> dict[str, list[Record]]:
    """The evaluation splits of a benchmark directory: forget, retain, neighbors, holdout, world,
    and TOFU's ``real_authors`` and ``world_facts`` where the directory has them.

    ``split`` names the forget split's file (``forget10`` → ``forget10.jsonl``, see
    ``resolve_split``); its retain split is the complement (``retain90``). Splits the
    directory lacks are left out. ``neighbors`` (the retained people near forget10's) loses
    anyone the split forgets, as a larger split (``forget25``) may.
    """
    bench = Path(bench).expanduser()
    split = resolve_split(bench, split)
    if not (bench / f"{split}.jsonl").is_file():
        available = sorted(p.stem for p in bench.glob("forget*.jsonl") if ".text" not in p.stem)
        hint = (
            f" (it has {', '.join(available)})"
            if available
            else ("; make one with `obliviate bench make --out DIR`")
        )
        raise ObliviateError(f"no split {split!r} in benchmark {bench}{hint}")
    files = {
        "forget": split,
        "retain": retain_split_for(split),
        "neighbors": "neighbors",
        "holdout": "holdout",
        "world": "world",
        **{role: role for role in UTILITY_SPLITS},
    }
    loaded = {
        role: load_records(bench / f"{name}.jsonl")
        for role, name in files.items()
        if name and (bench / f"{name}.jsonl").is_file()
    }
    forgotten = {r.person for r in loaded["forget"] if r.person}
    if "neighbors" in loaded:
        loaded["neighbors"] = [r for r in loaded["neighbors"] if r.person not in forgotten]
    return {role: evenly_spaced(records, max_per_split) for role, records in loaded.items()}


def evaluation_splits(
    bench: str | Path | None,
    split: str,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    holdout: str | Path | None = None,
    max_per_split: int | None = None,
    real_authors: str | Path | None = None,
    world_facts: str | Path | None = None,
    neighbors: str | Path | None = None,
    world: str | Path | None = None,
) -> dict[str, list[Record]]:
    """The splits to evaluate: a benchmark's, with the user's own files taking precedence
    role by role (``neighbors``: close facts that must stay; ``world``: general questions).

    Where neither gives general questions, the built-in world questions stand in (with or
    without a benchmark). ``real_authors`` and ``world_facts`` are TOFU's sets of those
    names (its ``real_authors_perturbed.json`` and ``world_facts_perturbed.json`` load as
    they are), which TOFU's model utility needs; each must give every record wrong answers.
    """
    if bench is None and forget is None:
        raise ObliviateError("give a benchmark (--bench DIR) or your own records (--forget FILE)")
    splits = bench_splits(bench, split, max_per_split) if bench is not None else {}
    if world is None and "world" not in splits:
        splits["world"] = world_records()
    own = {"forget": forget, "retain": retain, "holdout": holdout}
    own |= {"neighbors": neighbors, "world": world}
    own |= {"real_authors": real_authors, "world_facts": world_facts}
    for role, path in own.items():
        if path is not None:
            splits[role] = evenly_spaced(load_records(path), max_per_split)
    for role in UTILITY_SPLITS:
        lacking = [r.id for r in splits.get(role, []) if not r.perturbed]
        if lacking:
            raise ObliviateError(
                f"{role}: {len(lacking)} records without wrong answers (perturbed_answer), "
                f"the first {lacking[0]}; TOFU's model utility scores every one against them"
            )
    return splits


def bench_passages(
    bench: str | Path, split: str, max_per_split: int | None = None
) -> dict[str, list[Record]]:
    """A benchmark's passages by role: ``<file>.text.jsonl`` beside the forget split's file,
    its retain split's and the holdout's (those the directory has)."""
    bench = Path(bench).expanduser()
    split = resolve_split(bench, split)
    files = {"forget": split, "retain": retain_split_for(split), "holdout": "holdout"}
    return {
        role: evenly_spaced(load_records(bench / f"{name}.text.jsonl"), max_per_split)
        for role, name in files.items()
        if name and (bench / f"{name}.text.jsonl").is_file()
    }


def evaluation_passages(
    bench: str | Path | None,
    split: str,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    holdout: str | Path | None = None,
    max_per_split: int | None = None,
) -> dict[str, list[Record]]:
    """The passages MUSE's text figures are computed on, by role (forget, retain, holdout).

    A benchmark's passages, with the passages (``{"id", "text"}`` records) of the user's
    own files taking precedence, role by role, as in ``evaluation_splits``. Empty when
    there are none: the evaluation then stays a question-answer one.
    """
    found = bench_passages(bench, split, max_per_split) if bench is not None else {}
    for role, path in (("forget", forget), ("retain", retain), ("holdout", holdout)):
        if path is not None:
            found[role] = evenly_spaced([r for r in load_records(path) if r.is_text], max_per_split)
    return {role: records for role, records in found.items() if records}


def bench_holdout(bench: str | Path) -> str:
    """How a benchmark directory's holdout records were drawn, as its ``bench.json`` says:
    ``random`` (forget and holdout people drawn from one generated pool, ``bench make``'s
    facts) or ``invented`` (facts made up to look like the forget ones, a known-knowledge
    benchmark's). A directory without bench.json (made before it existed) is ``random``."""
    path = Path(bench).expanduser() / "bench.json"
    if not path.is_file():
        return "random"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ObliviateError(
            f"{path} is not valid JSON ({error}); make the benchmark again with "
            "`obliviate bench make`"
        ) from error
    holdout = document.get("holdout", "random") if isinstance(document, dict) else None
    if not isinstance(holdout, str):
        raise ObliviateError(f'{path}: "holdout" must be "random" or "invented"')
    return holdout


def mia_applicability(
    bench: str | Path | None,
    forget: str | Path | None = None,
    holdout: str | Path | None = None,
    holdout_random_split: bool = False,
) -> str | None:
    """Why membership inference says nothing here, or None when it applies: forget and
    holdout must be a random split of one pool, or the attack tells them apart by what
    they are (known facts from invented ones) rather than by whether the model still holds
    the forget set. A benchmark says so in bench.json (``bench_holdout``); the user's own
    files are not known to be such a split unless ``holdout_random_split`` says so."""
    if holdout_random_split:
        return None
    if holdout is not None or (forget is not None and bench is not None):
        return (
            "the holdout records are not known to be a random split of one pool with the "
            "forget records; pass --holdout-random-split if they are"
        )
    kind = bench_holdout(bench) if bench is not None else "random"
    if kind == "random":
        return None
    return (
        f'the benchmark\'s holdout facts are {kind} (bench.json "holdout"), not a random '
        "split of one pool with the forget facts: an AUC against them measures how the two "
        "sets differ, not what the model still holds"
    )
