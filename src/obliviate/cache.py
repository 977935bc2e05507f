"""Results of unchanged work, kept by content hash under ``$OBLIVIATE_CACHE``.

What a model produces from the same weights, the same records and settings, the same
obliviate code and the same libraries is the same, so it is stored once and read back:
the evaluations of a demo's target and oracle, the oracle's and target's attacked figures
in an audit. Each kind of result has its own folder; a key is the sha256 of a JSON
document naming everything the result depends on (built by the caller, with
``code_fingerprint`` and ``package_versions`` among its parts).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import obliviate


def cache_root() -> Path:
    """Where fine-tunes, converted models and stored results live (``$OBLIVIATE_CACHE``)."""
    return Path(os.environ.get("OBLIVIATE_CACHE", Path.home() / ".cache" / "obliviate"))


def code_fingerprint(packages: Sequence[str]) -> str:
    """The sha256 of the source of obliviate's ``packages`` (sub-package names, or ``.``
    for all of it): a change to that code misses every entry made before it."""
    root = Path(obliviate.__file__).parent
    digest = hashlib.sha256()
    for package in packages:
        for source in sorted((root / package).rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def content_key(parts: dict[str, Any]) -> str:
    """The key of a result that depends on ``parts`` (JSON-serialisable)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _path(root: Path, kind: str, key: str) -> Path:
    return root / kind / f"{key}.pkl"


def load_entry(root: Path, kind: str, key: str) -> object | None:
    """The stored result under ``kind``/``key``, or None (missing or unreadable: the
    caller computes it again)."""
    try:
        with _path(root, kind, key).open("rb") as stored:
            return pickle.load(stored)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None


def store_entry(root: Path, kind: str, key: str, value: object) -> None:
    """Write ``value`` under ``kind``/``key`` atomically (a reader never sees half a file)."""
    path = _path(root, kind, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with partial.open("wb") as out:
        pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
