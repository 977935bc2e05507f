"""What a Python user holds, as the workflows' paths: a loaded model, records in memory.

The workflows read paths (a model directory, a record file), as the command line gives
them; a Python user often holds a loaded ``transformers`` model and its tokenizer, and
records as a list of dicts or a ``datasets.Dataset``. ``in_memory`` lets a workflow take
either: each object is saved once into a temporary folder (``save_pretrained`` for the
model and tokenizer; JSON Lines for records, read back by ``data.loaders`` like any
file; a dict of such records as a folder of ``NAME.jsonl`` split files), the workflow
runs on those paths, and the folder is removed. What the run records names the objects
(``in-memory LlamaForCausalLM``, ``records (list of 16)``), not the folder: the
workflows pass what they write through ``named``. The content-hash caches keep working,
since they hash the saved files, not where they are. The user's weights are only read
(``save_pretrained`` notes the architecture and dtype in its config).
"""

from __future__ import annotations

import functools
import inspect
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from obliviate.data.loaders import without_nulls
from obliviate.errors import ObliviateError
from obliviate.models.loader import LoadedModel, save_model

Workflow = TypeVar("Workflow", bound=Callable[..., Any])
Value = TypeVar("Value")

#: The running call's temporary paths → the names its run records for them.
_LABELS: ContextVar[dict[str, str] | None] = ContextVar("in_memory_labels", default=None)


def named(value: Value) -> Value:
    """``value`` (a string, or dicts and lists holding strings) with every temporary path
    of the running call's in-memory inputs replaced by the name of what it holds."""
    labels = _LABELS.get()
    if not labels:
        return value
    return _replaced(value, sorted(labels.items(), key=lambda item: -len(item[0])))


