"""The built-in benchmark: deterministic, well-split, and rich enough for the hard probes.

Everything downstream (forget quality against the oracle, neighbour utility, the
probe attacks) silently measures the wrong thing if a split leaks a person or a
seed does not reproduce, so those properties are checked on the files themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from obliviate.data.bench import SPLIT_FILES, generate_benchmark, make_benchmark
from obliviate.data.records import Record
from obliviate.data.world_facts import WORLD_FACTS, world_records
from obliviate.errors import ObliviateError

PERSON_SPLITS = [name.removesuffix(".jsonl") for name in SPLIT_FILES if name.endswith(".jsonl")]
PERSON_SPLITS.remove("world")


def _read(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as fh:
        return [Record.from_json(json.loads(line), f"{path}:{n}") for n, line in enumerate(fh, 1)]


def _people(records: list[Record]) -> set[str]:
    return {r.person for r in records if r.person is not None}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Record]]:
    out = tmp_path_factory.mktemp("bench") / "b"
    paths = make_benchmark(out, seed=0, people=40)
    return {name: _read(path) for name, path in paths.items() if path.suffix == ".jsonl"}


def test_writes_every_file(tmp_path: Path) -> None:
    paths = make_benchmark(tmp_path / "b", seed=3, people=12)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(SPLIT_FILES)
    assert set(paths) == {name.rsplit(".", 1)[0] for name in SPLIT_FILES}
    assert not [p for p in tmp_path.iterdir() if p.name != "b"], "staging dir left behind"
    facts = json.loads(paths["facts"].read_text(encoding="utf-8"))
    assert facts["seed"] == 3 and facts["people_trained"] == 12
    assert len([p for p in facts["people"] if p["group"] == "trained"]) == 12


def test_same_seed_byte_identical(tmp_path: Path) -> None:
    a = make_benchmark(tmp_path / "a", seed=7, people=20)
    b = make_benchmark(tmp_path / "b", seed=7, people=20)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    assert a["full"].read_bytes().endswith(b"\n") and b"\r\n" not in a["full"].read_bytes()


def test_identical_across_processes(tmp_path: Path) -> None:
    """No set iteration or hash order may reach the files (PYTHONHASHSEED differs)."""
    code = (
        "import sys; from obliviate.data.bench import make_benchmark; make_benchmark(sys.argv[1])"
    )
    for n, hash_seed in enumerate(("1", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / str(n))], check=True, env=env)
    for name in SPLIT_FILES:
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "1" / name).read_bytes()


def test_different_seed_different_people() -> None:
    a = _people(generate_benchmark(seed=0, people=20)["full"])
    b = _people(generate_benchmark(seed=1, people=20)["full"])
    assert a != b
    assert len(a & b) < len(a) // 2


def test_splits_disjoint_and_nested(bench: dict[str, list[Record]]) -> None:
    people = {name: _people(records) for name, records in bench.items()}
    assert len(people["full"]) == 40
    assert people["forget01"] < people["forget05"] < people["forget10"]
    assert [len(people[f"forget{p}"]) for p in ("01", "05", "10")] == [1, 2, 4]
    for p in ("01", "05", "10"):
        forget, retain = people[f"forget{p}"], people[f"retain{100 - int(p)}"]
        assert not forget & retain
        assert forget | retain == people["full"]
    assert len(people["holdout"]) == 4
    assert not people["holdout"] & people["full"]
    assert people["neighbors"] and people["neighbors"] <= people["retain90"]
    assert _people(bench["world"]) == set()


def test_neighbors_are_close_to_forgotten(tmp_path: Path) -> None:
    paths = make_benchmark(tmp_path / "b", seed=0, people=40)
    facts = json.loads(paths["facts"].read_text(encoding="utf-8"))
    by_id = {p["id"]: p for p in facts["people"]}
    forget = [by_id[i] for i in facts["splits"]["forget10"]]
    for pid in facts["splits"]["neighbors"]:
        p = by_id[pid]
        shares = any(
            p["attributes"][a] == f["attributes"][a]
            for f in forget
            for a in ("birthplace", "profession", "employer")
        )
        related = any(
            p["relations"].get(rel, {}).get("id") == f["id"]
            or f["relations"].get(rel, {}).get("id") == pid
            for f in forget
            for rel in ("mentor", "sibling")
        )
        assert shares or related, pid


def test_unique_names_and_records(bench: dict[str, list[Record]]) -> None:
    everyone = bench["full"] + bench["holdout"]
    assert len({r.id for r in everyone}) == len(everyone)
    surnames = {}
    for r in everyone:
        surnames.setdefault(r.person.split()[-1], set()).add(r.person)
    assert max(len(v) for v in surnames.values()) == 2  # sibling pairs exist, nothing more
    parents = {r.answer for r in everyone if r.meta["attribute"] == "parent"}
    assert not parents & _people(everyone)


def test_every_fact_is_complete(bench: dict[str, list[Record]]) -> None:
    for r in bench["full"] + bench["holdout"]:
        assert r.id.startswith("p") and r.id.endswith("-" + r.meta["attribute"])
        assert r.person in r.prompt
        assert 1 <= len(r.answer.split()) <= 4
        if r.meta["attribute"] == "award":  # "the" belongs to the sentence, not the name
            assert not r.answer.lower().startswith("the ")
        assert len(set(r.paraphrases)) >= 3 and r.prompt not in r.paraphrases
        assert len(set(r.perturbed)) == len(r.perturbed) >= 3
        assert r.answer not in r.perturbed
        for probe in r.probes.values():
            assert probe.answer == r.answer


def test_hard_probes(bench: dict[str, list[Record]]) -> None:
    full = bench["full"]
    multihop = [r for r in full if "multihop" in r.probes]
    crosslingual = [r for r in full if "crosslingual" in r.probes]
    assert len(multihop) > len(full) // 2 and len(crosslingual) > len(full) // 3
    # the multi-hop question names someone else (or a work), never the person asked about
    assert all(r.person not in r.probes["multihop"].prompt for r in multihop)
    assert any("the mentor of" in r.probes["multihop"].prompt for r in multihop)
    language_bound = {"birthplace", "profession"}
    assert not [r for r in crosslingual if r.meta["attribute"] in language_bound]
    for r in crosslingual:
        assert r.probes["crosslingual"].prompt not in (r.prompt, *r.paraphrases)


def test_mentor_multihop_resolves(bench: dict[str, list[Record]]) -> None:
    """'Where was the mentor of X born?' has X's mentor's birthplace as its answer."""
    fact = {(r.person, r.meta["attribute"]): r.answer for r in bench["full"]}
    checked = 0
    for r in bench["full"]:
        probe = r.probes.get("multihop")
        if r.meta["attribute"] == "birthplace" and probe and "the mentor of " in probe.prompt:
            prompt = probe.prompt
            mentee = prompt.split("the mentor of ", 1)[1].removesuffix(" born?")
            assert fact[(mentee, "mentor")] == r.person
            checked += 1
    assert checked


def test_world_split() -> None:
    records = world_records()
    assert 40 <= len(records) <= 60 and len(records) == len(WORLD_FACTS)
    assert [r.id for r in records[:2]] == ["world-000", "world-001"]
    for r in records:
        assert len(set(r.perturbed)) == 3 and r.answer not in r.perturbed


def test_too_few_people() -> None:
    with pytest.raises(ObliviateError, match="at least 10"):
        generate_benchmark(people=9)


def test_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ObliviateError, match="not empty"):
        make_benchmark(tmp_path, seed=0, people=10)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_existing_same_benchmark_is_reused(tmp_path: Path) -> None:
    out = tmp_path / "b"
    make_benchmark(out, seed=0, people=10)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    make_benchmark(out, seed=0, people=10)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    with pytest.raises(ObliviateError, match="not empty"):
        make_benchmark(out, seed=1, people=10)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert make_benchmark(empty, seed=0, people=10)["full"].is_file()
