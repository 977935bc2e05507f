"""``obliviate report``: compare evaluation and audit runs in one HTML page and a Markdown
summary.

The page is self-contained (inline CSS, plots as PNG data URLs, no script, no external
URL), so it can be mailed, attached to a CI run or opened from disk years later.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from obliviate.errors import ObliviateError
from obliviate.report import html, markdown
from obliviate.report.load import load_models

__all__ = ["write_report"]


def write_report(runs: list[Path], out: Path) -> tuple[Path, Path]:
    """Read RUN/results.json of each run directory, write one self-contained HTML file at
    ``out`` and a Markdown summary beside it (same stem, .md). Returns (html_path, md_path).

    Raises ObliviateError for an empty list, a run without a readable results.json or
    one with neither ``splits`` (eval) nor ``attacks`` (audit). Both files are written
    atomically: a reader never sees half.
    """
    out = Path(out)
    if out.suffix.lower() == ".md":
        raise ObliviateError(f"--out {out} ends in .md, the summary's name; give an .html path")
    if out.is_dir():
        raise ObliviateError(f"--out {out} is a directory; give a file path such as report.html")
    models = load_models([Path(run) for run in runs])
    page = html.render(models)
    summary = markdown.render(models)
    md_path = out.with_suffix(".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, page)
    _write_atomic(md_path, summary)
    return out, md_path


def _write_atomic(path: Path, text: str) -> None:
    """Write a temporary file in the same directory, then rename it over ``path``.

    The temporary file is opened normally (not with ``mkstemp``), so the report gets the
    user's usual permissions rather than owner-only ones.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
