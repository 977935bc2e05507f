"""``obliviate bench make --kind known``: the benchmark of knowledge a model already has.

Screen every candidate fact on the model (``evaluation/screening.py``: asked as evaluation
asks, answers cached), keep the facts it answers and the invented ones it does not, and
write the splits (``data/known.py``). With ``screen=False`` no model is loaded and every
candidate is kept (a model that knows nothing, such as the tests' tiny one, still gets a
benchmark of the right shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.data.known import candidate_records, choose_topic, make_known_benchmark
from obliviate.options import BASE_MODEL, KNOWN_SCREEN, KNOWN_TOPIC
from obliviate.progress import progress_bar, say


@dataclass(frozen=True)
class KnownBench:
    """What ``make_known_bench`` wrote."""

    paths: dict[str, Path]
    """File stem (``forget``, ``neighbors``, ..., ``bench``) → path."""
    document: dict[str, Any]
    """``bench.json``: the topic, the counts and the screening per topic."""


def make_known_bench(
    out: str | Path,
    topic: str | None = KNOWN_TOPIC.default,
    model: str = BASE_MODEL.default,
    screen: bool = KNOWN_SCREEN.default,
) -> KnownBench:
    """Screen the candidates on ``model`` (unless ``screen`` is False) and write the known
    benchmark of ``topic`` (default: the first topic with enough facts the model answers)
    to ``out``."""
    choose_topic(None, topic)  # an unknown topic fails before the model loads
    screened = None
    if screen:
        from obliviate.evaluation.screening import questions_of, screen_records
        from obliviate.models.loader import load_model, model_fingerprint

        candidates = candidate_records()
        say(f"screening {len(candidates)} candidate facts on {model}")
        loaded = load_model(model)
        with progress_bar(f"screen ({model})", questions_of(candidates)) as advance:
            screened = screen_records(loaded, model_fingerprint(model), candidates, advance)
    paths, document = make_known_benchmark(out, screened, topic, model)
    return KnownBench(paths, document)
