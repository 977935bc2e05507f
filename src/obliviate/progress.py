"""Progress bars with ETA for long steps (rich), silenced with ``OBLIVIATE_QUIET=1`` and
on every process of a distributed run but the main one (rank 0)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def quiet() -> bool:
    return (
        os.environ.get("OBLIVIATE_QUIET", "") not in ("", "0")
        or os.environ.get("RANK", "0") != "0"  # set by torchrun and accelerate launch
    )


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(completed=None, **fields)``: moves a bar showing ETA and the last loss."""
    if quiet():
        yield lambda *args, **kwargs: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(completed: int | None = None, info: str = "") -> None:
            if completed is None:
                bar.advance(task)
            else:
                bar.update(task, completed=completed)
            if info:
                bar.update(task, info=info)

        yield advance


def say(message: str) -> None:
    if not quiet():
        console.print(message)


def warn(message: str) -> None:
    """A warning on the terminal, shown even when quiet (once: by the main process)."""
    if os.environ.get("RANK", "0") == "0":
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
