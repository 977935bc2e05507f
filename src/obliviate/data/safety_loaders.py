"""The data SKU and Yao et al. unlearn with, read from the user's own files.

Nothing of either data set is shipped or downloaded; these functions turn local copies
into records that ``obliviate unlearn`` and the behaviour figures take:

- **PKU-SafeRLHF** (Ji et al., 2023): rows of ``prompt``, ``response_0``, ``response_1``,
  ``is_response_0_safe``, ``is_response_1_safe``. Every *unsafe* response becomes a
  forget pair (prompt → response), as Yao et al.'s and SKU's code take them; safe ones
  are left out, and so is an empty response (nothing to forget). Read from ``.jsonl``,
  ``.json``, ``.parquet``, ``.csv`` or a ``datasets`` ``save_to_disk`` directory.
- **TruthfulQA** (Lin et al., 2022): the CSV with the v0 columns ``Question``, ``Best
  Answer``, ``Correct Answers``, ``Incorrect Answers``. Each row becomes a normal record:
  the question answered with the best answer; the incorrect answers (``;``-separated) are
  its ``perturbed`` answers and the correct ones are kept as ``correct_answers``.

A missing file or column stops the load with one line naming the file and what is missing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from obliviate.data.records import Record
from obliviate.errors import ObliviateError

__all__ = ["PKU_COLUMNS", "TRUTHFULQA_COLUMNS", "load_pku_saferlhf", "load_truthfulqa"]

PKU_COLUMNS = ("prompt", "response_0", "response_1", "is_response_0_safe", "is_response_1_safe")
TRUTHFULQA_COLUMNS = ("Question", "Best Answer", "Correct Answers", "Incorrect Answers")
PKU_FORMATS = ".jsonl, .json, .parquet, .csv or a datasets directory"


def load_pku_saferlhf(path: str | Path) -> list[Record]:
    """The unsafe responses of PKU-SafeRLHF rows as forget records, ids ``pku-<row>-<k>``
    (row counted from 0, ``k`` the response's number)."""
    path = Path(path).expanduser()
    columns, rows = _read_rows(path)
    _require(path, "PKU-SafeRLHF", columns, PKU_COLUMNS)
    records = []
    for i, row in enumerate(rows):
        where = f"{path}: row {i}"
        for k in (0, 1):
            response = row.get(f"response_{k}")
            if _is_safe(row.get(f"is_response_{k}_safe"), f"{where}, is_response_{k}_safe"):
                continue
            if not isinstance(response, str) or not response.strip():
                continue
            obj = {
                "id": f"pku-{i}-{k}",
                "prompt": row.get("prompt"),
                "answer": response,
                "source": "PKU-SafeRLHF",
            }
            records.append(Record.from_json(obj, where))
    if not records:
        raise ObliviateError(f"{path}: no unsafe responses in these rows; nothing to forget")
    return records


def load_truthfulqa(path: str | Path) -> list[Record]:
    """TruthfulQA's CSV as normal records, ids ``truthfulqa-<row>`` (counted from 0)."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".csv":
        raise ObliviateError(f"{path}: TruthfulQA is read from its CSV file (TruthfulQA.csv)")
    columns, rows = _read_rows(path)
    _require(path, "TruthfulQA", columns, TRUTHFULQA_COLUMNS)
    records = []
    for i, row in enumerate(rows):
        obj = {
            "id": f"truthfulqa-{i}",
            "prompt": row["Question"] or None,
            "answer": row["Best Answer"] or None,
            "perturbed": _answers(row["Incorrect Answers"]),
            "correct_answers": _answers(row["Correct Answers"]),
            "source": "TruthfulQA",
        }
        records.append(Record.from_json(obj, f"{path}: row {i}"))
    return records


def _answers(cell: str | None) -> list[str]:
    """TruthfulQA's ``;``-separated answer lists."""
    return [a.strip() for a in (cell or "").split(";") if a.strip()]


def _require(path: Path, what: str, columns: Sequence[str], needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ObliviateError(
            f"{path}: {what} rows need the column(s) {', '.join(missing)}; "
            f"found {', '.join(columns) or 'none'}"
        )


def _is_safe(value: Any, where: str) -> bool:
    """A safety flag as PKU-SafeRLHF's files write it (a boolean; text or 0/1 in a CSV)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in ("true", "1", "1.0"):
        return True
    if text in ("false", "0", "0.0"):
        return False
    raise ObliviateError(f"{where}: {value!r} is not a safety flag; write true or false")


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and rows of a local table file (see ``PKU_FORMATS``)."""
    if not path.exists():
        raise ObliviateError(f"{path}: no such file or directory; check the path")
    suffix = path.suffix.lower()
    if path.is_dir():
        columns, rows = _dataset_rows(path)
    elif suffix == ".csv":
        columns, rows = _csv_rows(path)
    elif suffix == ".parquet":
        columns, rows = _parquet_rows(path)
    elif suffix in (".jsonl", ".json"):
        columns, rows = _json_rows(path)
    else:
        raise ObliviateError(f"{path}: unsupported file type; use {PKU_FORMATS}")
    if not rows:
        raise ObliviateError(f"{path}: no rows found (empty)")
    return columns, rows


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        rows = [{k.strip(): v for k, v in row.items() if k is not None} for row in reader]
        return [c.strip() for c in reader.fieldnames or []], rows


def _parquet_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.read_table(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise ObliviateError(f"{path}: not a readable parquet file ({e})") from None
    return list(table.column_names), table.to_pylist()


def _json_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """A JSON array of objects, or one object per line; the columns are every key used."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise ObliviateError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not all(isinstance(row, dict) for row in rows):
        raise ObliviateError(f"{path}: expected one JSON object per row")
    return list(dict.fromkeys(k for row in rows for k in row)), rows


def _dataset_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The rows of one split written by ``datasets``' ``save_to_disk``."""
    import datasets  # slow to import; only this format needs it

    try:
        dataset = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises many types; say which directory failed
        raise ObliviateError(f"{path}: could not load the datasets directory ({e})") from None
    if isinstance(dataset, datasets.DatasetDict):
        raise ObliviateError(
            f"{path}: a DatasetDict with splits {', '.join(dataset)}; pass one split's directory"
        )
    return list(dataset.column_names), list(dataset)
