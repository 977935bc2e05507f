"""The ``format`` attack: its questions hold what they claim, and the tiny target, which
knows the forget facts, recognises them among wrong answers where the oracle cannot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from obliviate.attacks.audit import run_audit
from obliviate.attacks.base import AuditContext
from obliviate.attacks.formats import (
    BLANK,
    VARIANTS,
    blanked,
    choice_for,
    letter_correct,
    true_false_pair,
    verdict,
)
from obliviate.data.loaders import load_records
from obliviate.data.records import Record


@pytest.fixture(scope="module")
def forget(bench_dir: Path) -> list[Record]:
    return load_records(bench_dir / "forget10.jsonl")


@pytest.fixture(scope="module")
def holdout(bench_dir: Path) -> list[Record]:
    return load_records(bench_dir / "holdout.jsonl")


def test_options_hold_the_gold_once_and_every_wrong_answer_under_their_letters(forget):
    for record in forget:
        choice = choice_for(record, seed=0)
        assert choice.options.count(record.answer) == 1
        assert set(choice.options) == {record.answer, *record.perturbed}
        assert len(choice.options) == 1 + len(record.perturbed)
        lines = choice.prompt.splitlines()
        assert lines[0] == record.prompt
        assert lines[1 : 1 + len(choice.options)] == [
            f"{letter}. {option}" for letter, option in zip("ABCD", choice.options, strict=True)
        ]
        assert f"{choice.gold_letter}. {record.answer}" in lines
    # The gold is not always in the same place.
    assert len({choice_for(r, seed=0).gold_letter for r in forget}) > 1


def test_shuffle_depends_only_on_seed_and_record_id():
    record = Record(id="x", prompt="Q?", answer="a", perturbed=("b", "c", "d"))
    # Pinned: the same in every process, whatever Python's string hash seed.
    assert choice_for(record, seed=0).options == ("a", "d", "c", "b")
    assert choice_for(record, seed=1).options == ("c", "a", "b", "d")
    assert choice_for(replace(record, prompt="Other?"), seed=0).options == ("a", "d", "c", "b")
    assert choice_for(replace(record, id="y"), seed=0).options == ("a", "d", "b", "c")
    assert choice_for(replace(record, perturbed=()), seed=0) is None


def test_letter_answers_are_read_by_letter_or_by_the_only_option_named():
    record = Record(
        id="w",
        prompt="What is the best-known work of X?",
        answer="The Glass Orchard",
        perturbed=("A Harbour in Winter", "Salt Atlas", "Paper Tide"),
    )
    choice = choice_for(record, seed=2)
    assert choice.options[:2] == ("The Glass Orchard", "A Harbour in Winter")
    assert letter_correct(choice, "A")
    assert letter_correct(choice, "A. The Glass Orchard")
    assert letter_correct(choice, "It is The Glass Orchard.")
    assert not letter_correct(choice, "B")
    assert not letter_correct(choice, "The Glass Orchard or Salt Atlas")
    # The leading "A" of a wrong option's title is no letter, though A is the gold's.
    assert not letter_correct(choice, "A Harbour in Winter")


def test_fill_in_the_blank_never_shows_the_answer(forget):
    for record in forget:
        question = blanked(record)
        assert BLANK in question.question and record.person in question.question
        assert record.answer not in question.question
        assert question.answer == record.answer
    assert blanked(replace(forget[0], meta={})) is None


def test_true_false_states_the_fact_once_right_and_once_wrong(forget):
    for record in forget:
        right, wrong = true_false_pair(record)
        assert (right.answer, wrong.answer) == ("True", "False")
        assert record.answer in right.question
        assert record.perturbed[0] in wrong.question and record.answer not in wrong.question
    assert [verdict(t) for t in ("True.", "yes, it is", " FALSE", "No", "Lisbon", "")] == [
        True,
        True,
        False,
        False,
        None,
        None,
    ]


def test_format_audit_on_target_and_oracle(tiny_target: Path, tiny_oracle: Path, forget, holdout):
    ctx = AuditContext(
        forget=forget, holdout=holdout, target=str(tiny_target), precision="fp32", budget="full"
    )
    models = {"model": str(tiny_target), "oracle": str(tiny_oracle), "target": str(tiny_target)}
    entry = run_audit(models, ctx, ["format"])["attacks"]["format"]
    assert set(entry["variants"]) == set(VARIANTS)
    for figures in entry["variants"].values():
        for role in models:
            assert set(figures[role]) >= {"before", "after", "recovery"}
            assert figures[role]["after"]["n"] == len(forget)
            assert 0.0 <= figures[role]["after"]["prob"] <= 1.0
    likelihood = entry["variants"]["multiple_choice_likelihood"]
    # The target picks the facts it was trained on (1.0 measured); the oracle, which never
    # saw these people, is near chance among four options (0.29 measured).
    assert likelihood["target"]["after"]["accuracy"] > 0.7
    assert likelihood["oracle"]["after"]["accuracy"] < 0.6
    assert likelihood["uplift_vs_oracle"] > 0.3


def test_format_leaves_out_what_the_records_cannot_ask(tiny_target: Path, forget, holdout):
    models = {"model": str(tiny_target)}
    unlisted = [replace(r, perturbed=()) for r in forget]
    ctx = AuditContext(forget=unlisted, holdout=holdout, precision="fp32")
    assert set(run_audit(models, ctx, ["format"])["attacks"]["format"]["variants"]) == {
        "fill_in_blank"
    }
    bare = [replace(r, meta={}) for r in unlisted]
    ctx = AuditContext(forget=bare, holdout=holdout, precision="fp32")
    assert "skipped" in run_audit(models, ctx, ["format"])["attacks"]["format"]
