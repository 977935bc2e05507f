"""Whether a model spec can be loaded, known before anything heavy is imported.

A mistyped ``--oracle runs/nooracle`` used to surface after torch and transformers were
imported and the other models evaluated (two minutes in), with advice to download a
local path from the Hub. The command line checks every spec here first, with the
standard library only: the built-in names, a local folder or GGUF file, or a Hub id
already in the local Hugging Face cache (nothing is downloaded at run time). A kept LoRA
adapter (``models.adapters``) is checked down to the model under it.
"""

from __future__ import annotations

import os
from pathlib import Path

from obliviate.errors import ObliviateError
from obliviate.models.adapters import ADAPTER_CONFIG, adapter_base, adapter_folder

#: Model names the loader knows without a path.
BUILT_IN = ("smollm2", "tiny")
#: Adapters stacked over one another, at most: more means bases that lead back to themselves.
MAX_ADAPTERS = 16


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded models (its environment variables first)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = (
        os.environ.get("HF_HOME")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    )
    return Path(home).expanduser() / "hub"


def hub_revision(spec: str) -> str | None:
    """The commit the Hugging Face cache loads for the Hub id ``spec`` (its ``refs/main``,
    a hash of the files' content), or None where it records none."""
    ref = hub_cache_dir() / f"models--{spec.replace('/', '--')}" / "refs" / "main"
    try:
        return ref.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _looks_local(spec: str) -> bool:
    """A spec written as a path: it starts like one, has other than one ``/``, or its
    first part is a folder here (``runs/oracle`` when ``runs/`` exists)."""
    first = spec.split("/", 1)[0]
    return (
        spec.startswith((".", "/", "~"))
        or spec.count("/") != 1
        or Path(first).expanduser().is_dir()
    )


def check_model_spec(spec: str, flag: str = "--model") -> None:
    """Refuse, in one line, a model spec the loader could not load (see the module)."""
    path = Path(spec).expanduser()
    if spec in BUILT_IN:
        return
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ObliviateError(f"{flag} {spec}: no such GGUF file; check the path")
        return
    if path.is_dir():
        if adapter_folder(spec) is not None:
            checked_adapter_chain(spec, flag)
            return
        if not ((path / "config.json").is_file() or (path / "model" / "config.json").is_file()):
            raise ObliviateError(
                f"{flag} {spec}: a folder without config.json; pass a Hugging Face model "
                "folder or a run directory with a model/ inside"
            )
        return
    if path.exists():
        raise ObliviateError(
            f"{flag} {spec}: a file, not a model; pass a model folder, a run directory or a "
            ".gguf file"
        )
    if _looks_local(spec):
        raise ObliviateError(
            f"{flag} {spec}: no such model folder; check the path (a run directory of "
            "`obliviate finetune` or `unlearn`, or a Hugging Face model folder)"
        )
    cached = hub_cache_dir() / f"models--{spec.replace('/', '--')}"
    if not cached.is_dir():
        raise ObliviateError(
            f"{flag} {spec}: no such local folder (check the path) and no such model in the "
            f"Hugging Face cache ({hub_cache_dir()}); nothing is downloaded at run time, so "
            f"a Hub model is fetched first (huggingface-cli download {spec})"
        )


def adapter_chain(spec: str) -> tuple[list[Path], str]:
    """The adapters ``spec`` stacks, outermost first ([] for anything else), and the model
    spec under them all."""
    folders: list[Path] = []
    while spec not in BUILT_IN and (folder := adapter_folder(spec)) is not None:
        if folder.resolve() in {f.resolve() for f in folders} or len(folders) >= MAX_ADAPTERS:
            raise ObliviateError(
                f"{folders[0]}: its adapters' base models lead back to themselves; fix "
                f"base_model_name_or_path in {folder / ADAPTER_CONFIG}"
            )
        folders.append(folder)
        spec = adapter_base(folder)
    return folders, spec


def checked_adapter_chain(spec: str, flag: str = "--model") -> tuple[list[Path], str]:
    """``adapter_chain(spec)``, refusing in one line a base model that cannot be loaded."""
    folders, base = adapter_chain(spec)
    if folders:
        try:
            check_model_spec(base, flag)
        except ObliviateError:
            raise ObliviateError(
                f"{flag} {spec}: a LoRA adapter over the base model {base}, which is not "
                f"there; put the base model back, or set base_model_name_or_path in "
                f"{folders[-1] / ADAPTER_CONFIG} to where it is now"
            ) from None
    return folders, base


def base_reference(spec: str) -> str:
    """How an adapter trained over ``spec`` names its base model: a built-in name or Hub id
    as it is, a local folder or file by its absolute path (so the adapter may be moved)."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if spec not in BUILT_IN and path.exists() else spec
