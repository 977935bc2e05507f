"""Warnings about an evaluation whose figures would mean less than they seem to.

Two set-ups give figures that look fine and are not: a model compared with itself as its
own oracle (forget quality 1.0 whatever was unlearned), and forget and retain sets that
share records (the same fact asked to be forgotten and kept). Neither is an error (a
sanity check may do either on purpose); each is a line in ``results.json``'s
``warnings`` and on the terminal.
"""

from __future__ import annotations

from pathlib import Path

from obliviate.data.records import Record, overlap_count
from obliviate.models.loader import model_fingerprint


def _files(spec: str) -> list[tuple[str, int]] | None:
    """The model folder's files and sizes (a run directory's ``model/``), None if no folder."""
    path = Path(spec).expanduser()
    if path.is_dir() and not (path / "config.json").is_file() and (path / "model").is_dir():
        path = path / "model"
    if not path.is_dir():
        return None
    return sorted(
        (str(f.relative_to(path)), f.stat().st_size) for f in path.rglob("*") if f.is_file()
    )


def same_weights(first: str, second: str) -> bool:
    """Whether two model specs load the same weights (by content; folders whose files differ
    in size are told apart without hashing them)."""
    listed = _files(first), _files(second)
    if None not in listed and listed[0] != listed[1]:
        return False
    return model_fingerprint(first) == model_fingerprint(second)


def same_model_warnings(models: dict[str, str]) -> list[str]:
    """A warning when the oracle (or target) holds the very weights of the model."""
    if "model" not in models:
        return []
    warnings = []
    for role in ("oracle", "target"):
        if role not in models:
            continue
        if same_weights(str(models["model"]), str(models[role])):
            consequence = (
                "forget quality compares the model with itself (1.0 whatever was unlearned)"
                if role == "oracle"
                else "every change against the target is zero"
            )
            warnings.append(f"the {role} is the model itself (the same weights): {consequence}")
    return warnings


def overlap_warnings(splits: dict[str, list[Record]]) -> list[str]:
    """A warning when the forget split shares records with the retain split."""
    forget, retain = splits.get("forget") or [], splits.get("retain") or []
    shared = overlap_count(forget, retain)
    if not shared:
        return []
    return [
        f"{shared} of the {len(forget)} forget records are also in the retain split (the same "
        "question and answer, or passage): forget and retain figures measure them both"
    ]
