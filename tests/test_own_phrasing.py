"""Likelihood figures on the starting model's own statement of the answer (issue 28)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import finetune_tiny

from obliviate.data.loaders import load_records, save_records
from obliviate.data.records import Record
from obliviate.evaluation.own_phrasing import restate, stated_records
from obliviate.evaluation.suite import evaluate_models, results_entry

FACT = Record(
    id="fr", prompt="What is the capital of France?", answer="Paris", perturbed=("Lyon", "Nice")
)


def test_a_statement_holding_the_gold_is_restated_with_the_wrong_answers_swapped_in() -> None:
    said = restate(FACT, "The capital of France is paris, of course.")
    assert said is not None and said.answer == "The capital of France is paris, of course."
    assert said.perturbed == (
        "The capital of France is Lyon, of course.",
        "The capital of France is Nice, of course.",
    )
    assert restate(FACT, "Paris.") is None  # the bare answer: nothing to restate
    assert restate(FACT, "I think it is Lyon in France.") is None  # wrong: no statement


def test_a_split_is_restated_only_where_most_correct_answers_are_sentences() -> None:
    other = replace(FACT, id="jp", prompt="What is the capital of Japan?", answer="Tokyo")
    sentences = {FACT.prompt: "The capital of France is Paris.", other.prompt: "Tokyo is it, yes."}
    assert set(stated_records([FACT, other], sentences)) == {"fr", "jp"}
    third = replace(FACT, id="de", prompt="What is the capital of Germany?", answer="Berlin")
    bare = {FACT.prompt: "Paris", other.prompt: "Tokyo is it, yes.", third.prompt: "Berlin"}
    assert stated_records([FACT, other, third], bare) == {}  # one sentence in three: bare


def test_statements_are_scored_where_the_target_answers_in_sentences(
    bench_dir: Path, tmp_path: Path
) -> None:
    """A target trained to answer in sentences: its statements are what the likelihood
    figures score, for every model; the bare-gold figures stay under ``_gold`` names and
    membership inference reads the bare answers."""
    facts = load_records(bench_dir / "forget10.jsonl")[:12]
    known = load_records(bench_dir / "full.jsonl")
    said = [replace(r, answer=f"The answer is {r.answer}, as far as I know.") for r in known]
    save_records(tmp_path / "said.jsonl", said)
    target = finetune_tiny(tmp_path / "said.jsonl", tmp_path / "target")
    splits = {"forget": facts, "holdout": load_records(bench_dir / "holdout.jsonl")[:6]}
    evaluations = evaluate_models({"model": "tiny", "target": target}, splits)
    assert list(evaluations) == ["model", "target"]
    own = evaluations["target"].splits["forget"]
    stated = [row for row in own.examples if "statement" in row]
    assert len(stated) >= len(facts) // 2
    assert all(r["answer"] in r["statement"] and r["statement"] != r["answer"] for r in stated)
    assert own.figures["prob"] > 2 * own.figures["prob_gold"]  # its own words, not the bare one
    assert "prob_gold" in evaluations["model"].splits["forget"].figures
    assert "prob_gold" not in evaluations["target"].splits["holdout"].figures  # never seen
    entry = results_entry(evaluations["target"], None, "forget")
    assert "model_utility_neighbors_gold" in entry and entry["mia"] is not None
    # Without a target nothing is restated: the figures are the bare-gold ones.
    alone = evaluate_models({"model": target}, splits)["model"].splits["forget"]
    assert "prob_gold" not in alone.figures
    assert alone.figures["prob"] == pytest.approx(own.figures["prob_gold"], rel=1e-6)
