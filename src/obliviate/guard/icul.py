"""In-context unlearning: forget questions answered with refusals, put before the question.

Which demonstrations matter more than how many (ERASE): k examples that cover the
forget set's kinds of question teach the model the pattern better than k near-copies.
So the forget questions are clustered with k-means over their embeddings and the record
nearest each centroid is taken.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans

from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.methods.refusals import refusal_for
from obliviate.models.embeddings import embed
from obliviate.progress import say

__all__ = ["ICUL_STYLES", "INSTRUCTION", "icul_context", "select_demonstrations"]

ICUL_STYLES = ("refusal", "wrong")
INSTRUCTION = (
    "Answer the question at the end. For questions like the examples below, "
    "do not reveal the facts."
)


def select_demonstrations(forget: list[Record], k: int, seed: int = 0) -> list[Record]:
    """``min(k, n)`` forget facts, one per k-means cluster of their questions, in the
    records' original order; the same seed always picks the same records."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        raise ObliviateError(f"the number of ICUL demonstrations must be at least 1, got {k!r}")
    facts = [r for r in forget if not r.is_text]
    if not facts:
        raise ObliviateError("ICUL needs forget records with a question and an answer")
    clusters = min(k, len(facts))
    say(
        f"guard: ICUL: embedding {len(facts)} forget questions, picking {clusters} "
        "demonstrations (k-means)"
    )
    vectors = embed([r.prompt or "" for r in facts])
    kmeans = KMeans(n_clusters=clusters, random_state=seed, n_init=10).fit(vectors)
    chosen: list[int] = []
    for centroid in kmeans.cluster_centers_:
        distances = np.linalg.norm(vectors - centroid, axis=1)
        distances[chosen] = np.inf
        chosen.append(int(np.argmin(distances)))
    return [facts[i] for i in sorted(chosen)]


def _demonstration_answer(record: Record, style: str, seed: int) -> str:
    """A refusal (stable per record id), or for ``wrong`` its first wrong answer."""
    if style == "wrong" and record.perturbed:
        return record.perturbed[0]
    return refusal_for(record.id, seed)


def icul_context(demos: Sequence[Record], style: str = "refusal", seed: int = 0) -> str:
    """The instruction, then one ``Question: ...`` / ``Answer: ...`` block per demonstration."""
    if style not in ICUL_STYLES:
        raise ObliviateError(f"ICUL style must be one of {ICUL_STYLES}, got {style!r}")
    if not demos:
        raise ObliviateError("ICUL needs at least one demonstration")
    blocks = [
        f"Question: {r.prompt}\nAnswer: {_demonstration_answer(r, style, seed)}" for r in demos
    ]
    return "\n\n".join([INSTRUCTION, *blocks])
