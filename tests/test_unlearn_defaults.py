"""Defaults that forget, no silent no-op, no silent collapse.

``obliviate unlearn`` without training options runs the recipe of the model's base (here
tiny's, found through the tiny target's manifest), and every method forgets with it;
a run that cannot move exits non-zero and publishes nothing (unless ``--allow-weak``);
a run whose retain answers collapse stops, keeping the last good checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import cli_output
from typer.testing import CliRunner

from obliviate import api
from obliviate.cli import app
from obliviate.methods import METHODS
from obliviate.models.loader import load_model
from obliviate.train.config import TrainConfig
from obliviate.train.health import FORGET_MARGIN
from obliviate.train.loop import total_steps
from obliviate.train.recipes import base_model, load_recipe, recipe_for


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def unlearn_args(target: Path, bench_dir: Path, out: Path, *more: str) -> list[str]:
    args = ["unlearn", "--model", str(target), "--forget", str(bench_dir / "forget10.jsonl")]
    return [*args, "--retain", str(bench_dir / "retain90.jsonl"), "--out", str(out), *more]


# -- defaults that forget -------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_forgets_with_the_recipe_defaults(
    method: str, tiny_target: Path, bench_dir: Path, tmp_path: Path
) -> None:
    """No training option and no parameter: tiny's recipe (5 epochs, at least 32 steps, lr
    5e-4, the method's own entry) lowers the forget answers' mean log-prob by at least
    FORGET_MARGIN (measured: 0.33 nats/token for RMU to 4.4 for NPO), without collapse
    (the retain probe is checked at steps 10, 20, 30 and 32)."""
    result = api.unlearn(
        str(tiny_target),
        bench_dir / "forget10.jsonl",
        bench_dir / "retain90.jsonl",
        method,
        tmp_path / method,
    )
    checks = result.results["checks"]
    assert checks["verdict"] == "forgot"
    assert checks["forget"]["answers"]["change"] <= -FORGET_MARGIN
    collapse = checks["collapse"]
    if method in ("sku", "task_vector"):  # they train toward the forget set, then negate
        assert "skipped" in collapse and collapse["checks"] == 0
    else:
        assert collapse["checks"] == 4 and collapse["last_nll"] <= collapse["bound"]
    assert checks["retain"]["source"] == "retain" and checks["retain"]["records"] == 64
    assert result.results["recipe"]["name"] == "tiny"
    assert result.steps == 32  # 17 records: 3 batches × 5 epochs = 15, raised to min_steps
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["checks"] == checks
    assert manifest["train"]["lr"] == load_recipe("tiny").unlearn_config(method).lr


def test_unlearn_without_options_runs_the_recipe_of_the_targets_base(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "defaults"
    code, stdout, err = cli_output(unlearn_args(tiny_target, bench_dir, out), monkeypatch, capsys)
    assert code == 0, err
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["method"] == "grad_diff"  # the recipe's default_method
    assert config["recipe"] == {
        "name": "tiny",
        "source": "obliviate/recipes/tiny.yaml",
        "base_model": "tiny",
    }
    assert config["train"]["lr"] == 5e-4 and config["train"]["min_steps"] == 32
    assert len((out / "log.jsonl").read_text().splitlines()) == 32
    results = json.loads((out / "results.json").read_text())
    assert results["recipe"] == config["recipe"]
    assert results["checks"]["verdict"] == "forgot"
    assert "retain (retain, 64 records)" in stdout and "recipe tiny" in stdout


def test_the_config_file_goes_over_the_recipe_and_the_options_over_both(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("lr: 1e-3\nepochs: 2\nmethod: npo\nmethod_params: {beta: 0.2}\n")
    out = tmp_path / "layered"
    args = unlearn_args(tiny_target, bench_dir, out, "--config", str(settings))
    args += ["--lr", "2e-3", "--max-steps", "4", "--param", "retain_weight=2"]
    code, _, err = cli_output(args, monkeypatch, capsys)
    assert code == 0, err
    config = yaml.safe_load((out / "config.yaml").read_text())
    train = config["train"]
    assert config["method"] == "npo"
    assert config["method_params"]["beta"] == 0.2 and config["method_params"]["retain_weight"] == 2
    assert (train["lr"], train["epochs"], train["max_steps"]) == (2e-3, 2, 4)
    assert (train["batch_size"], train["precision"], train["min_steps"]) == (8, "fp32", 32)


def test_a_small_request_gets_min_steps() -> None:
    recipe = TrainConfig(epochs=8, batch_size=8, min_steps=32)
    assert total_steps(16, recipe) == 32  # 2 batches × 8 epochs = 16
    assert total_steps(31, recipe) == 32
    assert total_steps(100, recipe) == 104  # the epochs give more
    assert total_steps(16, TrainConfig(epochs=8, batch_size=8, min_steps=32, max_steps=5)) == 5
    assert total_steps(16, TrainConfig(epochs=8, batch_size=8)) == 16  # off by default


def test_the_recipe_follows_the_manifests_to_the_base_model(tmp_path: Path) -> None:
    first, second = tmp_path / "finetuned", tmp_path / "unlearned"
    for run, parent in ((first, "tiny"), (second, str(first))):
        run.mkdir()
        (run / "manifest.json").write_text(json.dumps({"model": {"spec": parent}}))
    assert base_model(str(second)) == "tiny"
    assert base_model(str(second / "model")) == "tiny"  # the model folder inside a run
    recipe, choice = recipe_for(str(second))
    assert choice.name == "tiny" and recipe == load_recipe("tiny")
    assert recipe_for(str(tmp_path / "elsewhere"))[1].name == "smollm2"
    assert recipe_for("HuggingFaceTB/SmolLM2-360M")[1].name == "smollm2"


def test_help_states_the_recipes_defaults() -> None:
    result = CliRunner().invoke(app, ["unlearn", "--help"], env={"COLUMNS": "400"})
    text = " ".join(result.output.split())
    smollm2 = load_recipe("smollm2").unlearn
    assert f"grad_diff, {smollm2.epochs:g} epochs (≥ {smollm2.min_steps} steps)" in text
    assert f"lr {smollm2.lr:g}" in text and "rmu lr 0.0005" in text
    assert f"{FORGET_MARGIN} nats/token" in text and "--allow-weak" in text


# -- no silent no-op, no silent collapse ----------------------------------------------------


def test_a_run_that_cannot_move_exits_non_zero_and_publishes_nothing(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "still"
    args = unlearn_args(tiny_target, bench_dir, out, "--lr", "1e-12", "--max-steps", "4")
    code, _, err = cli_output(args, monkeypatch, capsys)
    line = error_line(err)
    assert code == 2
    assert "forget answers' mean log-prob" in line and "nothing was published" in line
    assert "--lr" in line and "--allow-weak" in line
    assert not out.exists()

    code, stdout, err = cli_output([*args, "--allow-weak"], monkeypatch, capsys)
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["checks"]["verdict"] in ("weak", "raised")
    assert results["checks"]["allow_weak"] is True
    assert abs(results["checks"]["forget"]["answers"]["change"]) < 0.01
    assert "warning" in stdout and (out / "model").is_dir()


def test_a_collapsing_run_stops_with_the_last_good_checkpoint(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """lr 10 reached by a warm-up: step 1 (lr 0) passes its check and is checkpointed, step 2
    (lr 1) sends the retain answers' NLL past the bound."""
    settings = tmp_path / "settings.yaml"
    settings.write_text("warmup_ratio: 0.5\ncollapse_check_every: 1\ncheckpoint_every: 1\n")
    out = tmp_path / "collapsed"
    args = unlearn_args(tiny_target, bench_dir, out, "--lr", "10", "--max-steps", "20")
    code, _, err = cli_output([*args, "--config", str(settings)], monkeypatch, capsys)
    line = error_line(err)
    assert code == 2
    assert "collapsed at step 2 of 20" in line and "past the collapse bound" in line
    assert "last good checkpoint (step 1)" in line and "a lower --lr" in line
    staging = tmp_path / ".collapsed.partial"
    assert [p.name for p in (staging / "checkpoints").iterdir()] == ["step-000001"]
    assert str(staging) in line
    assert not out.exists()
    # Sound: step 1 trained at lr 0, so the checkpoint holds the target's weights.
    state = torch.load(staging / "checkpoints" / "step-000001" / "state.pt", weights_only=True)
    target = load_model(str(tiny_target)).model.state_dict()
    assert state["step"] == 1 and state["model"]
    assert all(torch.equal(weight, target[name]) for name, weight in state["model"].items())


def test_without_retain_data_the_retain_check_reads_the_world_questions(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
) -> None:
    result = api.unlearn(
        str(tiny_target), bench_dir / "forget10.jsonl", None, "ga", tmp_path / "ga"
    )
    checks = result.results["checks"]
    assert checks["retain"]["source"] == checks["collapse"]["source"] == "world"
    assert checks["verdict"] == "forgot"


def test_a_method_needing_retain_data_says_so_when_chosen_by_default(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
) -> None:
    from obliviate.errors import ObliviateError

    with pytest.raises(ObliviateError, match=r"'grad_diff' needs retain data.*--method"):
        api.unlearn(str(tiny_target), bench_dir / "forget10.jsonl", None, None, tmp_path / "x")
