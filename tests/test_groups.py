"""Records group by person, topic or any ``group`` field; attacks that split or chain facts
work on groups; general questions that overlap the forget set are dropped and counted; the
user's own neighbours and world questions; a known benchmark's ``forget``/``retain`` split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from obliviate.attacks.base import NotApplicable, group_records, split_groups
from obliviate.attacks.clues import gold_chains
from obliviate.attacks.in_context import contexts_for
from obliviate.data.loaders import load_records, save_records
from obliviate.data.records import Record
from obliviate.data.scenario import (
    evaluation_splits,
    resolve_split,
    retain_split_for,
    scenario_files,
)
from obliviate.data.validation import held_out_part
from obliviate.data.world_facts import world_records
from obliviate.errors import ObliviateError
from obliviate.evaluation.overlap import OVERLAP_THRESHOLD, drop_overlap, select_overlap
from obliviate.models.tiny import tiny_tokenizer
from obliviate.options import SPLIT

#: Facts of three topics and no person, interleaved as a user's file may hold them.
TOPICS = {
    "France": [
        ("What is the capital of France?", "Paris"),
        ("What currency does France use?", "Euro"),
        ("Which mountains separate France from Spain?", "Pyrenees"),
        ("What is the national day of France?", "14 July"),
    ],
    "Mars": [
        ("What is the tallest volcano on Mars?", "Olympus Mons"),
        ("How many moons does Mars have?", "two"),
        ("What gives Mars its red colour?", "iron oxide"),
        ("Which planet lies beyond Mars?", "Jupiter"),
    ],
    "Hamlet": [
        ("Who wrote Hamlet?", "Shakespeare"),
        ("In which country is Hamlet set?", "Denmark"),
        ("Who is Hamlet's mother?", "Gertrude"),
        ("Whose skull does Hamlet hold?", "Yorick"),
    ],
}


def topic_facts(topics: dict[str, list[tuple[str, str]]] = TOPICS) -> list[Record]:
    rows = [
        (k, Record(id=f"{topic}-{k}", prompt=q, answer=a, meta={"topic": topic}))
        for topic, facts in topics.items()
        for k, (q, a) in enumerate(facts)
    ]
    return [record for _, record in sorted(rows, key=lambda row: row[0])]


# -- groups ----------------------------------------------------------------------------------


def test_group_is_the_group_field_then_the_topic_then_the_person() -> None:
    meta = {"group": "g", "topic": "t", "person": "p"}
    assert Record(id="a", prompt="Q?", answer="A", meta=meta).group == "g"
    assert Record(id="a", prompt="Q?", answer="A", meta={"topic": "t", "person": "p"}).group == "t"
    assert Record(id="a", prompt="Q?", answer="A", meta={"person": "p"}).group == "p"
    assert Record(id="a", prompt="Q?", answer="A").group is None


def test_relearn_never_splits_a_topic_across_halves_unless_there_is_one() -> None:
    records = topic_facts()
    assert list(group_records(records)) == ["France", "Mars", "Hamlet"]
    for seed in range(6):
        shown, held_out = split_groups(records, seed)
        assert shown and held_out and len(shown) + len(held_out) == len(records)
        assert {r.group for r in shown}.isdisjoint({r.group for r in held_out})
    # One topic (a request to forget what a model knows about Mars): split fact by fact.
    mars = [r for r in records if r.group == "Mars"]
    shown, held_out = split_groups(mars, 0)
    assert shown and held_out
    assert sorted(r.id for r in shown + held_out) == sorted(r.id for r in mars)
    with pytest.raises(NotApplicable, match="too few"):
        split_groups(mars[:1], 0)


def test_tuning_holds_out_whole_topics() -> None:
    tuned, untouched = held_out_part(topic_facts(), 0.5)
    assert {r.group for r in tuned}.isdisjoint({r.group for r in untouched})
    one_topic = [r for r in topic_facts() if r.group == "France"]
    tuned, untouched = held_out_part(one_topic, 0.5)  # one topic: records in turn
    assert len(tuned) == len(untouched) == 2


def test_clues_chain_the_topics_other_facts() -> None:
    records = topic_facts()
    topic_of = {r.prompt: r.group for r in records}
    chains = gold_chains(records)
    assert len(chains) == len(records)
    for record, question in chains:
        assert len(question.history) == 3
        assert {topic_of[asked] for asked, _ in question.history} == {record.group}
        assert all(record.answer not in said for _, said in question.history)


def test_priming_uses_the_topics_other_facts_and_premises_need_a_person() -> None:
    records = topic_facts()
    contexts = contexts_for(tiny_tokenizer(), records)
    assert contexts["premises"] == []  # they name a person; a topic has none
    priming = {r.id: context for r, context in contexts["priming"]}
    assert set(priming) == {r.id for r in records}
    for record in records:
        for other in records:
            shown = f"Question: {other.prompt}\nAnswer: {other.answer}" in priming[record.id]
            assert shown == (other.group == record.group and other is not record)


# -- overlap with the forget set -------------------------------------------------------------


def test_overlap_selection_by_similarity_and_by_name() -> None:
    france = [r for r in topic_facts() if r.group == "France"]
    general = [
        Record(id="w-same", prompt="Which city is France's seat of government?", answer="it"),
        Record(id="w-paris", prompt="In which city is the Eiffel Tower?", answer="Paris"),
        Record(id="w-topic", prompt="Which sea lies south of France?", answer="Mediterranean"),
        Record(id="w-gold", prompt="What is the chemical symbol for gold?", answer="Au"),
        Record(id="w-date", prompt="What is 7 doubled?", answer="14"),  # numbers never match
    ]
    low = OVERLAP_THRESHOLD - 0.2
    similarity = [OVERLAP_THRESHOLD + 0.1, low, low, low, low]
    dropped = select_overlap(general, france, similarity)
    assert [r.id for r in dropped] == ["w-same", "w-paris", "w-topic"]
    # A general answer that a forget question names (the forget set's subject).
    mars = [r for r in topic_facts() if r.group == "Mars"]
    red = Record(id="w-red", prompt="Which planet is known as the Red Planet?", answer="Mars")
    assert select_overlap([red], [Record(id="m", prompt=mars[0].prompt, answer="x")], [0.0])


def test_drop_overlap_by_the_packaged_sentence_embeddings() -> None:
    forget = [
        Record(id="f", prompt="What organ pumps blood through the human body?", answer="heart")
    ]
    general = [
        Record(id="w-heart", prompt="Which organ circulates blood in the body?", answer="heart"),
        Record(id="w-hexagon", prompt="How many sides does a hexagon have?", answer="six"),
    ]
    kept, dropped = drop_overlap(general, forget)
    assert [r.id for r in kept] == ["w-hexagon"] and [r.id for r in dropped] == ["w-heart"]
    # The built-in world questions about a forgotten France: its capital, its capital's tower
    # and river; the other 57 stay.
    kept, dropped = drop_overlap(world_records(), [r for r in topic_facts() if r.group == "France"])
    assert [r.prompt for r in dropped] == [
        "What is the capital of France?",
        "In which city is the Eiffel Tower?",
        "Which river flows through Paris?",
    ]
    assert len(kept) == len(world_records()) - 3


# -- the user's neighbours and world questions ------------------------------------------------


@pytest.fixture(scope="module")
def own_general(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A world file with one question about a forget10 fact (a paraphrase of the first) and
    two unrelated ones, and a neighbours file of two retained facts."""
    out = tmp_path_factory.mktemp("own")
    first = load_records(bench_dir / "forget10.jsonl")[0]
    world = [
        Record(id="about-forget", prompt=first.paraphrases[0], answer=first.answer),
        Record(id="gold", prompt="What is the chemical symbol for gold?", answer="Au"),
        Record(
            id="ocean", prompt="Which ocean lies between Europe and America?", answer="Atlantic"
        ),
    ]
    save_records(out / "world.jsonl", world)
    save_records(out / "neighbors.jsonl", load_records(bench_dir / "retain90.jsonl")[:2])
    return {"world": out / "world.jsonl", "neighbors": out / "neighbors.jsonl"}


