"""LoRA kept unmerged (``--keep-adapter``): the run saves the adapter alone, over a base
model it leaves untouched, and every command loads it as it would the merged model."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import cli_before_torch, run_cli

from obliviate import api
from obliviate.cli.params import merge_settings
from obliviate.cli.training import unlearn
from obliviate.data.loaders import load_records
from obliviate.errors import ObliviateError
from obliviate.evaluation.cache import evaluation_key
from obliviate.evaluation.suite import evaluate_models
from obliviate.evaluation.text import TextSettings
from obliviate.models.loader import load_model, model_fingerprint, save_model
from obliviate.models.specs import check_model_spec
from obliviate.rundir import sha256_path
from obliviate.train.config import TrainConfig

#: A few steps of LoRA unlearning: enough to move the adapter, not to forget (allow_weak).
LORA = TrainConfig(max_steps=3, lr=1e-3, batch_size=8, lora=True, precision="fp32")


def _unlearn(model: Path | str, bench: Path, out: Path, **options) -> Path:
    api.unlearn(
        str(model),
        bench / "forget10.jsonl",
        bench / "retain90.jsonl",
        "grad_diff",
        out,
        LORA,
        allow_weak=True,
        **options,
    )
    return out


@pytest.fixture(scope="module")
def runs(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """The tiny model saved as a folder (the source), unlearned with the same seed twice:
    merged, and with its adapter kept."""
    root = tmp_path_factory.mktemp("lora-adapter")
    source = save_model(load_model("tiny"), root / "source")
    source_hash = sha256_path(source)
    return {
        "source": source,
        "source_hash": source_hash,
        "merged": _unlearn(source, bench_dir, root / "merged"),
        "kept": _unlearn(source, bench_dir, root / "kept", keep_adapter=True),
    }


def test_the_kept_adapter_is_saved_alone_and_names_its_untouched_base(runs) -> None:
    model = runs["kept"] / "model"
    files = {p.name for p in model.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= files
    assert not {"config.json", "model.safetensors"} & files
    config = json.loads((model / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(runs["source"].resolve())
    manifest = json.loads((runs["kept"] / "manifest.json").read_text())
    assert manifest["adapter"]["base_model"] == str(runs["source"].resolve())
    card = (model / "README.md").read_text()
    assert "library_name: peft" in card and "LoRA adapter" in card
    assert str(runs["source"].resolve()) in card
    assert "adapter" not in json.loads((runs["merged"] / "manifest.json").read_text())
    assert sha256_path(runs["source"]) == runs["source_hash"]
    cli = dict.fromkeys(inspect.signature(unlearn).parameters) | {"config": None}
    again = merge_settings(runs["kept"] / "config.yaml", cli, unlearn)  # the run's config back
    assert again["keep_adapter"] is True and again["lora"] is True


def test_the_adapter_evaluates_as_the_merged_run_and_is_cached(
    runs, bench_dir: Path, tmp_path: Path
) -> None:
    splits = {"forget": load_records(bench_dir / "forget10.jsonl")}
    models = {"merged": runs["merged"], "kept": runs["kept"]}
    evaluations = evaluate_models(models, splits, cache=tmp_path, own_phrasing=False)
    merged, kept = (evaluations[name].splits["forget"].figures for name in ("merged", "kept"))
    assert kept["accuracy"] == merged["accuracy"]
    assert kept["prob"] == pytest.approx(merged["prob"], rel=1e-5)
    logprobs = [
        json.loads((runs[name] / "results.json").read_text())["primary_answer_logprob"]["after"]
        for name in ("merged", "kept")
    ]
    assert logprobs[1] == pytest.approx(logprobs[0], abs=1e-5)
    again = evaluate_models({"kept": runs["kept"]}, splits, cache=tmp_path, own_phrasing=False)
    assert again["kept"].cached


def test_an_adapter_is_keyed_by_its_base_and_a_missing_base_is_one_line(
    runs, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(runs["kept"], moved)
    config_file = moved / "model" / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = str(runs["merged"].resolve())  # another base
    config_file.write_text(json.dumps(config))
    assert model_fingerprint(str(moved)) != model_fingerprint(str(runs["kept"]))
    keys = [evaluation_key(run, {}, "fp32", None, TextSettings()) for run in (runs["kept"], moved)]
    assert keys[0] != keys[1]
    gone = str(tmp_path / "gone")
    config_file.write_text(json.dumps(config | {"base_model_name_or_path": gone}))
    for load in (check_model_spec, load_model):
        with pytest.raises(ObliviateError, match=r"base model .*gone, which is not there") as err:
            load(str(moved))
        assert "\n" not in str(err.value)


def test_a_further_unlearning_stacks_a_second_adapter(
    runs, bench_dir: Path, tmp_path: Path
) -> None:
    again = _unlearn(runs["kept"], bench_dir, tmp_path / "again", keep_adapter=True)
    config = json.loads((again / "model" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(runs["kept"].resolve())
    before = load_model(str(runs["kept"])).model.state_dict()
    after = load_model(str(again)).model.state_dict()
    assert set(before) == set(after)
    assert any(not before[k].equal(after[k]) for k in before)
    assert model_fingerprint(str(again)).startswith("adapter:")


def test_a_kept_fine_tune_adapter_is_cached_apart_from_the_merged_one(
    runs, bench_dir: Path, tmp_path: Path
) -> None:
    settings = TrainConfig(max_steps=2, lr=1e-3, batch_size=8, lora=True, precision="fp32")
    data = bench_dir / "forget05.jsonl"
    first = api.finetune(str(runs["source"]), data, tmp_path / "a", settings, keep_adapter=True)
    second = api.finetune(str(runs["source"]), data, tmp_path / "b", settings, keep_adapter=True)
    assert not first.cached and second.cached
    assert (tmp_path / "b" / "model" / "adapter_config.json").is_file()
    merged = api.finetune(str(runs["source"]), data, tmp_path / "c", settings)
    assert not merged.cached and (tmp_path / "c" / "model" / "config.json").is_file()


def test_keep_adapter_is_refused_where_no_adapter_results(
    bench_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    forget, retain = bench_dir / "forget10.jsonl", bench_dir / "retain90.jsonl"
    no_lora = TrainConfig(max_steps=1, precision="fp32")
    with pytest.raises(ObliviateError, match="add --lora"):
        api.unlearn("tiny", forget, retain, "ga", tmp_path / "r", no_lora, keep_adapter=True)
    with pytest.raises(ObliviateError, match="add --lora"):  # before any step or run folder
        api.sequence("tiny", bench_dir, "ga", "forget05", tmp_path / "s", keep_adapter=True)
    with pytest.raises(ObliviateError, match="task-vector negation"):
        api.unlearn("tiny", forget, retain, "task_vector", tmp_path / "r", LORA, keep_adapter=True)
    args = ["--forget", str(forget), "--retain", str(retain), "--out", str(tmp_path / "r")]
    assert run_cli(["unlearn", "-m", "tiny", *args, "--keep-adapter"], monkeypatch) == 2
    assert not list(tmp_path.iterdir())


def test_an_adapter_over_a_replaced_base_is_one_line(runs, tmp_path: Path) -> None:
    """The base recorded by content: a copy of it loads the adapter, another model in its
    place is refused; an adapter that recorded nothing (peft's own) loads as before."""
    base, moved = tmp_path / "base", tmp_path / "moved"
    shutil.copytree(runs["source"], base)
    shutil.copytree(runs["kept"], moved)
    config_file = moved / "model" / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps(config | {"base_model_name_or_path": str(base)}))
    assert (moved / "model" / "base_fingerprint.json").is_file()
    load_model(str(moved))  # the same content elsewhere
    shutil.rmtree(base)
    shutil.copytree(runs["merged"] / "model", base)  # another model where the base was
    with pytest.raises(ObliviateError, match=r"base model at .*base changed since") as err:
        load_model(str(moved))
    assert "\n" not in str(err.value) and "retrain" in str(err.value)
    (moved / "model" / "base_fingerprint.json").unlink()
    load_model(str(moved))


