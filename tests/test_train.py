"""The one training loop on the tiny model: it learns, it unlearns, it resumes, it is safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from obliviate import api
from obliviate.data.loaders import load_records
from obliviate.errors import ObliviateError
from obliviate.evaluation.runner import evaluate_splits
from obliviate.methods import FineTune
from obliviate.models.loader import load_model
from obliviate.rundir import sha256_path
from obliviate.train.checkpoints import latest_checkpoint
from obliviate.train.config import TrainConfig
from obliviate.train.loop import train


def split_figures(model_dir: Path, bench: Path, names: dict[str, str]) -> dict[str, dict]:
    loaded = load_model(str(model_dir))
    splits = {role: load_records(bench / f"{name}.jsonl") for role, name in names.items()}
    figures, _ = evaluate_splits(loaded.model, loaded.tokenizer, splits)
    return figures


def test_finetuned_target_knows_the_facts(tiny_target: Path, bench_dir: Path) -> None:
    figures = split_figures(tiny_target, bench_dir, {"forget": "forget10", "retain": "retain90"})
    assert figures["forget"]["accuracy"] >= 0.8
    assert figures["retain"]["accuracy"] >= 0.8
    manifest = json.loads((tiny_target / "manifest.json").read_text())
    assert manifest["inputs"]["primary"]["sha256"] == sha256_path(bench_dir / "full.jsonl")
    assert (tiny_target / "model" / "model.safetensors").is_file()
    assert (tiny_target / "log.jsonl").read_text().count("\n") > 10


def test_grad_diff_forgets_forget_more_than_retain_and_keeps_source(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
) -> None:
    source_hash = sha256_path(tiny_target / "model")
    result = api.unlearn(
        str(tiny_target),
        bench_dir / "forget10.jsonl",
        bench_dir / "retain90.jsonl",
        "grad_diff",
        tmp_path / "unlearned",
        TrainConfig(epochs=5, lr=5e-4, batch_size=8, precision="fp32"),
    )
    assert sha256_path(tiny_target / "model") == source_hash
    before = split_figures(tiny_target, bench_dir, {"forget": "forget10", "retain": "retain90"})
    after = split_figures(result.out, bench_dir, {"forget": "forget10", "retain": "retain90"})
    assert after["forget"]["accuracy"] <= before["forget"]["accuracy"] - 0.5
    assert after["retain"]["accuracy"] >= before["retain"]["accuracy"] - 0.3
    forget_drop = before["forget"]["prob"] - after["forget"]["prob"]
    retain_drop = before["retain"]["prob"] - after["retain"]["prob"]
    assert forget_drop > 2 * retain_drop
    for name in ("config.yaml", "manifest.json", "results.json", "log.jsonl", "model"):
        assert (result.out / name).exists(), name
    assert not (result.out / "checkpoints").exists()


def test_finetune_is_cached_by_content(tiny_target: Path, bench_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=30, lr=3e-3, batch_size=16, warmup_ratio=0.05, precision="fp32")
    again = api.finetune("tiny", bench_dir / "full.jsonl", tmp_path / "again", config)
    assert again.cached
    assert sha256_path(again.out / "model") == sha256_path(tiny_target / "model")


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_interrupted_run_resumes_to_the_same_weights(bench_dir: Path, tmp_path: Path) -> None:
    loaded = load_model("tiny")
    records = load_records(bench_dir / "forget10.jsonl")
    examples = api.encode_records(loaded, records)
    config = TrainConfig(max_steps=8, lr=1e-3, batch_size=4, checkpoint_every=3, precision="fp32")
    pad = loaded.tokenizer.pad_token_id

    straight = load_model("tiny")
    train(straight.model, FineTune(), examples, None, config, pad, tmp_path / "straight")

    def interrupt(step: int, total: int, logs: dict) -> None:
        if step == 5:
            raise KeyboardInterrupt

    work = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(loaded.model, FineTune(), examples, None, config, pad, work, on_step=interrupt)
    assert latest_checkpoint(work).name == "step-000005"
    resumed = load_model("tiny")
    summary = train(resumed.model, FineTune(), examples, None, config, pad, work, resume=True)
    assert summary.resumed_from_step == 5 and summary.steps == 3
    expected = _weights(straight.model)
    for name, value in _weights(resumed.model).items():
        assert torch.allclose(value, expected[name], atol=1e-6), name


def test_nan_loss_stops_with_a_clear_error(bench_dir: Path, tmp_path: Path) -> None:
    loaded = load_model("tiny")
    examples = api.encode_records(loaded, load_records(bench_dir / "forget01.jsonl"))

    class Exploding(FineTune):
        def loss(self, model, forget, retain):
            loss, logs = super().loss(model, forget, retain)
            return loss * float("nan"), logs

    config = TrainConfig(max_steps=3, lr=1e-3, batch_size=4, precision="fp32")
    with pytest.raises(ObliviateError, match="loss became nan at step 1"):
        train(loaded.model, Exploding(), examples, None, config, 0, tmp_path / "nan")
