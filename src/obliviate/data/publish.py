"""Write a generated benchmark directory in one step, or not at all.

A benchmark half-written by an interrupted call would be trained on by the next run
without anyone noticing, so the files go to a staging directory beside ``out`` and are
renamed into place at once.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from obliviate.errors import ObliviateError


def publish_files(out: str | Path, files: dict[str, bytes], what: str) -> Path:
    """Write ``files`` (file name → content) as the directory ``out``; return its path.

    An existing non-empty ``out`` is refused (it may hold someone's data), unless it
    already holds exactly these files, byte for byte, in which case nothing is written:
    making the same benchmark twice is harmless. ``what`` names the benchmark in the error.
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ObliviateError(f"{out} is a file; give a directory path for the benchmark")
    if out.is_dir() and any(out.iterdir()):
        present = sorted(p.name for p in out.iterdir())
        if present == sorted(files) and all(
            (out / name).is_file() and (out / name).read_bytes() == data
            for name, data in files.items()
        ):
            return out
        raise ObliviateError(
            f"{out} already exists and is not empty (and is not {what}); "
            "choose a new or empty directory"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    # mkdir (not mkdtemp) so the directory gets the user's usual permissions.
    staging = out.parent / f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    staging.mkdir()
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        if out.is_dir():
            out.rmdir()  # empty: replaced by the finished directory
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
