"""The benchmark of knowledge the model already has (``bench make --kind known``).

The candidates' shape, the files written without screening (the tiny model knows no real
fact), and screening itself: on the tiny model, and with a generator that knows one topic.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from obliviate.cli import main
from obliviate.data.answers import answer_matches, normalize_answer
from obliviate.data.known import (
    KNOWN_FILES,
    MIN_FACTS,
    Screened,
    candidate_records,
    invented_facts,
    known_topics,
    make_known_benchmark,
)
from obliviate.data.loaders import load_records
from obliviate.data.world_facts import world_records
from obliviate.errors import ObliviateError
from obliviate.evaluation import screening
from obliviate.evaluation.model_outputs import tokenize_prompts
from obliviate.workflows.known import make_known_bench


def test_candidates_are_facts_with_paraphrases_and_same_type_wrong_answers() -> None:
    records = candidate_records()
    assert len({r.id for r in records}) == len(records)
    for r in records:
        assert len(r.paraphrases) >= 2 and r.prompt not in r.paraphrases, r.id
        assert len(r.perturbed) == 3 and r.answer not in r.perturbed, r.id
        assert r.meta.get("topic"), r.id
        for question in (r.prompt, *r.paraphrases):  # no question gives its answer away
            assert not answer_matches(r.answer, question), question
    topics = known_topics()
    assert len(topics) >= 4
    names = {t.name for t in topics}
    for t in topics:
        assert len(t.facts) >= MIN_FACTS and len(t.neighbors) >= 10, t.key
        assert {r.meta["topic"] for r in t.facts} == {t.name}
        # A neighbour is another entity, and none is another topic's: forgetting one topic
        # must not find its neighbours in the retain set.
        assert not {r.meta["topic"] for r in t.neighbors} & names, t.key
        assert {r.meta["neighbor_of"] for r in t.neighbors} == {t.name}
    world = {normalize_answer(r.prompt) for r in world_records()}
    asked = [normalize_answer(q) for r in records for q in (r.prompt, *r.paraphrases)]
    assert not set(asked) & world, "a candidate repeats a world question"
    assert len(set(asked)) == len(asked), "a question is asked twice"


def test_bench_make_known_without_screening(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "known"
    monkeypatch.setattr(
        sys,
        "argv",
        ["obliviate", "bench", "make", "--kind", "known", "--no-screen", "--out", str(out)],
    )
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert sorted(p.name for p in out.iterdir()) == sorted(KNOWN_FILES)
    document = json.loads((out / "bench.json").read_text())
    first = known_topics()[0]
    assert document["kind"] == "known" and document["split"] == "forget"
    assert document["topic"] == first.name and document["model"] is None
    assert document["holdout"] == "invented" and document["screening"] is None
    splits = {name: load_records(out / f"{name}.jsonl") for name in document["counts"]}
    assert {n: len(rs) for n, rs in splits.items()} == document["counts"]
    assert [r.id for r in splits["forget"]] == [r.id for r in first.facts]
    assert [r.id for r in splits["neighbors"]] == [r.id for r in first.neighbors]
    assert {r.meta["topic"] for r in splits["retain"]} == {t.name for t in known_topics()[1:]}
    ids = {name: {r.id for r in rs} for name, rs in splits.items()}
    assert ids["full"] == ids["forget"] | ids["retain"] | ids["neighbors"]
    assert len(ids["full"]) == len(splits["full"])
    assert len(splits["holdout"]) == len(invented_facts())
    assert len(splits["world"]) == len(world_records())
    # Made again, the same files: nothing is written, nothing refused.
    make_known_benchmark(out, None)


def test_topic_is_chosen_by_key_or_name(tmp_path: Path) -> None:
    last = known_topics()[-1]
    _, by_key = make_known_benchmark(tmp_path / "a", None, last.key)
    _, by_name = make_known_benchmark(tmp_path / "b", None, last.name.upper())
    assert by_key["topic"] == by_name["topic"] == last.name
    with pytest.raises(ObliviateError, match="unknown topic 'pluto'; choose one of"):
        make_known_benchmark(tmp_path / "c", None, "pluto")
    first = known_topics()[0]
    lost = {r.id for r in first.neighbors}
    screened = {r.id: Screened(r.id not in lost, 0) for r in candidate_records()}
    with pytest.raises(ObliviateError, match=f"no neighbors records: .* {first.key}'s"):
        make_known_benchmark(tmp_path / "d", screened, first.key)
    assert not (tmp_path / "d").exists()


def test_screening_on_the_tiny_model_is_evaluation_answer_check(tmp_path: Path) -> None:
    from obliviate.evaluation.model_outputs import generate_answers
    from obliviate.models.loader import load_model, model_fingerprint

    loaded = load_model("tiny")
    records = [*known_topics()[0].facts[:3], *invented_facts()[:2]]
    result = screening.screen_records(loaded, model_fingerprint("tiny"), records)
    questions = [q for r in records for q in (r.prompt, *r.paraphrases)]
    answers = dict(
        zip(questions, generate_answers(loaded.model, loaded.tokenizer, questions), strict=True)
    )
    for r in records:
        assert result[r.id] == Screened(
            answered=answer_matches(r.answer, answers[r.prompt]),
            paraphrases_answered=sum(answer_matches(r.answer, answers[p]) for p in r.paraphrases),
        )


def test_screening_keeps_what_the_model_answers_and_caches_answers(
    tmp_path: Path, monkeypatch
) -> None:
    """A generator that knows the second topic, one fact of the third and one invented
    fact: the second topic is the forget topic, the third gives the retain set, what the
    model does not answer (and the invented fact it does) is left out, and a second
    screening asks the model nothing."""
    known, other = known_topics()[1], known_topics()[2].facts[0]
    unknown_fact, invented = known.facts[0], invented_facts()[0]
    gold = {
        q: r.answer
        for r in (*known.facts[1:], *known.neighbors[:-1], other, invented)
        for q in (r.prompt, *r.paraphrases[:1])
    }
    asked: list[str] = []
    every = [q for r in candidate_records() for q in (r.prompt, *r.paraphrases)]

    def fake_generate(model, tokenizer, prompt_ids, *args, **kwargs) -> list[str]:
        by_ids = dict(zip(map(tuple, tokenize_prompts(tokenizer, every)), every, strict=True))
        questions = [by_ids[tuple(ids)] for ids in prompt_ids]
        asked.extend(questions)
        return [f"It is {gold[q]}." if q in gold else "I do not know." for q in questions]

    monkeypatch.setattr(screening, "generate_from_ids", fake_generate)
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))  # nothing asked before
    made = make_known_bench(tmp_path / "a", model="tiny")
    total = screening.questions_of(candidate_records())
    assert len(asked) == total
    document = made.document
    assert document["topic"] == known.name and document["model"] == "tiny"
    forget = load_records(made.paths["forget"])
    assert [r.id for r in forget] == [r.id for r in known.facts[1:]]
    assert unknown_fact.id not in {r.id for r in load_records(made.paths["full"])}
    assert len(load_records(made.paths["neighbors"])) == len(known.neighbors) - 1
    assert load_records(made.paths["retain"]) == [other]
    holdout = load_records(made.paths["holdout"])
    assert invented.id not in {r.id for r in holdout}
    assert len(holdout) == len(invented_facts()) - 1
    row = document["screening"]["topics"][known.key]
    assert row["facts"] == len(known.facts) - 1 and row["paraphrase_accuracy"] == 0.5
    assert document["screening"]["invented"]["unanswered"] == len(invented_facts()) - 1

    # The answers are cached: the same screening again asks nothing.
    again = make_known_bench(tmp_path / "b", model="tiny")
    assert len(asked) == total and again.document == document
    with pytest.raises(ObliviateError, match=f"answers only 0 facts of {known_topics()[0].key}"):
        make_known_bench(tmp_path / "c", topic=known_topics()[0].key, model="tiny")


def test_facts_benchmark_says_what_it_is(tmp_path: Path) -> None:
    from obliviate.data.bench import make_benchmark

    paths = make_benchmark(tmp_path / "b", seed=0, people=10)
    document = json.loads(paths["bench"].read_text())
    assert document == {"kind": "facts", "split": "forget10", "holdout": "random"}
