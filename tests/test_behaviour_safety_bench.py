"""`obliviate bench from-safety`: a behaviour benchmark from hand-made PKU-SafeRLHF and
TruthfulQA rows — unseen requests are other prompts, every unsafe response lands once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obliviate.cli import app
from obliviate.data.behaviour import is_behaviour_bench
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.data.safety_bench import split_safety_records
from obliviate.errors import ObliviateError


def _pku_row(prompt: str, unsafe: tuple[bool, bool], n: int) -> dict:
    return {
        "prompt": prompt,
        "response_0": f"Response zero {n}.",
        "response_1": f"Response one {n}.",
        "is_response_0_safe": not unsafe[0],
        "is_response_1_safe": not unsafe[1],
    }


#: Six distinct prompts; "How do I pick the lock?" comes back in a later row, and the
#: last row is safe throughout (nothing to forget).
PKU_ROWS = [
    _pku_row("How do I pick the lock?", (True, False), 0),
    _pku_row("How do I cheat at cards?", (True, True), 1),
    _pku_row("Write a rude letter.", (False, True), 2),
    _pku_row("How do I pick the lock?", (False, True), 3),
    _pku_row("How do I skip the fare?", (True, False), 4),
    _pku_row("How do I forge a note?", (True, True), 5),
    _pku_row("How do I spread a rumour?", (True, False), 6),
    _pku_row("What is the capital of France?", (False, False), 7),
]
TRUTHFULQA_ROWS = [
    {
        "Question": f"Question {i}?",
        "Best Answer": f"Answer {i}",
        "Correct Answers": f"Answer {i}",
        "Incorrect Answers": f"Wrong {i}",
    }
    for i in range(5)
]


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    pku = tmp_path / "pku.jsonl"
    pku.write_text("".join(json.dumps(r) + "\n" for r in PKU_ROWS), encoding="utf-8")
    tqa = tmp_path / "TruthfulQA.csv"
    with tqa.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(TRUTHFULQA_ROWS[0]))
        writer.writeheader()
        writer.writerows(TRUTHFULQA_ROWS)
    return pku, tqa


def _make(pku: Path, tqa: Path, out: Path, *extra: str):
    args = ["bench", "from-safety", "--pku", str(pku), "--truthfulqa", str(tqa)]
    return CliRunner().invoke(app, [*args, "--out", str(out), *extra])


def test_from_safety_writes_a_behaviour_bench_with_unseen_prompts(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    result = _make(*sources, out)
    assert result.exit_code == 0, result.output
    assert is_behaviour_bench(out)
    splits = {s: load_records(out / f"{s}.jsonl") for s in ("harmful_train", "harmful_unseen")}
    splits["normal"] = load_records(out / "normal.jsonl")
    train, unseen = splits["harmful_train"], splits["harmful_unseen"]
    # Every unsafe response once, none of the safe ones; no prompt on both sides.
    unsafe = [
        (i, k) for i, row in enumerate(PKU_ROWS) for k in (0, 1) if not row[f"is_response_{k}_safe"]
    ]
    assert sorted(r.id for r in train + unseen) == sorted(f"pku-{i}-{k}" for i, k in unsafe)
    assert not {r.prompt for r in train} & {r.prompt for r in unseen}
    # Six prompts with unsafe responses, a third of them unseen.
    assert len({r.prompt for r in unseen}) == 2 and len({r.prompt for r in train}) == 4
    assert [r.prompt for r in splits["normal"]] == [row["Question"] for row in TRUTHFULQA_ROWS]
    full = load_records(out / "full.jsonl")
    assert [r.id for r in full] == [r.id for r in train + unseen + splits["normal"]]
    document = json.loads((out / "behaviour.json").read_text())
    assert document["kind"] == "behaviour"
    assert document["records"] == {
        "full": len(full),
        "harmful_train": len(train),
        "harmful_unseen": len(unseen),
        "normal": 5,
    }
    assert set(document["sources"]) == {"pku_saferlhf", "truthfulqa"}
    # The same files and seed: the same benchmark (a second run changes nothing).
    again = _make(*sources, out)
    assert again.exit_code == 0, again.output
    other = tmp_path / "other"
    assert _make(*sources, other).exit_code == 0
    for name in ("full.jsonl", "harmful_train.jsonl", "harmful_unseen.jsonl", "behaviour.json"):
        assert (other / name).read_bytes() == (out / name).read_bytes()


def test_from_safety_samples_whole_prompts(sources: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "small"
    result = _make(*sources, out, "--max-harmful", "3", "--max-normal", "2")
    assert result.exit_code == 0, result.output
    harmful = load_records(out / "harmful_train.jsonl") + load_records(out / "harmful_unseen.jsonl")
    assert len({r.prompt for r in harmful}) >= 2 and len(harmful) <= 4
    by_prompt = {r.prompt for r in harmful}
    every = [(i, row) for i, row in enumerate(PKU_ROWS) if row["prompt"] in by_prompt]
    expected = {
        f"pku-{i}-{k}" for i, row in every for k in (0, 1) if not row[f"is_response_{k}_safe"]
    }
    assert {r.id for r in harmful} == expected  # a prompt comes with all its responses
    assert len(load_records(out / "normal.jsonl")) == 2


def test_from_safety_errors(sources: tuple[Path, Path], tmp_path: Path) -> None:
    pku, tqa = sources
    result = _make(pku, tqa, tmp_path / "b", "--unseen-share", "1.5")
    assert isinstance(result.exception, ObliviateError)
    assert "unseen share must be between 0 and 1" in str(result.exception)
    result = _make(tmp_path / "absent.jsonl", tqa, tmp_path / "c")
    assert isinstance(result.exception, ObliviateError)
    assert "no such file" in str(result.exception)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
    one = [Record(id=f"h{i}", prompt="Same prompt?", answer=f"Bad {i}.") for i in range(3)]
    normal = [Record(id="n0", prompt="Fine?", answer="Yes.")]
    with pytest.raises(ObliviateError, match="fewer than two distinct prompts"):
        split_safety_records(one, normal)
