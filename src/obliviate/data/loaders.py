"""Read and write record files: the one door through which user data enters a run.

Users arrive with data in whatever shape their tools wrote it: our JSON Lines format,
TOFU's ``.json`` files (JSON Lines under a ``.json`` name), a JSON array, a spreadsheet
exported to CSV, a Parquet file, a Hugging Face ``datasets`` directory, TRL's
prompt/completion rows, chat ``messages`` rows, or plain text (a ``.txt`` file or a folder
of them, one passage per file; see ``text``). Every shape is decoded to
plain objects here and validated by one function, :meth:`Record.from_json`, so a record
means the same thing whatever file it came from. A bad file stops the run before any
model is loaded, with one line naming the file, the line (or row, or item) and the field.

TOFU's own fields map onto ours: ``question`` → ``prompt``, ``perturbed_answer`` →
``perturbed``; ``answer`` and ``paraphrased_answer`` keep their names. TRL's
``{"prompt", "completion"}`` (strings, or lists of chat messages) is a question and its
answer; a chat row ``{"messages": [...]}`` is the last user turn and the assistant turn
that follows it (system turns and earlier turns are not part of a fact and are dropped).
Records without an
``id`` (TOFU's have none, nor need a JSONL of plain ``{"text"}`` rows) get
``"<file stem>-<row index>"``, counting rows from 0 as TOFU does; a ``.txt`` file's
passage is named by the file's stem.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from obliviate.data.records import Record
from obliviate.data.text import read_text_file, read_text_folder
from obliviate.errors import ObliviateError

__all__ = ["SUPPORTED_FORMATS", "load_records", "load_split", "save_records"]

#: What :func:`load_records` reads; named in the error for anything else.
SUPPORTED_FORMATS = (
    ".jsonl",
    ".json",
    ".csv",
    ".parquet",
    ".txt",
    "a folder of .txt files",
    "a datasets directory (save_to_disk)",
)

#: TOFU's field names → ours. ``answer`` and ``paraphrased_answer`` are the same in both.
TOFU_FIELDS = {"question": "prompt", "perturbed_answer": "perturbed"}

#: CSV columns that hold lists: a JSON array string, or values separated by ``|``.
CSV_LIST_COLUMNS = frozenset({"paraphrases", "perturbed", "perturbed_answer"})

#: CSV columns that hold a JSON object string.
CSV_OBJECT_COLUMNS = frozenset({"probes"})


def load_records(source: str | Path) -> list[Record]:
    """Load and validate every record of a file, a folder of ``.txt`` files or a
    ``datasets`` directory.

    Accepts ``.jsonl``, ``.json`` (an array, or JSON Lines as TOFU writes them), ``.csv``,
    ``.txt`` (one passage), a folder of ``.txt`` files and a directory written by
    ``datasets.Dataset.save_to_disk``. Text records and fact records may be mixed.
    Everything is checked up front (types, required fields, unique ids) so that a long
    run never fails half-way on a typo in line 3,000.

    Raises:
        ObliviateError: one line naming the file, the line/row/item and the field.
    """
    path = Path(source)
    if not path.exists():
        raise ObliviateError(f"{path}: no such file or directory; check the path")
    if path.is_dir() and _is_text_folder(path):
        rows = read_text_folder(path)
    elif path.is_dir():
        rows = _read_dataset_dir(path)
    else:
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            rows = _read_jsonl(path)
        elif suffix == ".json":
            rows = _read_json(path)
        elif suffix == ".csv":
            rows = _read_csv(path)
        elif suffix == ".parquet":
            rows = _read_parquet(path)
        elif suffix == ".txt":
            rows = iter([read_text_file(path)])
        else:
            raise ObliviateError(
                f"{path}: unsupported file type '{path.suffix or '(none)'}'; "
                f"use one of: {', '.join(SUPPORTED_FORMATS)}"
            )
    try:
        records = _validate(rows, path.stem)
    except UnicodeDecodeError:
        raise ObliviateError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as e:
        raise ObliviateError(f"{path}: cannot read ({e.strerror or e}); check the file") from None
    if not records:
        raise ObliviateError(f"{path}: no records found (empty); add at least one record")
    return records


def save_records(path: str | Path, records: Iterable[Record]) -> None:
    """Write records as JSON Lines, atomically, in a form :func:`load_records` reads back.

    The file is written to a temporary name in the same directory and moved over the
    target with ``os.replace``, so a crash or a full disk never leaves a half-written
    file that a later run would read as data. Non-ASCII text is written as is
    (``ensure_ascii=False``) so the file stays readable. Duplicate ids are refused
    here rather than producing a file that cannot be loaded.

    Raises:
        ObliviateError: when the name is not ``.jsonl``/``.json`` or ids repeat.
    """
    path = Path(path)
    if path.suffix.lower() not in (".jsonl", ".json"):
        raise ObliviateError(
            f"{path}: save_records writes JSON Lines; name the file '.jsonl' (or '.json')"
        )
    lines: list[str] = []
    seen: dict[str, int] = {}
    for n, record in enumerate(records, start=1):
        if record.id in seen:
            raise ObliviateError(
                f"{path}: record {n} has field 'id' {record.id!r}, already used by record "
                f"{seen[record.id]}; give each record a unique id"
            )
        seen[record.id] = n
        lines.append(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with 0o666 honours the umask, unlike mkstemp's 0o600.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_split(bench_dir: str | Path, split: str) -> list[Record]:
    """Load ``bench_dir/<split>.jsonl``, one split of a benchmark directory.

    A benchmark (built in or the user's) is a directory of JSONL files, one per split
    (``forget``, ``retain``, ...). A wrong split name is the likely mistake, so the error
    lists the splits that do exist.
    """
    bench = Path(bench_dir)
    if not bench.is_dir():
        raise ObliviateError(f"{bench}: benchmark directory not found; check the path")
    if not split or Path(split).name != split or split in (".", ".."):
        raise ObliviateError(f"{bench}: split {split!r} is not a split name; use e.g. 'forget'")
    path = bench / f"{split}.jsonl"
    if not path.is_file():
        available = sorted(p.stem for p in bench.glob("*.jsonl") if p.is_file())
        listing = ", ".join(available) if available else "none (no .jsonl files)"
        raise ObliviateError(
            f"{path}: split {split!r} not found; available splits in {bench}: {listing}"
        )
    return load_records(path)


def _validate(rows: Iterable[tuple[str, Any]], stem: str) -> list[Record]:
    """Map TOFU fields, build each record through ``Record.from_json``, refuse repeated ids."""
    records: list[Record] = []
    first_seen: dict[str, str] = {}
    for index, (where, obj) in enumerate(rows):
        _check_text(obj, where)
        obj = _from_chat(_from_tofu(obj, where), where)
        record = Record.from_json(obj, where, default_id=f"{stem}-{index}")
        if record.id in first_seen:
            raise ObliviateError(
                f"{where}: field 'id' {record.id!r} is a duplicate of {first_seen[record.id]}; "
                "give each record a unique id"
            )
        first_seen[record.id] = where
        records.append(record)
    return records


def _check_text(value: Any, where: str, field: str = "") -> None:
    """Refuse strings that are not text: bytes that were not UTF-8 (read as lone surrogates
    by the readers' ``surrogateescape``) and JSON's lone ``\\ud800`` escapes, which would
    fail much later, inside the tokenizer, with a traceback."""
    if isinstance(value, str):
        if value.isascii():
            return
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            code = ord(value[error.start])
            named = f"field '{field}'" if field else "a value"
            what = (
                f"holds the byte 0x{code - 0xDC00:02x}, which is not UTF-8; save the file as UTF-8"
                if 0xDC80 <= code <= 0xDCFF
                else f"holds a lone surrogate (\\u{code:04x}) that is no character; fix the text"
            )
            raise ObliviateError(f"{where}: {named} {what}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where, field)
            _check_text(item, where, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for item in value:
            _check_text(item, where, field)


# -- readers: each yields (where, decoded object) with `where` naming file and line ------


def _read_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    """JSON Lines: one value per line, blank lines skipped, 1-based line numbers."""
    # Bytes that are not UTF-8 become lone surrogates, refused with their line (_check_text).
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ObliviateError(
                    f"{where}: not valid JSON ({e.msg} at column {e.colno}); "
                    "each line must be one JSON object"
                ) from None
            yield where, obj


def _read_json(path: Path) -> Iterator[tuple[str, Any]]:
    """A JSON array of objects, one object, or JSON Lines under a ``.json`` name (TOFU)."""
    text = path.read_text(encoding="utf-8-sig", errors="surrogateescape")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise ObliviateError(
                f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno}); "
                "fix the JSON array"
            ) from None
        if not isinstance(items, list):  # pragma: no cover - '[' always decodes to a list
            raise ObliviateError(f"{path}: expected a JSON array of objects")
        for i, obj in enumerate(items):
            yield f"{path}: item [{i}]", obj
        return
    try:
        obj = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        obj = None  # several values: JSON Lines, as TOFU's .json files are
    if isinstance(obj, dict):
        yield f"{path}:1", obj
        return
    yield from _read_jsonl(path)


def _read_csv(path: Path) -> Iterator[tuple[str, Any]]:
    """CSV with a header row of field names; empty cells are absent, lists are split.

    Line numbers are the physical line where each row starts, so a cell with an
    embedded newline does not shift the numbers of the rows after it.
    """
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise ObliviateError(f"{path}:1: unreadable CSV header ({e})") from None
        columns = [c.strip() for c in header]
        for i, name in enumerate(columns):
            if not name:
                raise ObliviateError(
                    f"{path}:1: column {i + 1} of the header has no name; name every column"
                )
            if name in columns[:i]:
                raise ObliviateError(
                    f"{path}:1: column '{name}' appears twice in the header; keep one"
                )
        while True:
            lineno = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise ObliviateError(f"{path}:{lineno}: unreadable CSV row ({e})") from None
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{lineno}"
            if len(row) > len(columns):
                raise ObliviateError(
                    f"{where}: row has {len(row)} cells but the header has {len(columns)} "
                    "columns; quote cells that contain commas"
                )
            obj: dict[str, Any] = {}
            for name, cell in zip(columns, row, strict=False):
                if not cell.strip():
                    continue
                obj[name] = _csv_cell(cell, name, where)
            yield where, obj


def _csv_cell(cell: str, name: str, where: str) -> Any:
    """Decode one CSV cell: lists from a JSON array or ``a|b|c``, objects from JSON."""
    if name in CSV_LIST_COLUMNS:
        if cell.lstrip().startswith("["):
            try:
                return json.loads(cell)
            except json.JSONDecodeError as e:
                raise ObliviateError(
                    f"{where}: field '{name}' is not a valid JSON array ({e.msg}); "
                    "write a JSON array or separate values with '|'"
                ) from None
        return [part.strip() for part in cell.split("|")]
    if name in CSV_OBJECT_COLUMNS:
        try:
            return json.loads(cell)
        except json.JSONDecodeError as e:
            raise ObliviateError(
                f"{where}: field '{name}' is not a valid JSON object ({e.msg}); "
                'write it as {"multihop": {"prompt": ..., "answer": ...}}'
            ) from None
    return cell


def _read_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    """A Parquet file (what ``datasets`` and pandas write): rows become objects."""
    import pyarrow.parquet as pq  # installed with datasets; slow to import, so only here

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types; say which file failed
        raise ObliviateError(f"{path}: not a readable Parquet file ({e})") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}: row {i}", without_nulls(row)


def without_nulls(row: dict[str, Any]) -> dict[str, Any]:
    """An Arrow row (Parquet, a ``datasets`` Dataset) without the None Arrow puts where a
    row lacks a field, nested fields too (one schema holds every row): absent, as in JSON."""
    return {
        k: without_nulls(v) if isinstance(v, dict) else v for k, v in row.items() if v is not None
    }


def _is_text_folder(path: Path) -> bool:
    """A folder of ``.txt`` files that is no ``datasets`` directory."""
    is_dataset = any((path / name).is_file() for name in ("state.json", "dataset_dict.json"))
    return not is_dataset and any(p.is_file() for p in path.glob("*.txt"))


def _read_dataset_dir(path: Path) -> Iterator[tuple[str, Any]]:
    """A ``datasets`` directory: rows become objects; a DatasetDict must name its split."""
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))
            names = ", ".join(splits["splits"])
        except (OSError, ValueError, KeyError, TypeError):
            names = ", ".join(sorted(p.name for p in path.iterdir() if p.is_dir()))
        raise ObliviateError(
            f"{path}: a DatasetDict with splits {names}; pass one split's directory, "
            f"e.g. {path / names.split(', ')[0]}"
        )
    if not (path / "state.json").is_file():
        raise ObliviateError(
            f"{path}: a directory with no .txt files, and not one written by datasets' "
            "save_to_disk (no state.json); put one passage per .txt file in it, or pass a "
            f"file ({', '.join(SUPPORTED_FORMATS[:4])})"
        )
    import datasets  # slow to import; only this format needs it

    try:
        dataset = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types; say which file failed
        raise ObliviateError(f"{path}: could not load the datasets directory ({e})") from None
    if isinstance(dataset, datasets.DatasetDict):  # pragma: no cover - caught above
        raise ObliviateError(
            f"{path}: a DatasetDict with splits {', '.join(dataset)}; pass DIR/<split>"
        )
    for i, row in enumerate(dataset):
        yield f"{path}: row {i}", without_nulls(row)


def _message_text(message: Any, where: str, role: str) -> str:
    """The text of one chat message (``{"role", "content"}``); content may be a string or
    a list of parts with ``text``, as multimodal chat formats write it."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        raise ObliviateError(f"{where}: a {role} message has no text 'content'; give it one")
    return content


def _last_turn(messages: Any, where: str, field: str) -> tuple[str | None, str | None]:
    """The last user message and the assistant message after it, from a message list."""
    if not isinstance(messages, list) or not messages:
        raise ObliviateError(
            f'{where}: field \'{field}\' must be a list of {{"role", "content"}} messages'
        )
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    answer_at = max((i for i, r in enumerate(roles) if r == "assistant"), default=None)
    before = roles[:answer_at] if answer_at is not None else roles
    user_at = max((i for i, r in enumerate(before) if r == "user"), default=None)
    user = None if user_at is None else _message_text(messages[user_at], where, "user")
    answer = None if answer_at is None else _message_text(messages[answer_at], where, "assistant")
    return user, answer


def _from_chat(obj: Any, where: str) -> Any:
    """TRL's prompt/completion and chat ``messages`` rows as ``prompt`` and ``answer``."""
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    if "messages" in out and "prompt" not in out:
        prompt, answer = _last_turn(out.pop("messages"), where, "messages")
        if prompt is None or answer is None:
            raise ObliviateError(
                f"{where}: field 'messages' needs a user turn followed by an assistant turn "
                "(the question and the answer to forget or keep)"
            )
        return out | {"prompt": prompt, "answer": answer}
    if "completion" in out and "answer" not in out:
        completion = out.pop("completion")
        if isinstance(completion, list):
            completion = _last_turn(completion, where, "completion")[1]
        prompt = out.get("prompt")
        if isinstance(prompt, list):
            prompt = _last_turn(prompt, where, "prompt")[0]
        return out | {"prompt": prompt, "answer": completion}
    return out


def _from_tofu(obj: Any, where: str) -> Any:
    """Rename TOFU's fields to ours; a record holding both names must agree on the value."""
    if not isinstance(obj, dict) or not any(k in obj for k in TOFU_FIELDS):
        return obj
    out = dict(obj)
    for theirs, ours in TOFU_FIELDS.items():
        if theirs not in out:
            continue
        value = out.pop(theirs)
        if ours in out and out[ours] != value:
            raise ObliviateError(
                f"{where}: fields '{theirs}' (TOFU) and '{ours}' both present and different; "
                "keep one"
            )
        out[ours] = value
    return out
