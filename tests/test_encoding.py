"""Masks are built in one place; these tests pin down where loss is and is not taken."""

from __future__ import annotations

import torch

from obliviate.models.encoding import (
    IGNORE_INDEX,
    collate,
    encode_fact,
    encode_text,
    format_prompt,
    label_mask,
    sequence_logprobs,
)
from obliviate.models.tiny import tiny_model, tiny_tokenizer


def test_fact_labels_cover_answer_and_eos_only() -> None:
    tokenizer = tiny_tokenizer()
    encoded = encode_fact(tokenizer, "Where was Tavrin Oskelund born?", "Lisbon")
    prompt_len = len(
        tokenizer(format_prompt(tokenizer, "Where was Tavrin Oskelund born?"))["input_ids"]
    )
    assert all(label == IGNORE_INDEX for label in encoded.labels[:prompt_len])
    answer = [t for t in encoded.labels if t != IGNORE_INDEX]
    assert answer[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(answer[:-1]).strip() == "Lisbon"
    assert encoded.input_ids[prompt_len:] == encoded.labels[prompt_len:]


def test_plain_prompt_format_without_chat_template() -> None:
    tokenizer = tiny_tokenizer()
    assert format_prompt(tokenizer, "Who?") == "Question: Who?\nAnswer:"
    assert format_prompt(tokenizer, "Who?", context="Facts.") == "Facts.\nQuestion: Who?\nAnswer:"


def test_text_records_are_all_label() -> None:
    tokenizer = tiny_tokenizer()
    encoded = encode_text(tokenizer, "A short passage of text.")
    assert encoded.labels == encoded.input_ids
    assert encoded.input_ids[-1] == tokenizer.eos_token_id


def test_padding_carries_no_label_and_no_attention() -> None:
    tokenizer = tiny_tokenizer()
    short = encode_fact(tokenizer, "Q?", "A")
    long = encode_fact(tokenizer, "A much longer question than the other one?", "Answer here")
    batch = collate([short, long], tokenizer.pad_token_id)
    n = len(short.input_ids)
    assert batch["attention_mask"][0, n:].sum() == 0
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all()
    assert int(label_mask(batch).sum()) == short.n_label_tokens + long.n_label_tokens - 0


def test_sequence_logprobs_match_full_softmax_and_ignore_padding() -> None:
    model, tokenizer = tiny_model()
    examples = [encode_fact(tokenizer, "Q?", "A"), encode_fact(tokenizer, "Longer Q here?", "B C")]
    batch = collate(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        ours = sequence_logprobs(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    full = torch.log_softmax(logits[:, :-1].float(), -1)
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    expected = full.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    assert torch.allclose(ours, expected, atol=1e-5)
    assert (ours[~mask] == 0).all()
