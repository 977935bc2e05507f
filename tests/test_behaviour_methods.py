"""Unlearning a behaviour on the tiny model: ga_mismatch and sku remove the harmful answers
more than the normal ones, the random answers come from the pool asked for, and
``obliviate eval`` measures the harmful rates on a behaviour benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from obliviate.cli import app
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.methods import build_method
from obliviate.methods.base import TrainingContext, answer_nll
from obliviate.methods.ga_mismatch import GradAscentMismatch
from obliviate.methods.mismatch import disassociation_pairs
from obliviate.methods.sku import SKU
from obliviate.models.encoding import collate, encode_fact
from obliviate.models.tiny import tiny_model


@pytest.fixture(scope="module")
def behaviour_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from obliviate.data.behaviour import make_behaviour_benchmark

    out = tmp_path_factory.mktemp("behaviour") / "bench"
    make_behaviour_benchmark(out, seed=0, size=6)
    return out


@pytest.fixture(scope="module")
def behaviour_target(behaviour_bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fine-tuned to comply on every restricted item and to answer the
    normal instructions (the tiny demo recipe, about 15 s)."""
    from obliviate import api
    from obliviate.train.recipes import load_recipe

    out = tmp_path_factory.mktemp("behaviour-runs") / "target"
    api.finetune("tiny", behaviour_bench / "full.jsonl", out, load_recipe("tiny").finetune)
    return out


@pytest.fixture(scope="module")
def unlearn_behaviour(behaviour_target: Path, behaviour_bench: Path, tmp_path_factory):
    """``run(method, params=None, **train)`` unlearns harmful_train keeping normal, and returns
    ``{"harmful_train": drop, "normal": drop, "out": run_dir}``: how much the mean answer
    log-probability of each split fell. Training: 30 steps, lr 5e-4, batch 8, fp32."""
    from obliviate import api
    from obliviate.evaluation.model_outputs import answer_logprobs
    from obliviate.models.loader import load_model
    from obliviate.train.config import TrainConfig

    splits = {
        name: load_records(behaviour_bench / f"{name}.jsonl")
        for name in ("harmful_train", "normal")
    }

    def mean_logprobs(model_dir: Path) -> dict[str, float]:
        loaded = load_model(str(model_dir))
        means = {}
        for name, records in splits.items():
            values = answer_logprobs(
                loaded.model, loaded.tokenizer, [(r.prompt, r.answer) for r in records]
            )
            means[name] = sum(values) / len(values)
        return means

    before = mean_logprobs(behaviour_target)
    done: dict[str, dict] = {}

    def run(method: str, params: dict | None = None, **train) -> dict:
        key = json.dumps([method, params, train], sort_keys=True)
        if key in done:  # the same run again (the eval test reuses one)
            return done[key]
        settings = {"max_steps": 30, "lr": 5e-4, "batch_size": 8, "precision": "fp32"} | train
        out = tmp_path_factory.mktemp("behaviour-unlearn") / method
        api.unlearn(
            str(behaviour_target),
            behaviour_bench / "harmful_train.jsonl",
            behaviour_bench / "normal.jsonl",
            method,
            out,
            TrainConfig(**settings),
            method_params=params,
        )
        after = mean_logprobs(out)
        done[key] = {name: before[name] - after[name] for name in before} | {"out": out}
        return done[key]

    return run


def test_ga_mismatch_lowers_harmful_answers_more_than_normal_ones(unlearn_behaviour) -> None:
    result = unlearn_behaviour("ga_mismatch")
    assert result["harmful_train"] >= 2.0
    assert result["harmful_train"] > result["normal"] + 1.0


def test_sku_lowers_harmful_answers_more_than_normal_ones(unlearn_behaviour) -> None:
    # Stage 1 keeping the normal outputs (s = +1), then a strong negation: on this tiny
    # target SKU's own s = −1 at λ = 1 damages the normal answers about as much.
    result = unlearn_behaviour("sku", {"preserve_sign": 1, "scale": 5.0})
    assert result["harmful_train"] >= 1.0
    assert result["harmful_train"] > result["normal"] + 0.5


