"""The Python API takes what a Python user holds and returns result objects (issue 25).

A loaded transformers model with its tokenizer, records as a list of dicts or a
``datasets.Dataset``; the run names them as what they are, the user's model is left as it
was, the caches still hit; ``evaluate`` returns a ``Results``; ``import obliviate`` is light.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer

import obliviate
from obliviate.errors import ObliviateError
from obliviate.train.config import TrainConfig

MODEL_LABEL = "in-memory LlamaForCausalLM"
FAST = TrainConfig(max_steps=3, lr=5e-4, batch_size=8, precision="fp32")


def rows(path: Path, count: int | None = None) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()[:count]
    return [json.loads(line) for line in lines]


def run_text(out: Path) -> str:
    """Every file a run wrote that records its inputs, as one string."""
    names = ("config.yaml", "manifest.json", "results.json", "report.md", "model/README.md")
    return "".join((out / n).read_text(encoding="utf-8") for n in names if (out / n).is_file())


@pytest.fixture(scope="module")
def loaded(tiny_target: Path):
    """The tiny target as a user holds it: loaded with transformers."""
    folder = tiny_target / "model"
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def unlearned(loaded, bench_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A loaded model and lists of dicts through unlearn (a few steps; weak is allowed)."""
    model, tokenizer = loaded
    before = model.get_input_embeddings().weight.detach().clone()
    forget, retain = rows(bench_dir / "forget10.jsonl"), rows(bench_dir / "retain90.jsonl", 24)
    out = tmp_path_factory.mktemp("api") / "unlearned"
    run = obliviate.unlearn(
        model, forget, retain, "grad_diff", out, FAST, allow_weak=True, tokenizer=tokenizer
    )
    return run, before, forget, retain


def test_unlearn_takes_a_loaded_model_and_lists_of_dicts(unlearned, loaded) -> None:
    run, before, forget, retain = unlearned
    model, _ = loaded
    assert torch.equal(model.get_input_embeddings().weight, before)  # the user's, untouched
    assert (run.model_dir / "config.json").is_file() and run.steps == 3
    manifest = json.loads((run.out / "manifest.json").read_text())
    assert manifest["model"]["spec"].startswith(f"{MODEL_LABEL} (loaded from ")
    assert manifest["inputs"]["primary"]["path"] == f"records (list of {len(forget)})"
    assert manifest["inputs"]["retain"]["path"] == f"records (list of {len(retain)})"
    config = yaml.safe_load((run.out / "config.yaml").read_text())
    assert config["model"] == manifest["model"]["spec"]
    assert "obliviate-inputs-" not in run_text(run.out)  # no temporary path anywhere
    again, tokenizer = run.load()
    assert not torch.equal(again.get_input_embeddings().weight, before)
    assert tokenizer.pad_token_id is not None


def test_evaluate_takes_a_dataset_and_returns_results(unlearned, loaded, tmp_path) -> None:
    run, _, forget, retain = unlearned
    model, tokenizer = loaded
    kwargs = {"retain": retain, "target": model, "max_per_split": 6, "tokenizer": tokenizer}
    results = obliviate.evaluate(
        run.out, tmp_path / "eval", forget=Dataset.from_list(forget), **kwargs
    )
    assert isinstance(results, obliviate.Results) and isinstance(results, dict)
    assert results.out == tmp_path / "eval" and (results.out / "results.json").is_file()
    assert results.verdict == results["verdict"] and results.verdict["line"] in repr(results)
    assert results.forgotten == results["verdict"]["forgotten"]["passed"]
    assert results.forget_accuracy == results["splits"]["forget"]["accuracy"]
    assert results.model_utility == results["model_utility"] and results.worst_case is None
    plain = results.to_dict()
    assert type(plain) is dict and plain == results
    assert results["split"] == f"records (Dataset of {len(forget)})"
    assert results["reference"]["target"]["model"].startswith(MODEL_LABEL)
    assert "obliviate-inputs-" not in run_text(results.out)
    # The same model and records again (a list now): the evaluation cache, keyed by content.
    second = obliviate.evaluate(run.out, tmp_path / "again", forget=forget, **kwargs)
    assert second["reference"]["target"]["cost"]["eval_cached"] is True
    assert second["splits"] == results["splits"]