def _replaced(value: Any, labels: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for path, label in labels:
            value = value.replace(path, label)
        return value
    if isinstance(value, dict):
        return {key: _replaced(item, labels) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_replaced(item, labels) for item in value)
    return value


def file_label(path: str | Path) -> str:
    """How results name a record file: its file name, or what an in-memory input held."""
    return (_LABELS.get() or {}).get(str(path), Path(path).name)


def in_memory(
    models: Sequence[str] = (),
    records: Sequence[str] = (),
    path_only: Sequence[str] = (),
    model_lists: Sequence[str] = (),
    splits: Sequence[str] = (),
) -> Callable[[Workflow], Workflow]:
    """Let a workflow's ``models`` arguments take a loaded ``PreTrainedModel`` (with the
    keyword ``tokenizer`` this adds, or as a ``(model, tokenizer)`` pair) and its
    ``records`` arguments a list of dicts or a ``datasets.Dataset``; paths pass through.
    ``model_lists`` arguments are lists of models (one per request), each taken as a
    ``models`` argument is; ``splits`` arguments are a folder of split files or a dict of
    split name → records. The options ``path_only``, given, need the models as paths (a
    kept LoRA adapter names the folder of the model it goes over, which must outlive the
    call)."""

    def decorate(workflow: Workflow) -> Workflow:
        signature = inspect.signature(workflow)

        @functools.wraps(workflow)
        def run(*args: Any, tokenizer: Any = None, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            chosen = [name for name in path_only if bound.arguments.get(name)]
            given = [bound.arguments.get(name) for name in models]
            if chosen and not all(isinstance(m, str | Path | None) for m in given):
                raise ObliviateError(
                    f"{chosen[0]} needs the model as a path (a saved model folder), not a "
                    "loaded model"
                )
            with _Folder(tokenizer) as folder:
                for name in models:
                    if name in bound.arguments:
                        bound.arguments[name] = folder.model(name, bound.arguments[name])
                for name in model_lists:
                    if bound.arguments.get(name) is not None:
                        bound.arguments[name] = folder.models(name, bound.arguments[name])
                for name in records:
                    if name in bound.arguments:
                        bound.arguments[name] = folder.records(name, bound.arguments[name])
                for name in splits:
                    if name in bound.arguments:
                        bound.arguments[name] = folder.splits(name, bound.arguments[name])
                if tokenizer is not None and not folder.saved_models:
                    raise ObliviateError("tokenizer= goes with a loaded model; none was given")
                if not folder.labels:
                    return workflow(*bound.args, **bound.kwargs)
                token = _LABELS.set((_LABELS.get() or {}) | folder.labels)
                try:
                    return workflow(*bound.args, **bound.kwargs)
                except ObliviateError as exc:  # name the inputs, not the temporary folder
                    message = named(str(exc))
                    if message == str(exc):
                        raise
                    raise ObliviateError(message) from None
                finally:
                    _LABELS.reset(token)

        wider = {name: MODEL for name in models} | {name: RECORDS for name in records}
        wider |= {name: f"list[str | {MODEL}]" for name in model_lists}
        wider |= {name: f"dict[str, {RECORDS}]" for name in splits}
        run.__signature__ = _widened(signature, wider)  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate


#: What an in-memory model or records argument also takes (shown in the signature).
MODEL = "PreTrainedModel | tuple[PreTrainedModel, Any]"
RECORDS = "list[dict] | datasets.Dataset"


def _widened(signature: inspect.Signature, extra: dict[str, str]) -> inspect.Signature:
    """``signature`` as the user may call it: the wider argument types and ``tokenizer``."""
    parameters = [
        p.replace(annotation=f"{p.annotation} | {extra[p.name]}") if p.name in extra else p
        for p in signature.parameters.values()
    ]
    tokenizer = inspect.Parameter(
        "tokenizer", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="Any"
    )
    return signature.replace(parameters=[*parameters, tokenizer])


class _Folder:
    """The temporary folder of one call's in-memory inputs (made when first needed) and
    the name of each path in it."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.labels: dict[str, str] = {}
        self._root: Path | None = None
        self._saved: dict[int, str] = {}  # id of a model → its folder: saved once per call

    @property
    def saved_models(self) -> int:
        return len(self._saved)

    def __enter__(self) -> _Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    def _path(self, name: str) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="obliviate-inputs-")).resolve()
        return self._root / name

    def model(self, role: str, value: Any) -> Any:
        """A loaded model's folder (saved with its tokenizer); a path as a string (what
        the workflows record); a spec as given."""
        if value is None or isinstance(value, str | Path):
            return value if value is None else str(value)
        from transformers import PreTrainedModel

        model, tokenizer = value if isinstance(value, tuple) else (value, self.tokenizer)
        if not isinstance(model, PreTrainedModel):
            raise ObliviateError(
                f"{role}: expected a model name or path, or a loaded transformers model "
                f"(PreTrainedModel), not a {type(value).__name__}"
            )
        if id(model) in self._saved:  # saved with its tokenizer already in this call
            return self._saved[id(model)]
        if tokenizer is None:
            raise ObliviateError(
                f"{role}: a loaded model needs its tokenizer: pass tokenizer=..., or the "
                "pair (model, tokenizer)"
            )
        path = self._path(role)
        origin = str(getattr(model, "name_or_path", "") or "")
        save_model(LoadedModel(model, tokenizer, spec=origin, source=origin), path)
        if origin:  # a manifest naming where it came from: its base's recipe applies
            (path / "manifest.json").write_text(json.dumps({"model": {"spec": origin}}))
        self.labels[str(path)] = f"in-memory {type(model).__name__}" + (
            f" (loaded from {origin})" if origin else ""
        )
        self._saved[id(model)] = str(path)
        return str(path)

    def models(self, role: str, value: Any) -> list[Any]:
        """A list of models, each as ``model`` takes it (``oracles-1``, ``oracles-2`` …)."""
        if isinstance(value, str | Path) or not isinstance(value, Sequence):
            raise ObliviateError(f"{role}: expected a list of models, not a {type(value).__name__}")
        return [self.model(f"{role}-{k}", item) for k, item in enumerate(value, 1)]

    def splits(self, role: str, value: Any) -> Any:
        """A dict of split name → records as a folder of ``NAME.jsonl`` files; a path as given."""
        if value is None or isinstance(value, str | Path):
            return value
        if not isinstance(value, Mapping):
            raise ObliviateError(
                f"{role}: expected a folder or a dict of split name → records, not a "
                f"{type(value).__name__}"
            )
        folder = self._path(role)
        folder.mkdir()
        for name, records in value.items():
            if not isinstance(name, str) or not name.replace("_", "").isalnum():
                raise ObliviateError(f"{role}: split names are words (harmful_train), not {name!r}")
            if records is None or isinstance(records, str | Path):
                raise ObliviateError(f"{role}: split {name} needs records, not a path")
            self._write(f"{role}[{name}]", records, folder / f"{name}.jsonl")
        self.labels[str(folder)] = f"splits (dict of {', '.join(value)})"
        return str(folder)

    def records(self, role: str, value: Any) -> Any:
        """In-memory records as a JSON Lines file; a path as given."""
        if value is None or isinstance(value, str | Path):
            return value
        path = self._path(f"{role}.jsonl")
        self.labels[str(path)] = self._write(role, value, path)
        return str(path)

    @staticmethod
    def _write(role: str, value: Any, path: Path) -> str:
        """Write records (a list of dicts, a Dataset) to ``path``; how a run names them."""
        datasets = sys.modules.get("datasets")  # a Dataset exists only once it is imported
        if datasets is not None and isinstance(value, datasets.Dataset):
            kind = "Dataset"
            value = [without_nulls(row) for row in value]
        elif isinstance(value, list | tuple):
            kind = "list"
        else:
            raise ObliviateError(
                f"{role}: expected a path, a list of dicts or a datasets.Dataset, not a "
                f"{type(value).__name__}"
            )
        lines = []
        for number, row in enumerate(value, 1):
            if not isinstance(row, Mapping):
                raise ObliviateError(
                    f"{role}: record {number} is a {type(row).__name__}, not a dict"
                )
            try:
                lines.append(json.dumps(dict(row), ensure_ascii=False) + "\n")
            except (TypeError, ValueError) as exc:
                raise ObliviateError(f"{role}: record {number} is not JSON ({exc})") from None
        path.write_text("".join(lines), encoding="utf-8")
        return f"records ({kind} of {len(lines)})"
