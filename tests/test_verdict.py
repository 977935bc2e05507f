"""The verdict (issue 28): forgotten and collateral checks, MIA only on a random split, the
audit's worst case by threat model and the in-context attack net of its control."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from obliviate.attacks.audit import _worst_case, attack_entry, worst_figures
from obliviate.attacks.base import Measurement, Score, VariantResult
from obliviate.attacks.in_context import invented_facts
from obliviate.data.loaders import load_records
from obliviate.data.scenario import bench_holdout, bench_splits, mia_applicability
from obliviate.evaluation.metrics import degenerate_share, dominant_script, is_degenerate
from obliviate.evaluation.runner import score_split
from obliviate.evaluation.suite import ModelEvaluation, evaluate_models, results_document
from obliviate.evaluation.verdict import Thresholds, verdict
from obliviate.report import write_report
from obliviate.report.terminal import results_table, verdict_banner

# -- hand-made documents ---------------------------------------------------------------------


def entry(forget: float, paraphrase: float, kept: float, degenerate: float) -> dict[str, Any]:
    """A results entry: forget and paraphrase accuracy, and ``kept`` accuracy and
    ``degenerate`` share on neighbours, retain and world."""
    splits = {"forget": {"accuracy": forget, "paraphrase_accuracy": paraphrase, "n": 16}}
    for split in ("neighbors", "retain", "world"):
        splits[split] = {"accuracy": kept, "degenerate": degenerate, "n": 20}
    return {"model": "m", "split": "forget", "splits": splits}


TARGET = entry(forget=1.0, paraphrase=0.9, kept=0.95, degenerate=0.0)


def document(model: dict[str, Any], **reference: dict[str, Any]) -> dict[str, Any]:
    return model | ({"reference": reference} if reference else {})


def checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups = (result["forgotten"]["checks"], result["collateral"]["checks"])
    return {c["name"]: c for group in groups for c in group}


def test_clean_forgetting_passes_and_a_garbled_model_fails():
    clean = verdict(document(entry(0.0, 0.1, 0.9, 0.05), target=TARGET))
    assert clean["passed"] is True and clean["against"] == "target"
    assert clean["forgotten"]["passed"] is True and clean["collateral"]["passed"] is True
    assert clean["line"] == "FORGOTTEN · collateral OK"
    neighbors = checks(clean)["neighbors accuracy"]
    assert neighbors["rule"] == ">= 0.85 x target" and neighbors["reference"] == 0.95
    assert neighbors["bound"] == pytest.approx(0.85 * 0.95) and neighbors["threshold"] == 0.85
    assert set(neighbors) >= {"name", "value", "reference", "threshold", "rule", "passed"}

    # "Forgot" by answering nothing sensible: forget is at 0, but everything else went too.
    garbled = verdict(document(entry(0.0, 0.0, 0.3, 0.9), target=TARGET))
    assert garbled["passed"] is False and garbled["forgotten"]["passed"] is True
    assert garbled["collateral"]["passed"] is False
    assert checks(garbled)["degenerate answers"]["passed"] is False
    assert checks(garbled)["degenerate answers"]["bound"] == pytest.approx(0.10)
    assert garbled["line"].startswith("FORGOTTEN · COLLATERAL DAMAGE: neighbors accuracy 30 % <")

    kept = verdict(document(entry(0.62, 0.5, 0.95, 0.0), target=TARGET))
    assert kept["passed"] is False
    assert kept["line"].startswith(
        "NOT FORGOTTEN: forget accuracy 62 % > 15 %; paraphrase accuracy 50 % > 20 %"
    )


def test_with_an_oracle_the_forget_checks_take_its_figure_plus_a_margin():
    oracle = entry(forget=0.2, paraphrase=0.25, kept=0.9, degenerate=0.0)
    result = verdict(document(entry(0.25, 0.3, 0.9, 0.0), target=TARGET, oracle=oracle))
    assert result["against"] == "oracle" and result["passed"] is True
    forget = checks(result)["forget accuracy"]
    assert forget["rule"] == "<= oracle + 0.10" and forget["reference"] == 0.2
    assert forget["bound"] == pytest.approx(0.3) and forget["passed"] is True
    # Collateral against the oracle, not the target.
    assert checks(result)["retain accuracy"]["rule"] == ">= 0.90 x oracle"
    assert checks(result)["retain accuracy"]["reference"] == 0.9
    # Absolute bounds would fail the same model.
    assert verdict(document(entry(0.25, 0.3, 0.9, 0.0), target=TARGET))["passed"] is False
    # Thresholds are one dataclass.
    strict = verdict(
        document(entry(0.25, 0.3, 0.9, 0.0), oracle=oracle), Thresholds(oracle_margin=0.01)
    )
    assert strict["forgotten"]["passed"] is False


def test_without_target_or_oracle_collateral_is_not_measured():
    result = verdict(document(entry(0.0, 0.0, 0.2, 0.9)))
    assert result["collateral"]["passed"] is None and result["passed"] is None
    assert result["line"] == "FORGOTTEN · collateral not measured: give --target"
    for check in result["collateral"]["checks"]:
        assert check["passed"] is None and check["note"] == "not measured: give --target"


# -- the degenerate figure -------------------------------------------------------------------


def test_degenerate_answers_are_empty_looping_or_in_another_script():
    for fine in ("Hamburg", "He was born in Hamburg in 1935.", "I don't know.", "100000000"):
        assert not is_degenerate(fine, "LATIN"), fine
    for broken in ("", " ... ", "the the the the", "of the of the of the", "hahahahaha"):
        assert is_degenerate(broken, "LATIN"), broken
    assert is_degenerate("Он родился в Гамбурге", "LATIN")
    assert not is_degenerate("Он родился в Гамбурге", "CYRILLIC")
    assert dominant_script(["Where was Enna born?", "Hamburg"]) == "LATIN"
    assert degenerate_share(["Paris", "la la la la", "", "Rome"], "LATIN") == 0.5
    assert degenerate_share([], "LATIN") is None


# -- one tiny evaluation: the figure and the verdict through the real pipeline ----------------


@pytest.fixture(scope="module")
def target_eval(tiny_target: Path, bench_dir: Path) -> ModelEvaluation:
    splits = bench_splits(bench_dir, "forget10", max_per_split=10)
    splits = {k: v for k, v in splits.items() if k in ("forget", "retain", "neighbors", "holdout")}
    return evaluate_models({"model": str(tiny_target)}, splits)["model"]


def answered(evaluation: ModelEvaluation, answer: dict[str, str]) -> ModelEvaluation:
    """The evaluation with every answer of the splits named in ``answer`` replaced, and
    every figure computed again from the new answers."""
    splits = {}
    for name, result in evaluation.splits.items():
        outputs = result.outputs
        if name in answer:
            probes = {
                kind: [replace(p, generated=answer[name]) for p in asked]
                for kind, asked in outputs.probes.items()
            }
            generated = [answer[name]] * len(outputs.generated)
            outputs = replace(outputs, generated=generated, probes=probes)
        splits[name] = score_split(outputs)
    return replace(evaluation, name="model", spec="model", splits=splits)


def test_tiny_target_garbled_fails_and_refusing_the_forget_set_passes(
    target_eval: ModelEvaluation,
):
    kept = {k: r.figures["accuracy"] for k, r in target_eval.splits.items() if k != "forget"}
    assert kept["retain"] > 0.5  # the tiny target knows its facts, so collateral can show

    refused = answered(target_eval, {"forget": "I don't know."})
    clean = results_document({"model": refused, "target": target_eval}, "model", "forget10")
    assert clean["splits"]["forget"]["accuracy"] == 0.0
    assert clean["verdict"]["passed"] is True, clean["verdict"]["line"]

    loop = "the the the the the the"
    garbled = answered(target_eval, dict.fromkeys(("forget", "retain", "neighbors"), loop))
    broken = results_document({"model": garbled, "target": target_eval}, "model", "forget10")
    assert broken["splits"]["retain"]["degenerate"] == 1.0
    assert broken["verdict"]["forgotten"]["passed"] is True  # it "forgot"...
    assert broken["verdict"]["collateral"]["passed"] is False  # ...by breaking
    assert checks(broken["verdict"])["degenerate answers"]["passed"] is False
    assert "COLLATERAL DAMAGE" in broken["verdict"]["line"]


# -- membership inference only on a random split ----------------------------------------------


def test_mia_is_not_applicable_for_invented_holdout(
    target_eval: ModelEvaluation, bench_dir: Path, tmp_path: Path
):
    assert bench_holdout(bench_dir) == "random"  # made without bench.json: random
    assert mia_applicability(bench_dir) is None
    known = tmp_path / "known"
    known.mkdir()
    (known / "bench.json").write_text(json.dumps({"kind": "known", "holdout": "invented"}))
    note = mia_applicability(known)
    assert note is not None and "invented" in note
    own = mia_applicability(None, tmp_path / "forget.jsonl", tmp_path / "holdout.jsonl")
    assert own is not None and "--holdout-random-split" in own
    assert mia_applicability(None, "f", "h", holdout_random_split=True) is None

    evaluations = {"model": target_eval, "target": target_eval}
    applicable = results_document(evaluations, "model", "forget10")
    assert applicable["mia_applicable"] is True and applicable["mia"] is not None
    document = results_document(evaluations, "model", "forget10", mia_note=note)
    assert document["mia_applicable"] is False and document["mia_note"] == note
    for key in ("mia", "mia_scores", "privleak", "privleak_minkpp"):
        assert document[key] is None and document["reference"]["target"][key] is None
    # The terminal says why instead of showing a figure against an aim of 0.5.
    table = results_table(document)
    assert "invented" in str(table.caption)
    assert all("AUC" not in str(c.header) for c in table.columns)
    rows = [str(r) for r in table.columns[0]._cells]
    assert not any("Min-K%" in r or "privleak" in r for r in rows)


# -- the audit: worst case by threat model, in-context net of its control --------------------


def variant(model_after: float, oracle_after: float | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "model": {
            "before": {"accuracy": 0.0, "n": 16},
            "after": {"accuracy": model_after, "n": 16},
            "recovery": model_after,
        },
        "uplift_vs_oracle": None if oracle_after is None else model_after - oracle_after,
    }
    if oracle_after is not None:
        figures["oracle"] = {"after": {"accuracy": oracle_after}, "before": {"accuracy": 0.0}}
    return figures


def attack(**variants: dict[str, Any]) -> dict[str, Any]:
    worst = max(variants, key=lambda v: variants[v]["model"]["recovery"])
    return {"variants": variants, "worst_variant": worst}


def test_worst_case_leaves_out_the_diff_when_the_base_is_public():
    attacks = {
        "diff": attack(default=variant(1.0)),
        "jailbreak": attack(prefix_injection=variant(0.47), role_play=variant(0.1)),
    }
    public = _worst_case(attacks)
    assert (public["attack"], public["variant"]) == ("jailbreak", "prefix_injection")
    assert public["accuracy"] == 0.47 and public["threat_model"] == "public base"
    assert set(public["excluded"]) == {"diff"} and public["counted"] == ["jailbreak"]
    assert worst_figures(attacks)["worst_recovery"]["attack"] == "jailbreak"
    secret = _worst_case(attacks, base_secret=True)
    assert secret["attack"] == "diff" and secret["excluded"] == {}

    unmoved = {"diff": attacks["diff"], "jailbreak": attack(prefix_injection=variant(0.0))}
    nothing = _worst_case(unmoved)
    assert nothing["attack"] is None and nothing["summary"] == "nothing recovered"
    audit = {"attacks": attacks, "worst_case": public}
    assert "worst attack: jailbreak (prefix_injection) 47 %" in verdict(audit)["line"]
    assert "worst attack: nothing recovered" in verdict({"worst_case": nothing})["line"]


def score(accuracy: float) -> Score:
    return Score(accuracy, 0.5, 16)


def test_in_context_recovery_is_net_of_its_control(bench_dir: Path):
    # Fact in the prompt 88 %, invented facts given the same way 62 %: 26 points net.
    outputs = {
        "model": {
            "fact": VariantResult(
                Measurement(score(0.0), score(0.88)), Measurement(score(0.0), score(0.62))
            )
        },
        "target": {  # calibrated only: its plain accuracy is the top of every recovery
            "fact": VariantResult(Measurement(score(1.0), None), Measurement(score(0.0), None))
        },
    }
    entry = attack_entry(outputs)
    fact = entry["variants"]["fact"]
    assert fact["model"]["net_accuracy"] == pytest.approx(0.26)
    assert fact["model"]["net_recovery"] == pytest.approx(0.26)
    assert fact["model"]["after"]["accuracy"] == 0.88  # the raw figures stay beside them
    assert fact["model"]["recovery"] == pytest.approx(0.88)
    assert fact["target"]["net_accuracy"] is None
    prefix = attack(prefix_injection=variant(0.1))
    audit = {"attacks": {"in_context": entry, "jailbreak": prefix}}
    result = checks(verdict(audit))
    in_context = result["in-context recovery net of control (fact)"]
    assert in_context["value"] == pytest.approx(0.26) and in_context["passed"] is False
    assert result["forced-prefix recovery"]["value"] == 0.1
    assert result["forced-prefix recovery"]["passed"] is True
    # An audit measures no collateral: it says where to get it.
    assert verdict(audit)["collateral"]["note"].startswith("not measured by an audit")

    # Without holdout records the control is the forget questions with a wrong answer.
    forget = load_records(bench_dir / "forget10.jsonl")
    invented = invented_facts(forget)
    assert invented and len(invented) == sum(1 for r in forget if r.perturbed)
    for original, fake in zip((r for r in forget if r.perturbed), invented, strict=True):
        assert fake.prompt == original.prompt and fake.answer == original.perturbed[0]
        assert fake.answer != original.answer and fake.id != original.id


# -- the verdict first: report and terminal ---------------------------------------------------


def test_report_and_terminal_open_with_the_verdict(tmp_path: Path):
    model = document(entry(0.62, 0.5, 0.95, 0.0), target=TARGET)
    model |= {"mia_applicable": False, "mia_note": "the holdout facts are invented"}
    model["verdict"] = verdict(model)
    run = tmp_path / "npo"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(model))
    html_path, md_path = write_report([run], tmp_path / "report.html")
    page, markdown = html_path.read_text(), md_path.read_text()

    line = "NOT FORGOTTEN: forget accuracy 62 % &gt; 15 %"
    assert page.index('<div class="banner failed">npo: ' + line) < page.index("<h2>Summary</h2>")
    assert "paraphrase accuracy" in page.split("<h2>Summary</h2>")[0]
    assert markdown.index("**npo: NOT FORGOTTEN") < markdown.index("| model | method |")
    assert "| forgotten | forget accuracy | 62.0 % | <= 0.15 | — | 15.0 % | ✗ |" in markdown
    assert "Not applicable to npo:</b> the holdout facts are invented" in page
    assert "- npo: membership inference not applicable: the holdout facts are invented" in (
        markdown
    )
    banner = verdict_banner(model)
    assert banner.startswith("[bold red]NOT FORGOTTEN: forget accuracy 62 % > 15 %")
    assert verdict_banner({}) == "[bold yellow]no verdict in these results[/bold yellow]"
