"""Prompt formatting and the one place where token masks are built.

A fact is encoded as ``prompt tokens + answer tokens + EOS``; only the answer and EOS
tokens carry labels (``-100`` elsewhere), and padding never does. A passage of text is
all label. Every loss, score and metric in obliviate goes through these functions, so a
masking bug can only live here (and ``tests/test_encoding.py`` pins it down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from obliviate.data.records import Record
from obliviate.errors import ObliviateError

IGNORE_INDEX = -100
PLAIN_TEMPLATE = "Question: {question}\nAnswer:"


def uses_chat_template(tokenizer: object) -> bool:
    """True when the tokenizer carries a chat template (instruction-tuned models)."""
    return getattr(tokenizer, "chat_template", None) is not None


def format_prompt(tokenizer: object, question: str, context: str | None = None) -> str:
    """The text the model sees before its answer.

    With a chat template: one user turn (``context`` then the question) and the
    assistant header. Without: ``Question: … Answer:``, with ``context`` on the line above.
    """
    if uses_chat_template(tokenizer):
        content = f"{context}\n\n{question}" if context else question
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
    prompt = PLAIN_TEMPLATE.format(question=question)
    return f"{context}\n{prompt}" if context else prompt


def format_answer(tokenizer: object, answer: str) -> str:
    """The answer as the model should produce it, ending with the end-of-turn token."""
    separator = "" if uses_chat_template(tokenizer) else " "
    return f"{separator}{answer.strip()}{tokenizer.eos_token}"


@dataclass(frozen=True)
class Encoded:
    """Token ids and labels of one example (labels are ``-100`` where no loss is taken)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def n_label_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def _ids(tokenizer: object, text: str, special: bool) -> list[int]:
    return tokenizer(text, add_special_tokens=special)["input_ids"]


def encode_fact(
    tokenizer: object, question: str, answer: str, context: str | None = None
) -> Encoded:
    """Encode a question and its answer; the loss covers the answer and its EOS only.

    Prompt and answer are tokenised separately so the boundary is exact whatever the
    tokenizer merges across it. Chat templates already hold their special tokens.
    """
    prompt_ids = _ids(
        tokenizer, format_prompt(tokenizer, question, context), not uses_chat_template(tokenizer)
    )
    answer_ids = _ids(tokenizer, format_answer(tokenizer, answer), False)
    return Encoded(
        input_ids=tuple(prompt_ids + answer_ids),
        labels=tuple([IGNORE_INDEX] * len(prompt_ids) + answer_ids),
    )


def fit_facts(
    tokenizer: object, records: Sequence[Record], max_tokens: int | None
) -> tuple[list[Record], int]:
    """``records`` with each fact whose question and answer take more than ``max_tokens``
    tokens (the model's context) cut to fit: its answer shortened, ``meta["cut_to_tokens"]``
    set. Returns them and how many were cut; a question that alone leaves no room for an
    answer is an error naming the record. Passages are left alone (they are chunked)."""
    if max_tokens is None:
        return list(records), 0
    # A token spans at least one byte of text: most facts need no tokenising here.
    overhead = len(encode_fact(tokenizer, "?", "?").input_ids) + 8
    fitted, cut = [], 0
    for record in records:
        size = len(record.prompt.encode()) + len(record.answer.encode()) if record.prompt else 0
        if record.is_text or size + overhead <= max_tokens:
            fitted.append(record)
            continue
        encoded = encode_fact(tokenizer, record.prompt, record.answer)
        if len(encoded.input_ids) <= max_tokens:
            fitted.append(record)
            continue
        fitted.append(_cut_answer(tokenizer, record, encoded, max_tokens))
        cut += 1
    return fitted, cut


def _cut_answer(tokenizer: object, record: Record, encoded: Encoded, max_tokens: int) -> Record:
    room = max_tokens - encoded.labels.count(IGNORE_INDEX) - 2
    answer_ids = _ids(tokenizer, record.answer, False)
    while room >= 1:
        answer = tokenizer.decode(answer_ids[:room], skip_special_tokens=True).strip()
        if answer and len(encode_fact(tokenizer, record.prompt, answer).input_ids) <= max_tokens:
            return replace(record, answer=answer, meta=record.meta | {"cut_to_tokens": max_tokens})
        room -= max(1, room // 8)
    raise ObliviateError(
        f"record {record.id!r}: its question alone takes more tokens than the model reads "
        f"({max_tokens}); shorten it"
    )


def encode_text(tokenizer: object, text: str, max_tokens: int = 512) -> Encoded:
    """Encode a raw passage; every token (and the closing EOS) is a label."""
    ids = _ids(tokenizer, text, True)[: max_tokens - 1] + [tokenizer.eos_token_id]
    return Encoded(input_ids=tuple(ids), labels=tuple(ids))


def collate(examples: Sequence[Encoded], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: padding gets attention 0 and label -100."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def sequence_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-token log-probabilities of the labels, shape (batch, width - 1), 0 where unlabelled.

    Only positions that carry a label go through the output head, which saves most of
    the vocabulary projection for short answers after long prompts.
    """
    hidden = model.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state[:, :-1]
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    logits = model.get_output_embeddings()(hidden[mask]).float()
    picked = torch.log_softmax(logits, dim=-1).gather(-1, labels[mask].unsqueeze(-1)).squeeze(-1)
    out = torch.zeros(labels.shape, dtype=picked.dtype, device=picked.device)
    out[mask] = picked
    return out


def answer_logits(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-vocabulary logits (float32, shape (n, vocab)) at the n labelled positions, and
    the labels there. Prompt and padding never reach the output head; float32 keeps the
    softmaxes of KL and distillation terms exact under bf16 autocast."""
    hidden = model.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state[:, :-1]
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    return model.get_output_embeddings()(hidden[mask]).float(), labels[mask]


def label_mask(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Which positions of ``sequence_logprobs``' output carry a label (float 0/1)."""
    return (batch["labels"][:, 1:] != IGNORE_INDEX).float()
