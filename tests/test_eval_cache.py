"""The evaluation cache: the same model, records and code read back; any change misses."""

from __future__ import annotations

from pathlib import Path

from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.evaluation.suite import evaluate_models, results_document


def splits(bench_dir: Path, forget: list[Record] | None = None) -> dict[str, list[Record]]:
    """A small evaluation: forget, holdout and retain questions."""
    return {
        "forget": forget or load_records(bench_dir / "forget10.jsonl")[:6],
        "holdout": load_records(bench_dir / "holdout.jsonl")[:6],
        "retain": load_records(bench_dir / "retain90.jsonl")[:6],
    }


def test_an_unchanged_model_is_read_back_and_a_change_misses(
    tiny_target: Path, tiny_oracle: Path, bench_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    models = {"target": tiny_target, "oracle": tiny_oracle}
    first = evaluate_models(models, splits(bench_dir), cache=cache)
    assert not any(e.cached for e in first.values())
    assert len(list((cache / "evaluations").glob("*.json"))) == 2

    again = evaluate_models(models, splits(bench_dir), cache=cache)
    assert all(e.cached for e in again.values())
    fresh = results_document(first, main="target", split="forget")
    reread = results_document(again, main="target", split="forget")
    for document in (fresh, reread):  # the figures are the same; only the cost says how
        costs = [document.pop("cost")] + [e.pop("cost") for e in document["reference"].values()]
        assert all(c["eval_cached"] is (document is reread) for c in costs)
    assert reread == fresh

    # Other records, another precision: evaluated again, not read back.
    changed = splits(bench_dir, forget=load_records(bench_dir / "forget10.jsonl")[6:12])
    assert not evaluate_models(models, changed, cache=cache)["target"].cached
    assert not evaluate_models(models, splits(bench_dir), precision="bf16", cache=cache)[
        "target"
    ].cached
    # Without a cache nothing is read back.
    assert not evaluate_models({"target": tiny_target}, splits(bench_dir))["target"].cached


def test_eval_reads_target_and_oracle_back_and_names_the_users_file(
    tiny_target: Path, tiny_oracle: Path, bench_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """``obliviate eval`` caches as the demo does: a second run against the same target and
    oracle reads both back; results name the user's forget file, not a built-in split."""
    from obliviate import api

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    mine = tmp_path / "my_request.jsonl"
    mine.write_text((bench_dir / "forget10.jsonl").read_text().splitlines()[0] + "\n")
    runs = [
        api.evaluate(
            str(tiny_target),
            tmp_path / f"run{i}",
            forget=mine,
            oracle=str(tiny_oracle),
            target=str(tiny_target),
            max_per_split=4,
        )
        for i in range(2)
    ]
    cached = [{n: e["cost"]["eval_cached"] for n, e in r["reference"].items()} for r in runs]
    assert cached == [{"target": False, "oracle": False}, {"target": True, "oracle": True}]
    assert runs[1]["split"] == "my_request.jsonl"
