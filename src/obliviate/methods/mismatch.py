"""Forget questions paired with answers that are not theirs: SKU's random disassociation and
Yao et al.'s random mismatch.

Both methods train on each forget question followed by k "random" answers. They differ in
where those come from: SKU's code draws other forget answers, Yao et al.'s normal
(TruthfulQA) answers. Pairs are drawn once, seeded, and never give a question an answer
equal to its own (compared without case and surrounding space), where both papers' code
samples afresh each step and may.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.methods.base import Batch
from obliviate.models.encoding import Encoded, collate, encode_fact


def disassociation_pairs(
    records: Sequence[Record],
    k: int,
    seed: int,
    pool: Sequence[Record] | None = None,
    method: str = "sku",
) -> list[tuple[int, ...]]:
    """For each record, the indices of ``k`` records of ``pool`` (default: ``records``
    themselves) whose answers it is paired with.

    Only question–answer records take part; a candidate must have a different answer, so
    an example is never paired with its own answer, even where two examples share it.
    Passages get no pairs.
    """
    pool = records if pool is None else pool
    source = "answers of other forget examples" if pool is records else "retain answers"
    rng = random.Random(seed)
    pairs: list[tuple[int, ...]] = []
    for record in records:
        if record.is_text:
            pairs.append(())
            continue
        own = record.answer.strip().casefold()
        candidates = [
            j
            for j, other in enumerate(pool)
            if not other.is_text and other.answer.strip().casefold() != own
        ]
        if len(candidates) < k:
            raise ObliviateError(
                f"{method} pairs each forget question with k={k} {source}, but '{record.id}' "
                f"has only {len(candidates)} with a different answer; lower k (--param k=N) "
                "or give more examples"
            )
        pairs.append(tuple(rng.sample(candidates, k)))
    return pairs


def mismatched_examples(
    tokenizer: object,
    records: Sequence[Record],
    pool: Sequence[Record],
    pairs: Sequence[tuple[int, ...]],
) -> list[list[Encoded]]:
    """Each record's question encoded with each of its paired answers from ``pool``."""
    return [
        [encode_fact(tokenizer, records[i].prompt, pool[j].answer) for j in others]
        for i, others in enumerate(pairs)
    ]


def mismatched_batch(
    examples: Sequence[Sequence[Encoded]], forget: Batch, pad_token_id: int
) -> Batch | None:
    """The forget rows' questions with their paired answers, padded as one batch on the
    forget batch's device (None when no row has pairs)."""
    rows = [e for i in forget["index"].tolist() for e in examples[i]]
    if not rows:
        return None
    device = forget["input_ids"].device
    return {k: v.to(device) for k, v in collate(rows, pad_token_id).items()}
