"""Evaluate a model on named splits: every registered metric, plus per-example answers."""

from __future__ import annotations

from collections.abc import Callable

import torch

from obliviate.data.records import Record
from obliviate.evaluate.metrics import METRICS, SplitOutputs, answer_matches
from obliviate.evaluate.model_outputs import answer_logprobs, generate_answers


def evaluate_splits(
    model: torch.nn.Module,
    tokenizer: object,
    splits: dict[str, list[Record]],
    on_split: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, list[dict]]]:
    """Figures per split (``{split: {metric: value, "n": count}}``) and per-example rows.

    Text records (passages) have no question to answer and are skipped here.
    """
    figures: dict[str, dict[str, float]] = {}
    examples: dict[str, list[dict]] = {}
    for split, all_records in splits.items():
        records = [r for r in all_records if not r.is_text]
        if not records:
            continue
        if on_split:
            on_split(split)
        generated = generate_answers(model, tokenizer, [r.prompt for r in records])
        logprobs = answer_logprobs(model, tokenizer, [(r.prompt, r.answer) for r in records])
        outputs = SplitOutputs(records=records, generated=generated, answer_logprob=logprobs)
        figures[split] = {name: metric(outputs) for name, metric in METRICS.items()}
        figures[split]["n"] = len(records)
        examples[split] = [
            {
                "id": r.id,
                "question": r.prompt,
                "answer": r.answer,
                "generated": g,
                "correct": answer_matches(r.answer, g),
                "answer_logprob": lp,
            }
            for r, g, lp in zip(records, generated, logprobs, strict=True)
        ]
    return figures, examples
