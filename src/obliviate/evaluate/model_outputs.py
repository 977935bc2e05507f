"""What evaluation reads from a model: greedy answers and answer log-probabilities.

Both are batched (examples sorted by length so padding stays small); generation uses the
KV cache and a small token budget, since the answers being checked are short.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from obliviate.models.encoding import (
    collate,
    encode_fact,
    format_prompt,
    label_mask,
    sequence_logprobs,
    uses_chat_template,
)


def _by_length(texts: Sequence[str]) -> list[int]:
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))


@torch.no_grad()
def generate_answers(
    model: torch.nn.Module,
    tokenizer: object,
    questions: Sequence[str],
    max_new_tokens: int = 24,
    batch_size: int = 32,
    context: str | None = None,
) -> list[str]:
    """Greedy answers to ``questions`` (decoded, special tokens dropped), in input order."""
    prompts = [format_prompt(tokenizer, q, context) for q in questions]
    answers: list[str] = [""] * len(prompts)
    order = _by_length(prompts)
    previous_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encoded = tokenizer(
                [prompts[i] for i in chunk],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not uses_chat_template(tokenizer),
            ).to(model.device)
            output = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            for i, text in zip(
                chunk, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True
            ):
                answers[i] = text.strip()
    finally:
        tokenizer.padding_side = previous_side
    return answers


@torch.no_grad()
def answer_logprobs(
    model: torch.nn.Module,
    tokenizer: object,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 32,
) -> list[float]:
    """Mean per-token log-probability of each ``(question, answer)`` pair's answer.

    exp of it is TOFU's length-normalised answer probability.
    """
    encoded = [encode_fact(tokenizer, q, a) for q, a in pairs]
    result: list[float] = [0.0] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = {
            k: v.to(model.device)
            for k, v in collate([encoded[i] for i in chunk], tokenizer.pad_token_id).items()
        }
        logprobs = sequence_logprobs(model, batch)
        mask = label_mask(batch)
        means = (logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1)
        for i, value in zip(chunk, means.tolist(), strict=True):
            result[i] = value
    return result
