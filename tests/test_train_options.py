"""Training options that combine with any method: --localize, --optimizer sophia, --adversarial."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import cli_output

from obliviate import api
from obliviate.data.loaders import load_records
from obliviate.errors import ObliviateError
from obliviate.methods import FineTune
from obliviate.methods.base import answer_nll, mean_answer_logprob
from obliviate.models.encoding import collate
from obliviate.models.loader import load_model
from obliviate.train.adversarial import LatentAdversary, perturbed
from obliviate.train.checkpoints import latest_checkpoint
from obliviate.train.config import TrainConfig
from obliviate.train.localize import LocalizeSpec, _top_fraction
from obliviate.train.loop import _BatchStream, train
from obliviate.train.sophia import Sophia


def drop(result: dict, split: str) -> float:
    before, after = result[split]
    return before - after


def parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    """Named parameters, each tensor once (the tiny model's embedding and head are tied)."""
    return {k: v.detach() for k, v in load_model(str(run_dir)).model.named_parameters()}


def changed_weights(before: Path, after: Path) -> dict[str, int]:
    """Parameter name → number of entries that differ between two saved models."""
    a, b = parameters(before), parameters(after)
    counts = {name: int((a[name] != b[name]).sum()) for name in a}
    return {name: n for name, n in counts.items() if n}


# --localize


def test_localize_spec_forms_and_global_threshold() -> None:
    assert LocalizeSpec.parse("weights:0.05") == LocalizeSpec("weights", fraction=0.05)
    assert LocalizeSpec.parse("layers:0.2") == LocalizeSpec("layers", fraction=0.2)
    assert LocalizeSpec.parse("layers=5,3,4") == LocalizeSpec("layers", layers=(3, 4, 5))
    scores = [torch.tensor([[1.0, 5.0, 3.0]]), torch.tensor([4.0, 2.0])]
    masks = _top_fraction(scores, 0.4)  # 2 of 5 entries: the 5 and the 4, across tensors
    assert masks[0].tolist() == [[False, True, False]]
    assert masks[1].tolist() == [True, False]


def test_localize_named_layer_changes_only_that_layer(unlearn_tiny, tiny_target: Path) -> None:
    result = unlearn_tiny("grad_diff", localize="layers=1", lr=2e-3)
    changed = changed_weights(tiny_target, result["out"])
    assert changed and all(name.startswith("model.layers.1.") for name in changed), changed
    assert drop(result, "forget") >= 1.0
    assert json.loads((result["out"] / "localize.json").read_text())["layers"] == [1]


def test_localize_salient_weights_changes_at_most_that_fraction(
    unlearn_tiny, tiny_target: Path
) -> None:
    # Weight decay would shrink every weight it reaches; the unselected ones must not move.
    result = unlearn_tiny("grad_diff", localize="weights:0.05", lr=2e-3, weight_decay=0.1)
    total = sum(v.numel() for v in parameters(tiny_target).values())
    changed = sum(changed_weights(tiny_target, result["out"]).values())
    assert 0 < changed <= 0.05 * total
    assert drop(result, "forget") >= 1.0
    selected = json.loads((result["out"] / "localize.json").read_text())
    assert changed <= selected["trainable_weights"] <= 0.05 * total


# --optimizer sophia


@pytest.mark.parametrize("curvature", [4.0, 400.0])
def test_sophia_step_is_a_damped_newton_step_clipped_at_lr(curvature: float) -> None:
    """L = ½·a·x²: g = a·x and Hutchinson's u·(a·u) = a exactly, so the first step is
    x ← x − lr·clip(x/ρ, 1) whatever the curvature a (plain gradient descent scales by a)."""
    for start, expected in ((0.01, 0.01 - 0.5 * 0.01), (3.0, 3.0 - 0.5)):
        x = torch.nn.Parameter(torch.tensor([start]))
        optimizer = Sophia([x], lr=0.5, rho=1.0)
        optimizer.update_hessian(0.5 * curvature * (x**2).sum(), seed=0)
        assert optimizer.state[x]["hessian"].item() == pytest.approx(0.01 * curvature)
        (0.5 * curvature * (x**2).sum()).backward()
        optimizer.step()
        assert x.item() == pytest.approx(expected, rel=1e-5)


def test_sophia_grad_diff_forgets_more_than_retain(unlearn_tiny) -> None:
    result = unlearn_tiny("grad_diff", optimizer="sophia")
    assert drop(result, "forget") >= 1.0
    assert drop(result, "forget") > drop(result, "retain") + 0.5


# --adversarial latent


@pytest.fixture(scope="module")
def tiny_forget_batch(bench_dir: Path):
    loaded = load_model("tiny")
    for weight in loaded.model.parameters():
        weight.requires_grad_(False)
    records = load_records(bench_dir / "forget10.jsonl")
    examples = api.encode_records(loaded, records)
    batch = collate(examples[:8], loaded.tokenizer.pad_token_id)
    other = collate(examples[8:16], loaded.tokenizer.pad_token_id)
    return loaded.model, batch, other


def test_pgd_stays_in_the_ball_and_restores_the_forget_answers(tiny_forget_batch) -> None:
    model, batch, _ = tiny_forget_batch
    adversary = LatentAdversary(layer=0, epsilon=0.25, steps=4)
    delta, _ = adversary.attack(model, batch)
    with torch.no_grad(), perturbed(model, 0, batch["input_ids"], torch.zeros_like(delta)) as h:
        clean_nll = float(answer_nll(model, batch))
    tokens = batch["attention_mask"].bool()
    radius = 0.25 * float(h.clean.norm(dim=-1)[tokens].mean())
    assert float(delta.norm(dim=-1).max()) <= radius * (1 + 1e-5)
    assert float(delta.norm(dim=-1)[~tokens].sum()) == 0.0  # padding is left alone
    with torch.no_grad(), perturbed(model, 0, batch["input_ids"], delta):
        attacked_nll = float(answer_nll(model, batch))
    assert attacked_nll < clean_nll - 0.1


def test_perturbation_reaches_forget_passes_only(tiny_forget_batch) -> None:
    model, forget, retain = tiny_forget_batch
    delta = torch.ones(*forget["input_ids"].shape, model.config.hidden_size)
    with torch.no_grad():
        clean = [mean_answer_logprob(model, b) for b in (forget, retain)]
        with perturbed(model, 0, forget["input_ids"], delta) as hooks:
            moved = [mean_answer_logprob(model, b) for b in (forget, retain)]
    assert hooks.applied == 1
    assert not torch.allclose(moved[0], clean[0])
    assert torch.equal(moved[1], clean[1])


def latent_attacked_forget_logprob(run_dir: Path, bench_dir: Path) -> float:
    """The forget answers' mean log-prob after a PGD attack on layer 0 (ε = 0.5, 10 steps)."""
    loaded = load_model(str(run_dir))
    for weight in loaded.model.parameters():
        weight.requires_grad_(False)
    examples = api.encode_records(loaded, load_records(bench_dir / "forget10.jsonl"))
    batch = collate(examples, loaded.tokenizer.pad_token_id)
    delta, _ = LatentAdversary(layer=0, epsilon=0.5, steps=10).attack(loaded.model, batch)
    with torch.no_grad(), perturbed(loaded.model, 0, batch["input_ids"], delta):
        return float(mean_answer_logprob(loaded.model, batch).mean())


def test_latent_adversarial_unlearning_resists_a_latent_attack(unlearn_tiny, bench_dir) -> None:
    plain = unlearn_tiny("grad_diff", lr=7e-4)
    robust = unlearn_tiny("grad_diff", adversarial="latent", lr=2e-3)
    assert drop(robust, "forget") >= 1.0
    assert robust["forget"][1] <= plain["forget"][1] + 0.5  # forgets about as much, clean
    assert robust["retain"][1] >= plain["retain"][1] - 0.3  # keeps about as much
    plain_attacked = latent_attacked_forget_logprob(plain["out"], bench_dir)
    robust_attacked = latent_attacked_forget_logprob(robust["out"], bench_dir)
    assert robust_attacked < plain_attacked - 1.0


def test_adversary_needs_a_method_that_runs_the_forget_questions(unlearn_tiny) -> None:
    with pytest.raises(ObliviateError, match="never runs the forget questions"):
        unlearn_tiny("idk", adversarial="latent", max_steps=1)


# resume and validation


@pytest.mark.parametrize(
    "options",
    [
        {"localize": "weights:0.05", "weight_decay": 0.1},
        {"localize": "layers:0.5"},
        {"optimizer": "sophia", "hessian_every": 2},
        {"adversarial": "latent"},
    ],
    ids=["localize-weights", "localize-layers", "sophia", "adversarial"],
)
def test_resume_with_each_option_reaches_the_same_weights(
    options: dict, bench_dir: Path, tmp_path: Path
) -> None:
    records = load_records(bench_dir / "forget10.jsonl")
    config = TrainConfig(
        max_steps=6, lr=1e-3, batch_size=4, checkpoint_every=2, precision="fp32", **options
    )
    straight = load_model("tiny")
    examples = api.encode_records(straight, records)
    pad = straight.tokenizer.pad_token_id
    train(straight.model, FineTune(), examples, None, config, pad, tmp_path / "straight")

    def interrupt(step: int, total: int, logs: dict) -> None:
        if step == 3:
            raise KeyboardInterrupt

    work = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        model = load_model("tiny").model
        train(model, FineTune(), examples, None, config, pad, work, on_step=interrupt)
    assert latest_checkpoint(work).name == "step-000003"
    resumed = load_model("tiny")
    train(resumed.model, FineTune(), examples, None, config, pad, work, resume=True)
    expected = dict(straight.model.named_parameters())
    for name, value in resumed.model.named_parameters():
        assert torch.allclose(value, expected[name], atol=1e-6), name


# --group-by-length


def test_length_grouped_batches_cover_each_pass_with_less_padding(bench_dir: Path) -> None:
    tiny = load_model("tiny")
    records = load_records(bench_dir / "retain90.jsonl")[:150]
    examples = api.encode_records(tiny, records)
    full = len(examples) // 8 - 1
    examples = examples[: 8 * full + 6]  # full batches and a short one
    pad = tiny.tokenizer.pad_token_id

    def one_pass(stream: _BatchStream, epoch: int) -> list[torch.Tensor]:
        return [stream.batch(epoch * stream.per_pass + b, pad) for b in range(stream.per_pass)]

    plain, grouped = (_BatchStream(examples, 8, 0, group) for group in (False, True))
    for epoch in range(2):
        batches = one_pass(grouped, epoch)
        seen = sorted(i for batch in batches for i in batch["index"].tolist())
        assert seen == list(range(len(examples)))  # every example once a pass
        assert [len(b["index"]) for b in batches] == [8] * full + [6]  # the short batch last
        padded = sum(b["input_ids"].numel() for b in batches)
        padded_plain = sum(b["input_ids"].numel() for b in one_pass(plain, epoch))
        real = sum(len(e.input_ids) for e in examples)
        assert padded - real < 0.25 * (padded_plain - real)
    again = one_pass(_BatchStream(examples, 8, 0, True), 1)
    assert all(
        torch.equal(a["index"], b["index"])
        for a, b in zip(again, one_pass(grouped, 1), strict=True)
    )
    assert not torch.equal(one_pass(grouped, 0)[0]["index"], one_pass(grouped, 1)[0]["index"])


# --compile


def test_compiled_layers_train_to_the_eager_weights_and_are_eager_after(
    bench_dir: Path, tmp_path: Path
) -> None:
    records = load_records(bench_dir / "forget10.jsonl")
    models = {}
    for compiled in (False, True):
        loaded = load_model("tiny")
        examples = api.encode_records(loaded, records)
        config = TrainConfig(max_steps=4, lr=1e-3, batch_size=4, precision="fp32", compile=compiled)
        train(
            loaded.model,
            FineTune(),
            examples,
            None,
            config,
            loaded.tokenizer.pad_token_id,
            tmp_path / str(compiled),
        )
        models[compiled] = loaded.model
    layers = models[True].model.layers
    assert all("forward" not in vars(layer) for layer in layers)  # compiled for the run only
    start = dict(load_model("tiny").model.named_parameters())
    eager = dict(models[False].named_parameters())
    for name, value in models[True].named_parameters():
        moved = (eager[name] - start[name]).abs().max().item()
        apart = (value - eager[name]).abs().max().item()
        # Adam moves every weight by about lr a step; fused kernels round differently.
        assert moved > 1e-3 and apart < 0.02 * moved, (name, moved, apart)


def test_compiled_grad_diff_forgets_like_eager(unlearn_tiny) -> None:
    compiled = unlearn_tiny("grad_diff", compile=True)
    eager = unlearn_tiny("grad_diff")
    for split in ("forget", "retain"):
        assert compiled[split][1] == pytest.approx(eager[split][1], abs=0.05), split
    assert drop(compiled, "forget") > 1.0 > abs(drop(compiled, "retain"))


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (["--localize", "foo"], "--localize 'foo' must be"),
        (["--localize", "weights:2"], "0 < F ≤ 1"),
        (["--optimizer", "adam2"], "--optimizer must be adamw or sophia"),
        (["--adversarial", "pgd"], "--adversarial must be latent"),
        (["--localize", "weights:0.1", "--lora"], "does not combine with --lora"),
    ],
)
def test_bad_option_values_give_one_line_errors(
    option: list[str], fragment: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    forget = tmp_path / "f.jsonl"
    forget.write_text('{"prompt": "Q?", "answer": "A"}\n')
    args = ["unlearn", "--model", "tiny", "--forget", str(forget)]
    args += ["--method", "grad_diff", "--out", str(tmp_path / "out"), *option]
    code, _, err = cli_output(args, monkeypatch, capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert fragment in lines[0], lines[0]


def test_cli_passes_the_options_and_yaml_knobs_to_the_run(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    knobs = tmp_path / "knobs.yaml"
    knobs.write_text("adversarial_epsilon: 0.1\nhessian_every: 2\nlocalize_batches: 2\n")
    out = tmp_path / "run"
    args = ["unlearn", "--model", str(tiny_target), "--method", "grad_diff", "--out", str(out)]
    args += ["--forget", str(bench_dir / "forget10.jsonl")]
    args += ["--retain", str(bench_dir / "retain90.jsonl"), "--max-steps", "3", "--lr", "2e-3"]
    args += ["--localize", "layers=1", "--optimizer", "sophia", "--adversarial", "latent"]
    args += ["--allow-weak"]  # the options' plumbing, not forgetting: 3 steps move −0.09
    code, _, err = cli_output([*args, "--config", str(knobs)], monkeypatch, capsys)
    assert code == 0, err
    settings = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert settings["localize"] == "layers=1" and settings["optimizer"] == "sophia"
    assert settings["adversarial"] == "latent" and settings["adversarial_epsilon"] == 0.1
    assert settings["hessian_every"] == 2 and settings["localize_batches"] == 2
    assert json.loads((out / "localize.json").read_text())["layers"] == [1]
    assert "adversarial_nll" in json.loads((out / "log.jsonl").read_text().splitlines()[0])