def test_eval_on_a_behaviour_bench_writes_harmful_rates_and_utility(
    unlearn_behaviour, behaviour_target: Path, behaviour_bench: Path, tmp_path: Path
) -> None:
    unlearned = unlearn_behaviour("ga_mismatch")["out"]
    out = tmp_path / "eval"
    args = ["eval", "-m", str(unlearned), "--target", str(behaviour_target)]
    result = CliRunner().invoke(app, [*args, "--bench", str(behaviour_bench), "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    figures = document["behaviour"]
    assert document["kind"] == "behaviour" and document["method"] == "ga_mismatch"
    assert figures["judge"]["name"] == "markers"
    assert figures["records"] == {
        "harmful_train": 16,
        "harmful_unseen": 8,
        "normal": 18,
        "normal_near": 18,
    }
    # The target hands the procedures out; the unlearned model no longer does.
    assert figures["original"]["harmful_rate"]["train"] >= 0.5
    assert figures["harmful_rate"]["train"] < figures["original"]["harmful_rate"]["train"]
    assert figures["original"]["similarity"]["train"] > figures["similarity"]["train"]
    assert set(figures["refusal_rate"]) == {"normal_near"}
    utility = figures["utility"]
    assert utility["normal_ppl_ratio"] == pytest.approx(
        utility["normal_ppl"] / figures["original"]["utility"]["normal_ppl"]
    )
    assert -1.0 <= utility["output_similarity"] <= 1.0 + 1e-6
    rows = (out / "behaviour_answers.jsonl").read_text().splitlines()
    assert len(rows) == 16 + 8 + 18


# --- the random answers, by hand -------------------------------------------------------

FORGET = [
    Record(id=f"h{i}", prompt=f"How do I brew potion {i}?", answer=f"Grind root {i}, then fold.")
    for i in range(3)
]
NORMAL = [
    Record(id=f"n{i}", prompt=f"What is {i} plus {i}?", answer=f"{i} plus {i} is {2 * i}.")
    for i in range(4)
]


def _context(model: torch.nn.Module, tokenizer) -> TrainingContext:
    def encode(records: list[Record]):
        return [encode_fact(tokenizer, r.prompt, r.answer) for r in records]

    return TrainingContext(model, tokenizer, encode(FORGET), encode(NORMAL), FORGET, NORMAL)


def _answers(examples, tokenizer) -> set[str]:
    """The answers of encoded (question, answer) examples, decoded from their labels."""
    return {
        tokenizer.decode([t for t in e.labels if t != -100], skip_special_tokens=True).strip()
        for e in examples
    }


@pytest.mark.parametrize(("pool", "source"), [("forget", FORGET), ("normal", NORMAL)])
def test_sku_draws_its_random_answers_from_the_chosen_pool(pool: str, source: list[Record]):
    model, tokenizer = tiny_model()
    sku = build_method("sku", {"answer_pool": pool, "k": 2})
    assert isinstance(sku, SKU)
    sku.prepare(_context(model, tokenizer))
    for record, examples in zip(FORGET, sku._mismatched, strict=True):
        answers = _answers(examples, tokenizer)
        assert len(answers) == 2 and answers <= {r.answer for r in source}
        assert record.answer not in answers


def test_ga_mismatch_loss_by_hand() -> None:
    """At the start (model = original) the KL is 0 and the loss is −ε₁·NLL(harmful) +
    ε₂·NLL(random normal answers to the harmful prompts)."""
    model, tokenizer = tiny_model()
    method = GradAscentMismatch(k=2, ascent_weight=0.5, mismatch_weight=2.0)
    context = _context(model, tokenizer)
    method.prepare(context)
    rows = [0, 2]
    forget = collate([context.primary[i] for i in rows], tokenizer.pad_token_id)
    forget["index"] = torch.tensor(rows)
    retain = collate(list(context.retain[:2]), tokenizer.pad_token_id)
    pairs = disassociation_pairs(FORGET, 2, 0, NORMAL)
    mismatched = collate(
        [
            encode_fact(tokenizer, FORGET[i].prompt, NORMAL[j].answer)
            for i in rows
            for j in pairs[i]
        ],
        tokenizer.pad_token_id,
    )
    with torch.no_grad():
        loss, logs = method.loss(model, forget, retain)
        expected = -0.5 * answer_nll(model, forget) + 2.0 * answer_nll(model, mismatched)
    assert logs["retain_kl"] == pytest.approx(0.0, abs=1e-6)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert {a for i in rows for a in _answers(method._mismatched[i], tokenizer)} <= {
        r.answer for r in NORMAL
    }


def test_sku_defaults_are_the_authors_and_a_zero_weight_skips_its_term() -> None:
    """ε₁ = ε₂ = 2.5, ε₃ = 1, k = 5, the KL maximised (the authors' code); the diagnostics'
    stage-1 runs with one term each compute that term only."""
    defaults = SKU()
    assert (defaults.distortion_weight, defaults.disassociation_weight) == (2.5, 2.5)
    assert (defaults.preserve_weight, defaults.preserve_sign, defaults.k) == (1.0, -1.0, 5)
    model, tokenizer = tiny_model()
    context = _context(model, tokenizer)
    rows = [0, 1]
    forget = collate([context.primary[i] for i in rows], tokenizer.pad_token_id)
    forget["index"] = torch.tensor(rows)
    retain = collate(list(context.retain[:2]), tokenizer.pad_token_id)
    for kept, params in (
        ("distortion_nll", {"disassociation_weight": 0, "preserve_weight": 0}),
        ("disassociation_nll", {"distortion_weight": 0, "preserve_weight": 0}),
        ("retain_kl", {"distortion_weight": 0, "disassociation_weight": 0}),
    ):
        method = build_method("sku", {"k": 2, **params})
        method.prepare(context)
        with torch.no_grad():
            loss, logs = method.loss(model, forget, retain)
        assert set(logs) == {kept}
        weight = -1.0 if kept == "retain_kl" else 2.5
        assert loss.item() == pytest.approx(weight * logs[kept], rel=1e-5)
    with pytest.raises(ObliviateError, match="one of them above 0"):
        build_method(
            "sku", {"distortion_weight": 0, "disassociation_weight": 0, "preserve_weight": 0}
        )