def test_a_sequence_keeps_a_chain_of_adapters(runs, bench_dir: Path, tmp_path: Path) -> None:
    """Each step's adapter goes over the step before's model; the published chain loads."""
    source = str(runs["source"])
    out = tmp_path / "seq"
    summary = api.sequence(
        source, bench_dir, "grad_diff", "forget05,forget10", out, oracles=[source, source],
        config=LORA, max_per_split=4, allow_weak=True, keep_adapter=True,
    )  # fmt: skip
    assert [s["step"] for s in summary["steps"]] == [1, 2]
    for step, base in ((1, runs["source"]), (2, out / "step-1")):
        model = out / f"step-{step}" / "model"
        assert (model / "base_fingerprint.json").is_file() and not (model / "config.json").exists()
        config = json.loads((model / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == str(base.resolve())
        assert (out / f"step-{step}" / "report.html").is_file()
    assert yaml.safe_load((out / "config.yaml").read_text())["keep_adapter"] is True
    assert load_model(str(out / "step-2")).model is not None  # published paths, checked bases


def test_sequence_keep_adapter_without_lora_is_one_line_before_torch(
    bench_dir: Path, tmp_path: Path
) -> None:
    args = ["sequence", "--model", "tiny", "--bench", str(bench_dir)]
    args += ["--requests", "forget05", "--keep-adapter", "--out", "run"]
    imported, code, err = cli_before_torch(args, tmp_path)
    assert (imported, code) == (False, 2), err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "add --lora" in lines[0], err
    assert not (tmp_path / "run").exists()
