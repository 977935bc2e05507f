"""Results of unchanged work, kept by content hash under ``$OBLIVIATE_CACHE``.

What a model produces from the same weights, the same records and settings, the same
obliviate code and the same libraries is the same, so it is stored once and read back:
the evaluations of a demo's target and oracle, the oracle's and target's attacked figures
in an audit. Each kind of result has its own folder; a key is the sha256 of a JSON
document naming everything the result depends on (built by the caller, with
``code_fingerprint`` and ``package_versions`` among its parts).

Entries are JSON, read back as the type the caller names (``load_entry(..., ModelEvaluation)``)
by ``from_json``, which builds only that type and the types its fields declare: a cache
folder others can write to holds data, never code (no pickle).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import obliviate
from obliviate.errors import ObliviateError


def cache_root() -> Path:
    """Where fine-tunes, converted models and stored results live (``$OBLIVIATE_CACHE``)."""
    return Path(os.environ.get("OBLIVIATE_CACHE", Path.home() / ".cache" / "obliviate"))


def code_fingerprint(packages: Sequence[str]) -> str:
    """The sha256 of the source of obliviate's ``packages`` (sub-package names, modules such
    as ``evaluation/model_outputs.py``, or ``.`` for all of it): a change to that code misses
    every entry made before it."""
    root = Path(obliviate.__file__).parent
    digest = hashlib.sha256()
    for package in packages:
        path = root / package
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def content_key(parts: dict[str, Any]) -> str:
    """The key of a result that depends on ``parts`` (JSON-serialisable)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _path(root: Path, kind: str, key: str) -> Path:
    return root / kind / f"{key}.json"


def load_entry(root: Path, kind: str, key: str, cls: Any) -> Any | None:
    """The stored result under ``kind``/``key`` as a ``cls`` (a dataclass, or a type such as
    ``dict[str, VariantResult]``), or None (missing, unreadable or not a ``cls``: the caller
    computes it again)."""
    try:
        data = json.loads(_path(root, kind, key).read_text(encoding="utf-8"))
        return from_json(data, cls)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, ObliviateError):
        return None  # ObliviateError: a record's own checks refused the data


def store_entry(root: Path, kind: str, key: str, value: object) -> None:
    """Write ``value`` (dataclasses, lists, dicts of numbers and strings) as JSON under
    ``kind``/``key`` atomically (a reader never sees half a file)."""
    path = _path(root, kind, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(to_json(value)), encoding="utf-8")
    partial.replace(path)


def to_json(value: Any) -> Any:
    """``value`` as JSON data: a dataclass as the object of its fields (or its own
    ``to_json()`` where it also has ``from_json``), tuples and sets as lists."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):  # numpy scalars
        return float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_json") and hasattr(type(value), "from_json"):
            return value.to_json()
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only string keys are stored")
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(to_json(v) for v in value)
    if hasattr(value, "tolist"):  # numpy arrays
        return to_json(value.tolist())
    raise TypeError(f"cannot store a {type(value).__name__} in the cache")


def from_json(data: Any, kind: Any) -> Any:
    """``data`` (decoded JSON) as the type ``kind``: the inverse of ``to_json``. Builds
    nothing that ``kind`` does not name; a mismatch raises ``TypeError``."""
    if kind is Any:
        return data
    if kind is None or kind is type(None):
        if data is not None:
            raise TypeError("expected null")
        return None
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Union or isinstance(kind, types.UnionType):
        if data is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return from_json(data, option)
            except (TypeError, ValueError, KeyError):
                continue
        raise TypeError(f"{data!r} is none of {kind}")
    if origin in (list, tuple, set, frozenset):
        if not isinstance(data, list):
            raise TypeError(f"expected a list for {kind}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(data):
                raise TypeError(f"expected {len(args)} items for {kind}")
            return tuple(from_json(v, a) for v, a in zip(data, args, strict=True))
        item = args[0] if args else Any
        return origin(from_json(v, item) for v in data)
    if origin is dict:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {kind}")
        value = args[1] if args else Any
        return {k: from_json(v, value) for k, v in data.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if hasattr(kind, "from_json") and hasattr(kind, "to_json"):
            return kind.from_json(data, "cache entry")
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {kind.__name__}")
        hints = typing.get_type_hints(kind)
        return kind(
            **{
                f.name: from_json(data[f.name], hints[f.name])
                for f in dataclasses.fields(kind)
                if f.init
            }
        )
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise TypeError("expected a number")
        return float(data)
    if kind in (dict, list):  # unparametrised: JSON data as it is
        if not isinstance(data, kind):
            raise TypeError(f"expected {kind.__name__}")
        return data
    if kind in (int, str, bool):
        if not isinstance(data, kind) or (kind is int and isinstance(data, bool)):
            raise TypeError(f"expected {kind.__name__}")
        return data
    if origin is not None:  # e.g. Sequence[...]: as a list
        return from_json(data, list[args[0]] if args else list)
    raise TypeError(f"cannot read a {kind} from the cache")
