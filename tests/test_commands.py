"""The commands end to end on the tiny model, as a user would call them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import cli_ok

from obliviate import api
from obliviate.data.loaders import load_records
from obliviate.evaluation.runner import evaluate_splits
from obliviate.models.loader import load_model
from obliviate.train.config import TrainConfig

SHARED_TOFU = Path(__file__).resolve().parents[2] / "shared" / "data" / "tofu"


def test_demo_tells_the_whole_story_on_the_tiny_model(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "demo"
    cli_ok(["demo", "--model", "tiny", "--people", "20", "--out", str(out)], monkeypatch)
    printed = capsys.readouterr().out
    assert "forget accuracy" in printed and str(out) in printed.replace("\n", "")
    results = json.loads((out / "results.json").read_text())
    target = results["reference"]["target"]["splits"]
    oracle = results["reference"]["oracle"]["splits"]
    unlearned = results["splits"]
    assert target["forget"]["accuracy"] >= 0.8
    assert oracle["forget"]["accuracy"] <= 0.2
    assert unlearned["forget"]["accuracy"] <= target["forget"]["accuracy"] - 0.5
    assert unlearned["retain"]["accuracy"] >= target["retain"]["accuracy"] - 0.3
    for split in ("forget", "retain", "neighbors", "holdout", "world"):
        assert {"accuracy", "prob"} <= set(unlearned[split])
    assert results["reference"]["oracle"]["forget_quality"] == 1.0
    assert results["forget_quality"] > results["reference"]["target"]["forget_quality"]
    files = ("config.yaml", "manifest.json", "results.json", "report.html", "report.md")
    for name in (*files, "bench", "unlearned/model"):
        assert (out / name).exists(), name
    assert not list(tmp_path.glob(".*partial"))


def test_bench_make_command(tmp_path: Path, monkeypatch) -> None:
    cli_ok(
        ["bench", "make", "--seed", "3", "--people", "12", "--out", str(tmp_path / "b")],
        monkeypatch,
    )
    assert len(load_records(tmp_path / "b" / "forget10.jsonl")) > 0
    assert (tmp_path / "b" / "facts.json").is_file()


def test_yaml_config_with_command_line_override(
    bench_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    config = tmp_path / "finetune.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": "tiny",
                "data": str(bench_dir / "forget05.jsonl"),
                "out": str(tmp_path / "run"),
                "max_steps": 5,
                "lr": 0.001,
                "batch_size": 4,
            }
        )
    )
    cli_ok(["finetune", "--config", str(config), "--max-steps", "2", "--no-cache"], monkeypatch)
    resolved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert resolved["train"]["max_steps"] == 2
    assert resolved["train"]["lr"] == 0.001
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 2


def test_lora_unlearning_merges_into_a_plain_model(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
) -> None:
    result = api.unlearn(
        str(tiny_target),
        bench_dir / "forget10.jsonl",
        bench_dir / "retain90.jsonl",
        "grad_diff",
        tmp_path / "lora",
        TrainConfig(epochs=5, lr=3e-3, batch_size=8, lora=True, precision="fp32"),
    )
    before = load_model(str(tiny_target)).model.state_dict()
    after = load_model(str(result.out)).model.state_dict()
    assert set(before) == set(after)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    logprob = result.results["primary_answer_logprob"]
    assert logprob["after"] < logprob["before"] - 0.3


def test_tofu_question_files_evaluate_as_a_world_split(tiny_target: Path) -> None:
    if not SHARED_TOFU.is_dir():
        pytest.skip("shared/data/tofu is not beside this checkout")
    splits = {
        "world": load_records(SHARED_TOFU / "world_facts_perturbed.jsonl"),
        "real_authors": load_records(SHARED_TOFU / "real_authors_perturbed.jsonl"),
    }
    loaded = load_model(str(tiny_target))
    figures, examples = evaluate_splits(loaded.model, loaded.tokenizer, splits)
    assert figures["world"]["n"] == 117 and figures["real_authors"]["n"] == 100
    assert 0.0 <= figures["world"]["accuracy"] <= 1.0
    assert 0.0 < figures["world"]["prob"] < 1.0
    assert examples["real_authors"][0]["answer"] == "William Shakespeare"


def test_demo_text_scenario_reports_muse_figures(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "demo-text"
    cli_ok(["demo", "--model", "tiny", "--text", "--people", "20", "--out", str(out)], monkeypatch)
    results = json.loads((out / "results.json").read_text())
    text = results["text"]
    assert set(text["verdicts"]) == {"no_verbmem", "no_knowmem", "no_privleak", "utility_preserved"}
    # The oracle is its own yardstick: no leak against itself. (The tiny model barely
    # memorises 400-byte passages in the demo's few epochs, so verbmem is not compared
    # here; tests/test_text_metrics.py checks forgetting on passages it does memorise.)
    assert results["reference"]["oracle"]["text"]["privleak"] == 0.0
    for model in (text, results["reference"]["target"]["text"]):
        assert 0.0 <= model["verbmem"] <= 1.0 and model["n"]["forget"] > 0


def test_quick_demo_unlearns_a_known_topic_and_judges_it_against_the_model(tmp_path) -> None:
    """``demo --quick``: the known benchmark, the topic unlearned from the model itself, a
    verdict against the starting model, a report; no fine-tune."""
    from obliviate import api

    results = api.quick_demo(out=tmp_path / "quick", model="tiny", screen=False)
    assert results["split"] == "forget" and results["topic"]
    assert results["reference"]["target"]["model"] == "tiny"
    assert results["verdict"]["against"] == "target"
    assert results["mia_applicable"] is False and results["mia"] is None  # invented holdout
    assert set(results["splits"]) >= {"forget", "neighbors", "retain", "world"}
    assert (tmp_path / "quick" / "report.html").is_file()
    assert (tmp_path / "quick" / "unlearned" / "model" / "README.md").is_file()