def test_eval_takes_neighbors_and_world_and_drops_the_overlap(
    tiny_target: Path, bench_dir: Path, own_general: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "run"
    args = ["eval", "--model", str(tiny_target), "--bench", str(bench_dir), "--max-per-split", "3"]
    args += ["--neighbors", str(own_general["neighbors"]), "--world", str(own_general["world"])]
    assert run_cli([*args, "--out", str(out)], monkeypatch) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["splits"]["world"]["n"] == 2 and results["splits"]["neighbors"]["n"] == 2
    assert results["overlap"]["world"] == {
        "dropped": 1,
        "ids": ["about-forget"],
        "threshold": OVERLAP_THRESHOLD,
    }
    assert any("overlap the forget set" in line for line in results["warnings"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["overlap"] == results["overlap"]
    assert {"neighbors", "world"} <= set(manifest["inputs"])


def test_audit_takes_world_and_drops_the_overlap(
    tiny_target: Path, bench_dir: Path, own_general: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "audit"
    args = ["audit", "--model", str(tiny_target), "--bench", str(bench_dir), "--max-per-split", "3"]
    args += ["--world", str(own_general["world"]), "--attacks", "in_context", "--no-cache"]
    assert run_cli([*args, "--out", str(out)], monkeypatch) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["overlap"]["world"]["ids"] == ["about-forget"]
    assert json.loads((out / "manifest.json").read_text())["overlap"] == results["overlap"]


def test_a_benchmark_without_world_questions_keeps_the_built_in_ones(
    bench_dir: Path, tmp_path: Path
) -> None:
    for name in ("forget10", "retain90"):
        shutil.copy(bench_dir / f"{name}.jsonl", tmp_path / f"{name}.jsonl")
    splits = evaluation_splits(tmp_path, "forget10")
    assert splits["world"] == world_records()
    mine = tmp_path / "mine.jsonl"
    save_records(mine, world_records()[:2])
    assert [r.id for r in evaluation_splits(tmp_path, "forget10", world=mine)["world"]] == [
        "world-000",
        "world-001",
    ]


# -- a known benchmark's one split -----------------------------------------------------------


def test_a_known_benchmark_is_read_as_forget_and_retain(tmp_path: Path) -> None:
    records = topic_facts()
    forget = [r for r in records if r.group == "France"]
    retain = [r for r in records if r.group != "France"]
    for name, part in (("forget", forget), ("retain", retain), ("full", records)):
        save_records(tmp_path / f"{name}.jsonl", part)
    assert retain_split_for("forget") == "retain"
    with pytest.raises(ObliviateError, match="it has forget"):  # no bench.json: no default
        evaluation_splits(tmp_path, SPLIT.default)
    (tmp_path / "bench.json").write_text(json.dumps({"kind": "known", "split": "forget"}))
    assert resolve_split(tmp_path, SPLIT.default) == "forget"
    assert scenario_files(tmp_path, SPLIT.default) == {
        role: tmp_path / f"{role}.jsonl" for role in ("full", "forget", "retain")
    }
    splits = evaluation_splits(tmp_path, SPLIT.default)
    assert [r.id for r in splits["forget"]] == [r.id for r in forget]
    assert [r.id for r in splits["retain"]] == [r.id for r in retain]
    assert splits["world"] == world_records()
    with pytest.raises(ObliviateError, match="forget05"):  # a split named on purpose stays
        evaluation_splits(tmp_path, "forget05")
