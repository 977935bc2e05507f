"""The audit's attacks on the tiny model: each does what it says, against the oracle too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import cli_output

import obliviate.attacks.diff as diff_attack
from obliviate.attacks import ATTACKS, AuditContext, resolve_attacks, run_audit
from obliviate.attacks.audit import recovery
from obliviate.attacks.base import Score, split_groups
from obliviate.attacks.in_context import CONTEXTS, contexts_for
from obliviate.attacks.jailbreak import TEMPLATES
from obliviate.attacks.quantize import (
    quantization_codes,
    quantize_rtn,
    quantized,
    same_value_fraction,
)
from obliviate.data.loaders import load_records
from obliviate.errors import ObliviateError
from obliviate.models.loader import load_model
from obliviate.models.precision import resolve_precision


@pytest.fixture(scope="module")
def forget(bench_dir: Path):
    return load_records(bench_dir / "forget10.jsonl")


@pytest.fixture(scope="module")
def holdout(bench_dir: Path):
    return load_records(bench_dir / "holdout.jsonl")


@pytest.fixture(scope="module")
def ga_model(unlearn_tiny) -> Path:
    """The tiny target after a short gradient ascent: the forget answers are gone."""
    return unlearn_tiny("ga", max_steps=12)["out"]


def test_registry_names_every_attack_of_the_issue():
    assert set(ATTACKS) == {
        "relearn",
        "in_context",
        "quantize",
        "paraphrase",
        "multihop",
        "crosslingual",
        "jailbreak",
        "tamper",
        "diff",
        "format",
        "clues",
        "probe",
    }
    assert resolve_attacks("all") == list(ATTACKS)
    assert resolve_attacks("relearn, quantize") == ["relearn", "quantize"]
    with pytest.raises(ObliviateError, match="unknown attack 'telepathy'"):
        resolve_attacks("relearn,telepathy")


def test_recovery_is_the_closed_fraction_of_the_gap_clipped():
    def s(acc: float) -> Score:
        return Score(acc, 0.0, 10)

    assert recovery(s(0.1), s(0.4), s(0.9)) == pytest.approx(3 / 8)
    assert recovery(s(0.1), s(1.0), s(0.5)) == 1.0
    assert recovery(s(0.3), s(0.1), s(0.9)) == 0.0
    assert recovery(s(0.9), s(0.9), s(0.9)) is None
    assert recovery(s(0.1), s(0.2), None) is None


def test_quantize_rounds_to_the_stated_bit_width_per_group():
    torch.manual_seed(0)
    weight = torch.randn(6, 320)  # 320 = two groups of 128 and a last one of 64
    for bits in (8, 4):
        codes = quantization_codes(weight, bits)
        assert codes.min() >= 0 and codes.max() <= 2**bits - 1
        assert torch.equal(codes, codes.round())
        rounded = quantize_rtn(weight, bits)
        for start in (0, 128, 256):
            block = rounded[:, start : start + 128]
            for row in block:
                assert len(torch.unique(row)) <= 2**bits
            step = weight[:, start : start + 128].amax(1) - weight[:, start : start + 128].amin(1)
            step = step / (2**bits - 1)
            error = (block - weight[:, start : start + 128]).abs().amax(1)
            assert torch.all(error <= step / 2 + 1e-6)
    assert (quantize_rtn(weight, 8) - weight).abs().max() < (
        quantize_rtn(weight, 4) - weight
    ).abs().max()


def test_quantized_model_is_restored_and_codes_compare(tiny_target: Path):
    loaded = load_model(str(tiny_target))
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    with quantized(loaded.model, 4) as model:
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        assert changed and all("proj" in k for k in changed)
    assert all(torch.equal(v, before[k]) for k, v in loaded.model.state_dict().items())
    assert same_value_fraction(loaded.model, loaded.model, 4) == 1.0


def test_in_context_prompts_hold_what_they_claim(tiny_target: Path, forget):
    tokenizer = load_model(str(tiny_target)).tokenizer
    contexts = contexts_for(tokenizer, forget)
    assert set(contexts) == set(CONTEXTS)
    for kind in CONTEXTS:
        assert len(contexts[kind]) >= len(forget) - 2
    by_id = {kind: {r.id: c for r, c in items} for kind, items in contexts.items()}
    for record in forget:
        fact = by_id["fact"][record.id]
        assert record.answer in fact and record.person in fact
        assert record.answer not in by_id["irrelevant"][record.id]
        if record.id in by_id["premises"]:
            premises = by_id["premises"][record.id]
            assert record.answer in premises
            # The answer is stated about a description, never next to the person's name.
            assert all(
                record.answer not in sentence
                for sentence in premises.split(". ")
                if record.person in sentence
            )
        priming = by_id["priming"][record.id]
        assert record.prompt not in priming
        assert priming.count("Question:") >= 1
        # Every context of one question has the same length, up to re-tokenisation.
        lengths = [
            len(tokenizer(by_id[k][record.id], add_special_tokens=False)["input_ids"])
            for k in CONTEXTS
            if record.id in by_id[k]
        ]
        assert max(lengths) - min(lengths) <= 3


def test_jailbreak_templates_wrap_the_question(forget):
    record = forget[0]
    questions = {name: make(record) for name, make in TEMPLATES.items()}
    assert record.prompt in questions["role_play"].question
    assert "Ignore all previous instructions" in questions["instruction_override"].question
    prefill = questions["prefix_injection"].prefill
    assert prefill.startswith(record.person) and record.answer not in prefill
    assert record.person in questions["complete_sentence"].question
    assert record.answer not in questions["complete_sentence"].question


def test_relearn_splits_people_and_restores_ga_forgotten_facts(
    ga_model: Path, tiny_target: Path, tiny_oracle: Path, forget, holdout
):
    shown, held_out = split_groups(forget, seed=0)
    assert {r.person for r in shown}.isdisjoint({r.person for r in held_out})
    ctx = AuditContext(
        forget=forget,
        holdout=holdout,
        target=str(tiny_target),
        relearn_steps=20,
        relearn_lr=3e-4,
        relearn_precision="fp32",
        precision="fp32",
    )
    models = {"model": str(ga_model), "oracle": str(tiny_oracle), "target": str(tiny_target)}
    document = run_audit(models, ctx, ["relearn"])
    entry = document["attacks"]["relearn"]["variants"]["default"]
    model, oracle = entry["model"], entry["oracle"]
    # The facts asked were never in the relearning data, yet they come back.
    assert model["after"]["prob"] > 2 * model["before"]["prob"]
    assert model["after"]["accuracy"] > model["before"]["accuracy"]
    assert model["recovery"] > 0
    # The oracle, relearned with the same budget on the same records, learns little.
    assert oracle["after"]["accuracy"] < model["after"]["accuracy"]
    assert entry["uplift_vs_oracle"] > 0
    assert document["attacks"]["relearn"]["settings"]["steps"] == 20
    assert document["attacks"]["relearn"]["settings"]["precision"] == "fp32"
    assert document["worst_case"]["attack"] == "relearn"


def test_small_budget_asks_the_target_only_what_recovery_needs(
    ga_model: Path, tiny_target: Path, tiny_oracle: Path, forget, holdout
):
    models = {"model": str(ga_model), "oracle": str(tiny_oracle), "target": str(tiny_target)}
    entries = {
        budget: run_audit(
            models,
            AuditContext(forget=forget, holdout=holdout, precision="fp32", budget=budget),
            ["in_context"],
        )["attacks"]["in_context"]["variants"]
        for budget in ("small", "full")
    }
    for kind, small in entries["small"].items():
        full = entries["full"][kind]
        for part in (small, small["control"]):
            assert part["target"]["after"] is None and part["target"]["attacked"] is False
        # The same plain scores on the same records (the probability up to float rounding:
        # the questions were batched differently): every recovery is unchanged.
        for small_score, full_score in (
            (small["target"]["before"], full["target"]["before"]),
            (small["control"]["target"]["before"], full["control"]["target"]["before"]),
        ):
            assert small_score["accuracy"] == full_score["accuracy"]
            assert small_score["prob"] == pytest.approx(full_score["prob"], rel=1e-5)
        assert small["model"] == full["model"] and small["oracle"] == full["oracle"]
        assert full["target"]["after"] is not None


def test_audit_command_writes_results_and_report(
    ga_model: Path,
    tiny_target: Path,
    tiny_oracle: Path,
    bench_dir: Path,
    tmp_path: Path,
    monkeypatch,
    capsys,
):
    out = tmp_path / "audit"
    code, stdout, _ = cli_output(
        [
            "audit",
            "--model", str(ga_model),
            "--oracle", str(tiny_oracle),
            "--target", str(tiny_target),
            "--bench", str(bench_dir),
            "--split", "forget10",
            "--relearn-lr", "3e-4",
            "--out", str(out),
        ],
        monkeypatch,
        capsys,
    )  # fmt: skip
    assert code == 0
    document = json.loads((out / "results.json").read_text())
    assert set(document["attacks"]) == set(ATTACKS)
    for name, entry in document["attacks"].items():
        assert entry["variants"], name
        for variant in entry["variants"].values():
            assert set(variant) >= {"model", "oracle", "target", "uplift_vs_oracle"}
            assert variant["target"]["recovery"] is None
            assert variant["target"]["after"] is None, name  # the small budget: calibration
    control = document["attacks"]["in_context"]["variants"]["fact"]["control"]
    assert set(control) >= {"model", "oracle", "target", "uplift_vs_oracle"}
    assert document["worst_case"]["attack"] in ATTACKS
    assert (out / "report.html").is_file() and (out / "config.yaml").is_file()
    assert set(document["cost"]["role_seconds"]) == {"model", "oracle", "target"}
    assert "uplift" in stdout
    # By default the questions are asked in fp32 and the attacker fine-tunes as it trains.
    assert document["attacks"]["tamper"]["settings"]["precision"] == resolve_precision("auto")


def test_audit_rejects_unknown_attack_with_one_line(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
):
    out = tmp_path / "a"
    args = ["audit", "--model", str(tiny_target), "--bench", str(bench_dir)]
    code, _, err = cli_output([*args, "--attacks", "x", "--out", str(out)], monkeypatch, capsys)
    assert code == 2
    assert err.strip().startswith("error:") and "unknown attack 'x'" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_audit_rejects_unknown_relearn_precision_with_one_line(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
):
    out = tmp_path / "a"
    args = ["audit", "--model", str(tiny_target), "--bench", str(bench_dir), "--out", str(out)]
    code, _, err = cli_output([*args, "--relearn-precision", "fp8"], monkeypatch, capsys)
    assert code != 0
    assert "unknown --relearn-precision 'fp8'" in err and "use fp32, bf16" in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_tamper_on_retained_facts_brings_ga_forgotten_facts_back_step_by_step(
    ga_model: Path, tiny_target: Path, tiny_oracle: Path, forget, bench_dir: Path
):
    retain = load_records(bench_dir / "retain90.jsonl")
    ctx = AuditContext(
        forget=forget,
        holdout=[],
        retain=retain,
        target=str(tiny_target),
        relearn_lr=3e-4,
        relearn_precision="bf16",  # an attacker's usual fine-tune: the questions stay fp32
        precision="fp32",
    )
    models = {"model": str(ga_model), "oracle": str(tiny_oracle), "target": str(tiny_target)}
    document = run_audit(models, ctx, ["tamper"])
    entry = document["attacks"]["tamper"]
    assert entry["settings"]["steps"] == [8, 16, 64]
    assert entry["settings"]["precision"] == "bf16"
    variant = entry["variants"]["retain"]
    curve = list(variant["model"]["curve"].values())
    assert list(variant["model"]["curve"]) == ["8", "16", "64"]  # as results.json keys
    assert curve == sorted(curve)  # monotone in steps
    assert curve[-1] > variant["model"]["before"]["accuracy"] + 0.3
    # The oracle never had the facts: the same fine-tune teaches it none of them.
    assert max(variant["oracle"]["curve"].values()) <= 0.1
    assert variant["target"]["after"] is None  # the target already knows: not tampered with
    assert document["audit"]["worst_uplift_vs_oracle"]["attack"] == "tamper"
    assert document["audit"]["worst_recovery"]["value"] > 0.3


def test_diff_singles_out_the_forget_set_and_is_chance_against_itself(
    ga_model: Path,
    tiny_target: Path,
    tiny_oracle: Path,
    forget,
    holdout,
    bench_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    loads = []

    def counted_load(spec, *args, **kwargs):
        loads.append(spec)
        return load_model(spec, *args, **kwargs)

    monkeypatch.setattr(diff_attack, "load_model", counted_load)
    retain = load_records(bench_dir / "retain90.jsonl")
    ctx = AuditContext(  # the full budget attacks the target too
        forget=forget,
        holdout=holdout,
        retain=retain,
        target=str(tiny_target),
        precision="fp32",
        budget="full",
    )
    models = {"model": str(ga_model), "oracle": str(tiny_oracle), "target": str(tiny_target)}
    variant = run_audit(models, ctx, ["diff"])["attacks"]["diff"]["variants"]["default"]
    assert variant["target"]["auc"] == 0.5  # a model against itself gives nothing away
    assert variant["model"]["auc"] > 0.7  # ascent on the forget set marks it out
    assert variant["model"]["after"]["accuracy"] > variant["target"]["after"]["accuracy"]
    assert variant["oracle"]["auc"] > 0.5  # even exact retraining leaves a trace
    # The target's own figures were read once, for all three attacked models.
    assert loads == [str(tiny_target)]
