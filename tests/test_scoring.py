"""Scoring answers that share a prompt, or generating after the prompt that an answer is
scored after, runs the prompt once and changes no figure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from obliviate.data.loaders import load_records
from obliviate.evaluation.model_outputs import (
    generate_and_score,
    generate_from_ids,
    mean_logprob,
    score_encoded,
    tokenize_prompts,
)
from obliviate.models.encoding import IGNORE_INDEX, Encoded, encode_fact, encode_text, format_answer
from obliviate.models.loader import LoadedModel, load_model


@pytest.fixture(scope="module")
def tiny(tiny_target: Path) -> LoadedModel:
    return load_model(str(tiny_target))


@pytest.fixture(scope="module")
def forget(bench_dir: Path) -> list:
    return load_records(bench_dir / "forget10.jsonl")


def test_answers_sharing_a_prompt_score_as_when_scored_alone(
    tiny: LoadedModel, forget: list
) -> None:
    model, tokenizer = tiny.model, tiny.tokenizer
    records = forget[:5]
    pairs = [(r.prompt, a) for r in records for a in (r.answer, *r.perturbed)]
    pairs.append(("A question asked once?", "Its only answer"))
    encoded = [encode_fact(tokenizer, q, a) for q, a in pairs]
    encoded.append(encode_text(tokenizer, "A passage: every token is scored."))
    texts = [a for _, a in pairs] + ["passage"]
    calls = []
    decoder = model.get_decoder()
    hook = decoder.register_forward_hook(
        lambda m, args, kw, out: calls.append(kw), with_kwargs=True
    )
    together = score_encoded(model, encoded, texts, tokenizer.pad_token_id)
    hook.remove()
    # The five prompts ran once (then their answers from the cache), the rest whole.
    prompt_pass = calls[0]["input_ids"]
    assert prompt_pass.shape[0] == len(records) and calls[0]["use_cache"]
    assert (calls[1].get("cache") or calls[1].get("past_key_values")) is not None
    assert calls[1]["input_ids"].shape[0] == len(records) * (1 + len(records[0].perturbed))
    alone = [
        score_encoded(model, [e], [t], tokenizer.pad_token_id)[0]
        for e, t in zip(encoded, texts, strict=True)
    ]
    for shared, single in zip(together, alone, strict=True):
        assert len(shared.logprobs) == len(single.logprobs) > 0
        assert shared.text == single.text
        assert shared.logprobs == pytest.approx(single.logprobs, abs=1e-4)
        assert shared.mu == pytest.approx(single.mu, abs=1e-4)
        assert shared.sigma == pytest.approx(single.sigma, abs=1e-4)


def test_generating_and_scoring_in_one_prompt_pass_gives_the_same_answers_and_figures(
    tiny: LoadedModel, forget: list
) -> None:
    model, tokenizer = tiny.model, tiny.tokenizer
    records = forget[:6]
    contexts = [None, "Some context before the question, long enough to pad the others."]
    prompts = [
        ids
        for context in contexts
        for ids in tokenize_prompts(tokenizer, [r.prompt for r in records], context)
    ]
    answers = [
        tokenizer(format_answer(tokenizer, r.answer), add_special_tokens=False)["input_ids"]
        for r in records
    ] * len(contexts)
    answers[-1] = []  # a prompt generated from but scored with nothing
    calls = []
    decoder = model.get_decoder()
    hook = decoder.register_forward_hook(
        lambda m, args, kw, out: calls.append(kw["input_ids"].shape), with_kwargs=True
    )
    texts, means = generate_and_score(model, tokenizer, prompts, answers, batch_size=8)
    hook.remove()
    # Per batch (prompts by length, 8 then 4): the tokens every prompt opens with (here the
    # second batch's context) run for one row, the rest of each prompt but its last token
    # for every row, then the answers; generated tokens continue from the cache one by one.
    expected = []
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for chunk in (order[:8], order[8:]):
        batch = [prompts[i] for i in chunk]
        shared = next(
            (j for j, column in enumerate(zip(*batch, strict=False)) if len(set(column)) > 1),
            min(len(p) for p in batch),
        )
        shared = min(shared, min(len(p) for p in batch) - 1)
        width = max(len(p) for p in batch)
        longest_answer = max(len(answers[i]) for i in chunk)
        expected += [(1, shared)] if shared else []
        expected += [(len(chunk), width - 1 - shared), (len(chunk), 1 + longest_answer)]
    assert [rows for rows, _ in expected] == [8, 8, 1, 4, 4]  # the shared context: 1 row
    assert [tuple(shape) for shape in calls if shape[1] > 1] == [e for e in expected if e[1] > 1]
    assert texts == generate_from_ids(model, tokenizer, prompts, batch_size=8)
    encoded = [
        Encoded(tuple(p + a), tuple([IGNORE_INDEX] * len(p) + a))
        for p, a in zip(prompts, answers, strict=True)
    ]
    alone = score_encoded(model, encoded[:-1], [""] * (len(encoded) - 1), tokenizer.pad_token_id)
    assert means[:-1] == pytest.approx([mean_logprob(s) for s in alone], abs=1e-5)
    assert means[-1] == 0.0


def _generated_alone(model, tokenizer, prompt: list[int]) -> str:
    """``generate``'s greedy answer to one prompt, no batch and no padding around it."""
    output = model.generate(
        input_ids=torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        max_new_tokens=24,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.decode(output[0, len(prompt) :], skip_special_tokens=True).strip()


def test_greedy_answers_are_generates_with_finished_rows_leaving_the_batch(
    tiny: LoadedModel, forget: list
) -> None:
    model, tokenizer = tiny.model, tiny.tokenizer
    records = forget[:12]
    prompts = tokenize_prompts(tokenizer, [r.prompt for r in records])
    alone = [_generated_alone(model, tokenizer, p) for p in prompts]
    lengths = {len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in alone}
    assert len(lengths) > 1  # the rows end at different steps
    rows_per_step = []
    hook = model.get_decoder().register_forward_hook(
        lambda m, args, kw, out: (
            rows_per_step.append(kw["input_ids"].shape[0])
            if kw["input_ids"].shape[1] == 1
            else None
        ),
        with_kwargs=True,
    )
    batched = generate_from_ids(model, tokenizer, prompts, batch_size=12)
    hook.remove()
    assert batched == alone
    assert rows_per_step == sorted(rows_per_step, reverse=True) and rows_per_step[0] == 12
    assert rows_per_step[-1] < 12  # finished rows left the batch
    # A generation config that changes the scores before the argmax: generate decodes.
    model.generation_config.repetition_penalty = 1.5
    try:
        penalised = [_generated_alone(model, tokenizer, p) for p in prompts]
        assert penalised != alone
        assert generate_from_ids(model, tokenizer, prompts, batch_size=12) == penalised
    finally:
        model.generation_config.repetition_penalty = 1.0
