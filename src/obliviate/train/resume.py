"""What ``--resume`` checks: that the command continues the run it claims to continue.

A training run writes its ``config.yaml`` before its first step: the command, the model,
the method and its parameters, the data (paths, and the sha256 of their content) and
every training setting. A resumed command is compared with it setting by setting; the
first that differs (another method, other data, another seed or learning rate) refuses
the resume in one line, since the checkpoint's weights and optimizer state belong to the
other run. A light module (no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from obliviate.errors import ObliviateError
from obliviate.rundir import sha256_path

#: Settings a resumed run may change: how fast or in how much memory it runs, and how
#: often it saves or checks, never what it computes.
MAY_CHANGE = frozenset(
    {"train.checkpoint_every", "train.compile", "train.gradient_checkpointing",
     "train.collapse_check_every"}
)  # fmt: skip

#: The parts of config.yaml that decide what a run computes (the data by content, not path).
COMPARED = ("command", "model", "method", "method_params", "data.sha256", "data.chunk_tokens")


def input_hashes(inputs: dict[str, Path | None]) -> dict[str, str]:
    """The sha256 of each input's content (file or folder), by role."""
    return {role: sha256_path(path) for role, path in inputs.items() if path}


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat |= _flat(item, f"{prefix}{key}.")
        return flat if flat or not prefix else {prefix[:-1]: {}}
    if isinstance(value, tuple):
        value = list(value)
    return {prefix[:-1]: value}


def _label(key: str) -> str:
    if key.startswith("train."):
        return "--" + key.removeprefix("train.").replace("_", "-")
    if key.startswith("method_params."):
        return f"method parameter {key.removeprefix('method_params.')}"
    if key.startswith("data.sha256."):
        return f"the {key.removeprefix('data.sha256.')} data's content"
    return key.replace("data.", "")


def check_resumed(config_file: Path, settings: dict[str, Any]) -> None:
    """Refuse to resume when ``settings`` (laid out as config.yaml) differ from the
    interrupted run's ``config_file`` in anything but ``MAY_CHANGE``; the error names the
    first setting that differs. Settings the earlier run did not record are not compared."""
    if not config_file.is_file():
        return  # the run stopped before its first step: nothing was trained to mismatch
    try:
        before = _flat(yaml.safe_load(config_file.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        raise ObliviateError(
            f"--resume: {config_file} cannot be read; run without --resume to start over"
        ) from None
    now = _flat(settings)
    for key, value in now.items():
        compared = key.startswith("train.") or any(
            key == part or key.startswith(part + ".") for part in COMPARED
        )
        if not compared or key in MAY_CHANGE or key not in before:
            continue
        if before[key] != value:
            raise ObliviateError(
                f"--resume: {_label(key)} is {value!r} here but was {before[key]!r} in the "
                f"interrupted run ({config_file}); resume with its settings, or run without "
                "--resume to start over"
            )
