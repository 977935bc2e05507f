"""A model's greedy answer accuracy on question-answer records, as a function a caller
hands to the methods that choose λ on retain questions (methods sit below evaluation, so
they receive the scorer instead of importing it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from obliviate.data.answers import answer_matches
from obliviate.data.records import Record
from obliviate.evaluation.model_outputs import generate_answers


def answer_accuracy(model: torch.nn.Module, tokenizer: Any, records: Sequence[Record]) -> float:
    """Fraction of greedy answers that contain the gold answer (evaluation's ``accuracy``);
    the model's train/eval mode is restored after."""
    was_training = model.training
    model.eval()
    generated = generate_answers(model, tokenizer, [r.prompt for r in records])
    model.train(was_training)
    hits = [answer_matches(r.answer, g) for r, g in zip(records, generated, strict=True)]
    return sum(hits) / len(hits)
