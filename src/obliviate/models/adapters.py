"""LoRA adapters saved in place of a model (``--keep-adapter``): where one is, and its base.

A kept adapter's folder holds peft's ``adapter_config.json`` and
``adapter_model.safetensors`` (and the tokenizer), no ``config.json``: small to share, and
the base model stays as it was. The base is named in ``adapter_config.json``'s
``base_model_name_or_path``: a built-in name, an absolute path or a Hub id, itself loaded
as any model spec (``specs.adapter_chain`` follows adapters stacked over adapters).
A name is no promise of content (a run directory re-made with ``--overwrite``, another model
copied to the folder), so the adapter also records its base's content fingerprint
(``base_fingerprint.json``, ``loader.content_fingerprint``), checked when it is loaded; an
adapter without one (peft's own) loads as it always did.
Standard library only, so the command line checks a spec with it before torch is imported.
"""

from __future__ import annotations

import json
from pathlib import Path

from obliviate.errors import ObliviateError

ADAPTER_CONFIG = "adapter_config.json"
#: Beside the adapter: the content fingerprint of the base it was trained over.
BASE_FINGERPRINT = "base_fingerprint.json"


def adapter_folder(spec: str) -> Path | None:
    """The folder of the adapter ``spec`` names (itself, or a run directory's ``model/``),
    or None where it names a full model or no folder."""
    path = Path(spec).expanduser()
    if (path / "config.json").is_file():
        return None
    for folder in (path, path / "model"):
        if (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file():
            return folder
    return None


def adapter_base(folder: Path) -> str:
    """The base model the adapter in ``folder`` names (one line when it names none)."""
    where = folder / ADAPTER_CONFIG
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ObliviateError(f"{where}: cannot be read as JSON ({exc})") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base.strip():
        raise ObliviateError(
            f"{where} names no base model (base_model_name_or_path); set it to the base "
            "model's folder, .gguf file or Hub id"
        )
    return base


def record_base_fingerprint(folder: Path, fingerprint: str) -> None:
    """Write beside the adapter in ``folder`` the fingerprint of the base it was trained over."""
    record = {"base_fingerprint": fingerprint}
    (folder / BASE_FINGERPRINT).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def recorded_base_fingerprint(folder: Path) -> str | None:
    """The base's fingerprint the adapter in ``folder`` recorded (None: it recorded none)."""
    where = folder / BASE_FINGERPRINT
    if not where.is_file():
        return None
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ObliviateError(f"{where}: cannot be read as JSON ({exc})") from None
    fingerprint = record.get("base_fingerprint") if isinstance(record, dict) else None
    if not isinstance(fingerprint, str):
        raise ObliviateError(f"{where} holds no base_fingerprint; delete it to skip the check")
    return fingerprint


def check_base_fingerprint(folder: Path, recorded: str, actual: str) -> None:
    """Refuse an adapter whose base is no longer the model it was trained over."""
    if recorded != actual:
        raise ObliviateError(
            f"{folder}: the base model at {adapter_base(folder)} changed since this adapter "
            "was trained over it (its content differs); load the adapter over the model it "
            f"was trained on (base_model_name_or_path in {folder / ADAPTER_CONFIG}), or "
            "retrain it"
        )


def check_keep_adapter(keep_adapter: bool, lora: bool) -> None:
    """Refuse ``--keep-adapter`` for a run that trains no LoRA adapter."""
    if keep_adapter and not lora:
        raise ObliviateError(
            "--keep-adapter saves the LoRA adapter instead of merging it, and this run trains "
            "no LoRA; add --lora, or leave out --keep-adapter"
        )
