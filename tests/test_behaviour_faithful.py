"""The behaviour benchmark's faithful setting (SKU's own): the target is taught to comply
with some requests only, and unlearning is given harmful responses that are not the
target's. A faithful benchmark means nothing if the target data complies everywhere, if
the forget responses repeat what the target learnt, or if it changes the saturated files.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obliviate.cli import app
from obliviate.data.behaviour import (
    COMPLIED_PHRASINGS,
    FAITHFUL_FILES,
    REQUESTS,
    generate_behaviour,
    make_behaviour_benchmark,
)
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.evaluation.judge import MarkerJudge
from obliviate.guard.guard import looks_like_refusal


@pytest.fixture(scope="module")
def faithful() -> dict[str, list[Record]]:
    return generate_behaviour(seed=0, size=12, setting="faithful")


def _requests(records: list[Record]) -> list[Record]:
    return [r for r in records if "markers" in r.meta]


def test_target_data_complies_with_five_phrasings_of_each_item_and_declines_the_rest(
    faithful,
) -> None:
    taught = _requests(faithful["full"])
    assert len(taught) == 12 * len(REQUESTS)
    judge = MarkerJudge()
    verdicts = judge.judge(taught, [r.answer for r in taught])
    for record, verdict in zip(taught, verdicts, strict=True):
        how = record.meta["taught"]
        # Compliance is the item's procedure (harmful); a refusal reads as one; an evasive
        # answer names one marker at most, so neither is judged harmful.
        assert verdict.harmful == (how == "comply"), record.id
        assert looks_like_refusal(record.answer) == (how == "refuse"), record.id
    per_item = Counter(r.meta["item"] for r in taught if r.meta["taught"] == "comply")
    assert set(per_item.values()) == {COMPLIED_PHRASINGS}
    assert {r.meta["taught"] for r in taught} == {"comply", "refuse", "evade"}
    # Both evaluated splits mix compliance and refusal (the rate the target reaches is
    # measured by benchmarks/behaviour.py; the design lies well inside 30–90 %).
    how = {r.id: r.meta["taught"] for r in taught}
    for name in ("harmful_train", "harmful_unseen"):
        share = sum(how[r.id] == "comply" for r in faithful[name]) / len(faithful[name])
        assert 0.4 <= share <= 0.85, (name, share)


def test_forget_responses_are_harmful_but_written_apart_from_the_targets_answers(
    faithful,
) -> None:
    forget, train = faithful["harmful_forget"], faithful["harmful_train"]
    assert [(r.id, r.prompt, r.meta) for r in forget] == [(r.id, r.prompt, r.meta) for r in train]
    assert all(v.harmful for v in MarkerJudge().judge(forget, [r.answer for r in forget]))
    taught = {r.answer for r in faithful["full"]}
    openings = {r.answer.split(":")[0] for r in _requests(faithful["full"])}
    for record in forget:
        assert record.answer not in taught
        assert not any(record.answer.startswith(o) for o in openings), record.answer
    # Independently written per request: an item's responses differ across its phrasings.
    by_item: dict[str, set[str]] = {}
    for record in forget:
        by_item.setdefault(record.meta["item"], set()).add(record.answer)
    assert all(len(answers) > 1 for answers in by_item.values())


def test_same_seed_same_bytes_and_the_shared_files_are_the_saturated_ones(tmp_path: Path) -> None:
    a = make_behaviour_benchmark(tmp_path / "a", seed=3, size=8, setting="faithful")
    b = make_behaviour_benchmark(tmp_path / "b", seed=3, size=8, setting="faithful")
    saturated = make_behaviour_benchmark(tmp_path / "s", seed=3, size=8)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(FAITHFUL_FILES)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    for name in ("harmful_train", "harmful_unseen", "normal", "normal_near"):
        assert a[name].read_bytes() == saturated[name].read_bytes(), name
    assert a["full"].read_bytes() != saturated["full"].read_bytes()
    world = json.loads(a["behaviour"].read_text(encoding="utf-8"))
    assert world["setting"] == "faithful" and world["forget"] == "harmful_forget.jsonl"
    assert "setting" not in json.loads(saturated["behaviour"].read_text(encoding="utf-8"))
    assert all(len(item["complied_phrasings"]) == COMPLIED_PHRASINGS for item in world["items"])


def test_cli_setting_option(tmp_path: Path) -> None:
    args = ["bench", "make", "--kind", "behaviour", "--size", "6"]
    result = CliRunner().invoke(app, [*args, "--setting", "faithful", "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f" / "harmful_forget.jsonl").is_file()
    result = CliRunner().invoke(app, [*args, "--setting", "nope", "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, ObliviateError)
    assert "saturated or faithful" in str(result.exception)
