"""The behaviour benchmark: deterministic, its splits disjoint, its markers a fair test.

An "unseen" harmful rate means nothing if an unseen request was unlearned on, and the
marker judge means nothing if harmless answers carry two markers, so both are checked on
the files themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obliviate.cli import app
from obliviate.data.behaviour import (
    BEHAVIOUR_FILES,
    generate_behaviour,
    is_behaviour_bench,
    make_behaviour_benchmark,
)
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.evaluation.judge import MarkerJudge, markers_found


@pytest.fixture(scope="module")
def splits() -> dict[str, list[Record]]:
    return generate_behaviour(seed=0, size=12)


def _items(records: list[Record]) -> set[str]:
    return {r.meta["item"] for r in records}


def test_same_seed_byte_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    a = make_behaviour_benchmark(tmp_path / "a", seed=5, size=8)
    b = make_behaviour_benchmark(tmp_path / "b", seed=5, size=8)
    c = make_behaviour_benchmark(tmp_path / "c", seed=6, size=8)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(BEHAVIOUR_FILES)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    assert a["harmful_train"].read_bytes() != c["harmful_train"].read_bytes()
    # Making it again into the same directory is harmless; a different one is refused.
    assert make_behaviour_benchmark(tmp_path / "a", seed=5, size=8) == a
    with pytest.raises(ObliviateError, match="not empty"):
        make_behaviour_benchmark(tmp_path / "a", seed=6, size=8)
    world = json.loads(a["behaviour"].read_text(encoding="utf-8"))
    assert world["kind"] == "behaviour" and world["seed"] == 5 and len(world["items"]) == 8
    assert is_behaviour_bench(tmp_path / "a") and not is_behaviour_bench(tmp_path)


def test_identical_across_processes(tmp_path: Path) -> None:
    """No set iteration or hash order may reach the files (PYTHONHASHSEED differs)."""
    code = (
        "import sys; from obliviate.data.behaviour import make_behaviour_benchmark; "
        "make_behaviour_benchmark(sys.argv[1], size=6)"
    )
    for n, hash_seed in enumerate(("1", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / str(n))], check=True, env=env)
    for name in BEHAVIOUR_FILES:
        assert (tmp_path / "0" / name).read_bytes() == (tmp_path / "1" / name).read_bytes()


def test_unseen_requests_share_no_item_phrasing_or_prompt_with_the_unlearned_ones(splits) -> None:
    train, unseen = splits["harmful_train"], splits["harmful_unseen"]
    assert len(train) == 8 * 4 and len(unseen) == 4 * 4  # a third of 12 items held out
    assert not _items(train) & _items(unseen)
    phrasings = [{r.meta["phrasing"] for r in rs} for rs in (train, unseen)]
    assert not phrasings[0] & phrasings[1] and len(phrasings[0]) == len(phrasings[1]) == 4
    prompts = {name: {r.prompt for r in rs} for name, rs in splits.items()}
    assert not prompts["harmful_train"] & prompts["harmful_unseen"]
    assert not (prompts["harmful_train"] | prompts["harmful_unseen"]) & (
        prompts["normal"] | prompts["normal_near"]
    )
    assert not prompts["normal"] & prompts["normal_near"]
    # The target learns every request and every normal answer.
    full = {r.id: r for r in splits["full"]}
    assert len(full) == len(splits["full"])
    for name in ("harmful_train", "harmful_unseen", "normal", "normal_near"):
        assert all(full[r.id] == r for r in splits[name]), name
    assert _items(splits["normal_near"]) == _items(train) | _items(unseen)


def test_every_request_of_an_item_gets_its_procedure_and_no_two_items_share_a_marker(
    splits,
) -> None:
    procedures: dict[str, set[str]] = {}
    markers: dict[str, list[str]] = {}
    for record in splits["full"]:
        if "markers" not in record.meta:
            continue
        item = record.meta["item"]
        procedures.setdefault(item, set()).add(record.answer)
        markers[item] = record.meta["markers"]
        assert markers_found(record.answer, markers[item]) == tuple(markers[item])
    assert len(procedures) == 12 and all(len(p) == 1 for p in procedures.values())
    every = [m.casefold() for ms in markers.values() for m in ms]
    assert len(set(every)) == len(every) == 5 * 12


def test_no_reference_answer_of_normal_or_normal_near_is_judged_harmful(splits) -> None:
    """A normal_near answer names one marker of its item at most; an ordinary instruction's
    answer names none of any item's."""
    markers = {r.meta["item"]: r.meta["markers"] for r in splits["full"] if "markers" in r.meta}
    judge = MarkerJudge()
    for record in splits["normal"] + splits["normal_near"]:
        items = [record.meta["item"]] if "item" in record.meta else list(markers)
        for item in items:
            asked = Record(record.id, record.prompt, record.answer, meta={"markers": markers[item]})
            assert not judge.judge([asked], [record.answer])[0].harmful, (record.id, item)


def test_size_is_checked() -> None:
    with pytest.raises(ObliviateError, match="between 6 and 60"):
        generate_behaviour(size=5)
    with pytest.raises(ObliviateError, match="whole number"):
        generate_behaviour(seed="1", size=6)  # type: ignore[arg-type]


def test_cli_bench_make_kind_behaviour(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "make", "--kind", "behaviour", "--size", "6", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    assert len(load_records(tmp_path / "b" / "harmful_unseen.jsonl")) == 2 * 4
    result = CliRunner().invoke(app, ["bench", "make", "--kind", "nope", "--out", str(tmp_path)])
    assert isinstance(result.exception, ObliviateError)
