"""Evaluations of unchanged models, kept by content hash.

A demo run evaluates the same cached target and oracle every time; a fine-tuned model
evaluated on the same records, in the same precision, by the same evaluation code gives
the same outputs, so the second evaluation is read back instead of recomputed. The key
hashes everything the outputs depend on: every file of the model directory, the records
of every split (and passages), the precision and text settings, and the source of the
evaluation code and the record encoding, and the versions of the libraries (torch,
transformers, …), so any change to one of them misses the cache.
Entries live under ``$OBLIVIATE_CACHE/evaluations`` beside the fine-tunes.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import asdict
from pathlib import Path

import obliviate
from obliviate.data.records import Record
from obliviate.evaluate.text import TextSettings
from obliviate.rundir import package_versions, sha256_path

#: The source whose change changes what an evaluation produces: the evaluation package,
#: how prompts and answers are encoded, and how models are loaded.
_CODE = ("evaluate", "models")


def _code_fingerprint() -> str:
    root = Path(obliviate.__file__).parent
    digest = hashlib.sha256()
    for package in _CODE:
        for source in sorted((root / package).rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def evaluation_key(
    model_dir: Path,
    splits: dict[str, list[Record]],
    precision: str,
    passages: dict[str, list[Record]] | None,
    text_settings: TextSettings,
) -> str:
    """The content hash of one model's evaluation (see the module's docstring)."""
    parts = {
        "model": sha256_path(model_dir),
        "splits": {name: [r.to_json() for r in records] for name, records in splits.items()},
        "passages": (
            {role: [r.to_json() for r in records] for role, records in passages.items()}
            if passages
            else None
        ),
        "precision": precision,
        "text_settings": asdict(text_settings),
        "code": _code_fingerprint(),
        "versions": package_versions(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _path(root: Path, key: str) -> Path:
    return root / "evaluations" / f"{key}.pkl"


def load_evaluation(root: Path, key: str) -> object | None:
    """The stored evaluation under ``key``, or None (missing or unreadable: recomputed)."""
    path = _path(root, key)
    try:
        with path.open("rb") as stored:
            return pickle.load(stored)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def store_evaluation(root: Path, key: str, evaluation: object) -> None:
    """Write the evaluation under ``key`` atomically (a reader never sees half a file)."""
    path = _path(root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with partial.open("wb") as out:
        pickle.dump(evaluation, out, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
