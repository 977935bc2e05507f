"""The ``clues`` attack: conversations about the same person that never state the answer,
asked as one conversation before the forget question."""

from __future__ import annotations

from pathlib import Path

import pytest

from obliviate.attacks.audit import run_audit
from obliviate.attacks.base import (
    Asker,
    AuditContext,
    Question,
    conversation_prompt,
    group_records,
)
from obliviate.attacks.clues import CLUE_TURNS, clue_facts, gold_chains, model_chains
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.evaluation.metrics import answer_matches
from obliviate.models.loader import load_model


@pytest.fixture(scope="module")
def forget(bench_dir: Path) -> list[Record]:
    return load_records(bench_dir / "forget10.jsonl")


@pytest.fixture(scope="module")
def holdout(bench_dir: Path) -> list[Record]:
    return load_records(bench_dir / "holdout.jsonl")


def _fact(attribute: str, answer: str, person: str = "Ana Vell") -> Record:
    return Record(
        id=f"{person}-{attribute}",
        prompt=f"What is the {attribute} of {person}?",
        answer=answer,
        meta={"person": person, "attribute": attribute},
    )


def _states_answer(record: Record, turns: tuple[tuple[str, str], ...]) -> bool:
    return any(answer_matches(record.answer, text) for turn in turns for text in turn)


def test_clues_are_other_facts_of_the_person_related_ones_first(forget):
    people = group_records(forget)
    for record in forget:
        clues = clue_facts(record, people)
        assert 1 <= len(clues) <= CLUE_TURNS
        assert record not in clues and {c.person for c in clues} == {record.person}
        attribute = record.meta["attribute"]
        if attribute == "birthplace":
            assert [c.meta["attribute"] for c in clues[:2]] == ["birth_year", "profession"]
        if attribute == "employer":
            assert [c.meta["attribute"] for c in clues[:2]] == ["profession", "work"]


def test_a_clue_that_states_the_answer_is_never_used():
    records = [
        _fact("birthplace", "Lisbon"),
        _fact("employer", "Lisbon Maritime Press"),
        _fact("birth_year", "1950"),
        _fact("award", "Zennor Medal", person="Bo Lind"),
    ]
    chains = {r.id: q for r, q in gold_chains(records)}
    assert chains["Ana Vell-birthplace"].history == (
        ("What is the birth_year of Ana Vell?", "1950"),
    )
    assert "Bo Lind-award" not in chains  # nobody else's facts are clues


def test_gold_chains_prime_with_gold_answers_never_the_target(forget):
    chains = gold_chains(forget)
    assert len(chains) == len(forget)
    for record, question in chains:
        assert question.question == record.prompt and question.answer == record.answer
        assert 1 <= len(question.history) <= CLUE_TURNS
        assert not _states_answer(record, question.history)


def test_model_chains_are_one_conversation_in_order(tiny_target: Path, forget):
    asker = Asker(load_model(str(tiny_target)))
    chains, dropped = model_chains(asker, forget)
    assert chains and dropped >= 0
    tokenizer = asker.tokenizer
    for record, question in chains:
        assert question.history and not _states_answer(record, question.history)
        prompt = conversation_prompt(tokenizer, question.history, question.question)
        texts = [text for turn in question.history for text in turn] + [question.question]
        start = 0
        for text in texts:  # each turn's question and answer, after the ones before
            assert text in prompt[start:]
            start = prompt.index(text, start) + len(text)
    # Each turn's answer is what the model says after the turns before it.
    full = next(q for _, q in chains if len(q.history) == CLUE_TURNS)
    first, second, third = full.history
    assert asker.answers([Question(third[0], "", history=(first, second))]) == [third[1]]
    assert asker.answers([Question(second[0], "", history=(first,))]) == [second[1]]


def test_clues_audit_on_target_and_oracle(tiny_target: Path, tiny_oracle: Path, forget, holdout):
    ctx = AuditContext(
        forget=forget, holdout=holdout, target=str(tiny_target), precision="fp32", budget="full"
    )
    models = {"model": str(tiny_target), "oracle": str(tiny_oracle), "target": str(tiny_target)}
    entry = run_audit(models, ctx, ["clues"])["attacks"]["clues"]
    assert set(entry["variants"]) == {"chain", "chain_gold"}
    for figures in entry["variants"].values():
        for role in models:
            assert set(figures[role]) >= {"before", "after", "recovery", "turns"}
            assert figures[role]["before"]["n"] == figures[role]["after"]["n"] > 0
            assert 1 <= figures[role]["turns"] <= CLUE_TURNS
    assert entry["variants"]["chain"]["model"]["dropped_turns"] >= 0


def test_clues_skip_records_without_other_facts(tiny_target: Path, holdout):
    lonely = [_fact("award", "Zennor Medal", person=name) for name in ("Bo Lind", "Cy Moor")]
    ctx = AuditContext(forget=lonely, holdout=holdout, precision="fp32")
    assert "skipped" in run_audit({"model": str(tiny_target)}, ctx, ["clues"])["attacks"]["clues"]
