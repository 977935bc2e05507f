"""The ``obliviate`` command line: thin typer commands over ``obliviate.api``.

``app`` holds the commands (``bench``, ``training`` and ``evaluation`` register theirs on
it); ``main`` is the console script. Errors a user can fix print one line and exit with
status 2.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from rich.markup import escape

from obliviate.cli import bench, evaluation, training, tune  # noqa: F401 (they register commands)
from obliviate.cli.app import app
from obliviate.errors import ObliviateError
from obliviate.progress import console
from obliviate.rundir import disk_full_error

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: user errors become one line and exit status 2."""
    try:
        app()
    except ObliviateError as exc:
        message = escape(" ".join(str(exc).split()))  # printed as is: obliviate[tracking]
        console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        _exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except (OSError, RuntimeError) as exc:
        full = disk_full_error(exc, getattr(exc, "filename", None) or "the output")
        if full is None:
            raise
        console.print(f"[red]error:[/red] {full}", highlight=False, soft_wrap=True)
        _exit(2)
    except SystemExit as done:  # typer ends every command with one
        if _caused_by_interrupt(done):  # typer turns a Ctrl-C into exit 130 itself
            _interrupted()
        if isinstance(done.code, str):
            console.print(done.code, highlight=False)
        _exit(1 if isinstance(done.code, str) else done.code or 0)
    _exit(0)


def _caused_by_interrupt(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _interrupted() -> NoReturn:
    console.print(
        "interrupted; nothing was published. Re-run with --resume to continue.",
        highlight=False,
    )
    _exit(130)


def _exit(code: int) -> NoReturn:
    """Exit with ``code``. A process of a distributed launch leaves its process group and
    ends at once, without the interpreter's teardown: there gloo's threads could still be
    joinable when C++'s static destructors run, and abort a run that had succeeded
    ("terminate called without an active exception", seen in CI after a resumed FSDP run).
    Everything a run writes is closed and renamed into place before this point."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from obliviate.train.distributed import leave_process_group

        leave_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