def test_bad_inputs_are_one_line_errors(loaded, tmp_path) -> None:
    model, tokenizer = loaded
    with pytest.raises(ObliviateError, match="needs its tokenizer"):
        obliviate.evaluate(model, tmp_path / "a", forget=[{"prompt": "Q?", "answer": "A"}])
    with pytest.raises(ObliviateError, match="not a dict"):
        obliviate.evaluate("tiny", tmp_path / "b", forget={"prompt": "Q?", "answer": "A"})
    with pytest.raises(ObliviateError, match="record 2 is a str"):
        obliviate.evaluate("tiny", tmp_path / "c", forget=[{"prompt": "Q?", "answer": "A"}, "x"])
    with pytest.raises(ObliviateError, match=r"^records \(list of 1\)"):  # not a temp path
        obliviate.evaluate((model, tokenizer), tmp_path / "d", forget=[{"prompt": "Q?"}])
    with pytest.raises(ObliviateError, match="tokenizer= goes with a loaded model"):
        obliviate.evaluate("tiny", tmp_path / "e", forget=[{"a": 1}], tokenizer=tokenizer)
    assert "tokenizer" in inspect.signature(obliviate.unlearn).parameters


def written_text(out: Path) -> str:
    """Every text file a run wrote (results, manifests, reports, tables), as one string."""
    kinds = {".json", ".jsonl", ".yaml", ".md", ".html", ".csv"}
    return "".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.suffix in kinds)


def test_evaluate_behaviour_takes_a_loaded_model_and_a_dict_of_splits(loaded, tmp_path) -> None:
    from obliviate.data.behaviour import make_behaviour_benchmark

    files = make_behaviour_benchmark(tmp_path / "bench", seed=0, size=6)
    splits = {name: rows(files[name]) for name in ("harmful_train", "normal")}
    splits["normal"] = Dataset.from_list(splits["normal"])
    model, tokenizer = loaded
    out = tmp_path / "eval"
    document = obliviate.evaluate_behaviour(
        model, out, bench=splits, max_per_split=2, max_new_tokens=4, tokenizer=tokenizer
    )
    assert document["model"].startswith(MODEL_LABEL) and document["behaviour"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["bench"]["path"] == "splits (dict of harmful_train, normal)"
    assert manifest["records"] == {"harmful_train": 2, "normal": 2}
    assert "obliviate-inputs-" not in written_text(out)
    with pytest.raises(ObliviateError, match=r"^splits \(dict of normal\) is not a behaviour"):
        obliviate.evaluate_behaviour("tiny", tmp_path / "a", bench={"normal": splits["normal"]})
    with pytest.raises(ObliviateError, match="split names are words"):
        obliviate.evaluate_behaviour("tiny", tmp_path / "b", bench={"../x": []})


def test_sequence_takes_a_loaded_model_and_its_oracles(loaded, bench_dir, tmp_path) -> None:
    model, tokenizer = loaded
    with pytest.raises(ObliviateError, match=f"^{MODEL_LABEL} .*not a fine-tune's run dir"):
        obliviate.sequence(model, bench_dir, "ga", "forget05", tmp_path / "a", tokenizer=tokenizer)
    out = tmp_path / "seq"
    settings = {"config": FAST, "max_per_split": 4, "allow_weak": True}
    summary = obliviate.sequence(
        (model, tokenizer), bench_dir, "ga", "forget05", out, oracles=[model], **settings
    )  # the user's model stands in for the oracle: the mechanics are under test
    assert summary["model"].startswith(MODEL_LABEL) and summary["oracles"] == [summary["model"]]
    step = json.loads((out / "step-1" / "manifest.json").read_text())
    assert step["model"]["spec"] == step["sequence"]["previous_model"] == summary["model"]
    assert "obliviate-inputs-" not in written_text(out)


def test_tune_takes_a_loaded_model_and_lists_of_dicts(loaded, bench_dir, tmp_path) -> None:
    forget, retain = rows(bench_dir / "forget10.jsonl"), rows(bench_dir / "retain90.jsonl", 24)
    out = tmp_path / "tune"
    result = obliviate.tune(
        loaded, out, forget=forget, retain=Dataset.from_list(retain), method="grad_diff",
        trials=1, steps_range="2,3", max_per_split=8,
    )  # fmt: skip
    assert result["model"].startswith(MODEL_LABEL)
    assert [t["state"] for t in result["tune"]["trials"]] == ["complete"]
    assert result["tune"]["validation"]["forget_file"] == f"records (list of {len(forget)})"
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["retain"] == f"records (Dataset of {len(retain)})"
    assert (out / "recipe.yaml").is_file() and "obliviate-inputs-" not in written_text(out)


def test_import_obliviate_loads_no_torch() -> None:
    code = (
        "import obliviate, sys; assert 'torch' not in sys.modules; print(' '.join(dir(obliviate)))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert {"unlearn", "finetune", "evaluate", "audit", "Results"} <= set(shown)
    from obliviate import api
    from obliviate.evaluation import metrics  # the layer package, named apart from the API

    assert set(obliviate.__all__) == {"ObliviateError", "__version__", *api.__all__}
    assert obliviate.unlearn is api.unlearn and obliviate.evaluate is api.evaluate
    assert metrics.__name__ == "obliviate.evaluation.metrics"
