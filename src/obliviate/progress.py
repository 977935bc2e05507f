"""Progress bars with ETA for long steps, silenced with ``OBLIVIATE_QUIET=1`` and on every
process of a distributed run but the main one (rank 0).

On a terminal a bar is drawn in place (rich). Without one (a log, a pipe, CI) a drawn bar
would show nothing until its end, so each bar prints a plain line instead, at its start,
when what it runs changes, at least every ``PLAIN_EVERY`` seconds (a background thread
wakes for a step that takes longer) and at its end: ``<label> k/N <info>, 1:05 elapsed,
eta 4:10``. A bar opened inside another (an attack's steps within the audit's) shares
its display.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
)
from rich.text import Text

console = Console(stderr=True)

#: Without a terminal, the longest a bar stays silent, in seconds.
PLAIN_EVERY = 30.0

#: The bar on the terminal now; a bar opened while it is shown becomes one of its rows.
_live: Progress | None = None


def quiet() -> bool:
    return (
        os.environ.get("OBLIVIATE_QUIET", "") not in ("", "0")
        or os.environ.get("RANK", "0") != "0"  # set by torchrun and accelerate launch
    )


def _drawn() -> bool:
    """Whether bars are drawn in place: standard error is a terminal that can redraw."""
    return console.is_terminal and not console.is_dumb_terminal


def _now() -> float:
    """The clock of plain progress lines (a function, so that tests can move it)."""
    return time.monotonic()


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta(elapsed: float, completed: float, total: float) -> str:
    """The time left at the pace so far (``?`` before the first step is done).

    The mean over the whole bar, not a recent window: an audit's steps take minutes each,
    and a window shorter than a step has nothing to estimate from."""
    if completed >= total:
        return clock(0)
    return clock(elapsed / completed * (total - completed)) if completed > 0 else "?"


class _TimeColumn(ProgressColumn):
    """``1:05 elapsed, eta 4:10`` on a drawn bar, as the plain lines write it."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        left = eta(elapsed, task.completed, task.total or 0)
        return Text(f"{clock(elapsed)} elapsed, eta {left}", style="progress.remaining")


class PlainProgress:
    """A bar as plain lines: printed when ``PLAIN_EVERY`` seconds have passed since the
    last, when the description (what runs now) changes, and by ``line`` at the start and
    the end."""

    def __init__(self, description: str, total: int) -> None:
        self.description, self.total = description, total
        self.completed, self.info = 0, ""
        self.started = self.last = _now()
        self.lock = threading.RLock()  # the heartbeat thread prints too

    def text(self) -> str:
        elapsed, done = _now() - self.started, self.completed
        info = f" {self.info}" if self.info else ""
        return (
            f"{self.description} {done}/{self.total}{info}, {clock(elapsed)} elapsed, "
            f"eta {eta(elapsed, done, self.total)}"
        )

    def line(self) -> None:
        with self.lock:
            self.last = _now()
            console.print(self.text(), highlight=False, soft_wrap=True)

    def line_if_due(self) -> None:
        with self.lock:
            if _now() - self.last >= PLAIN_EVERY:
                self.line()

    def update(
        self, completed: int | None = None, info: str = "", description: str | None = None
    ) -> None:
        with self.lock:
            self.completed = self.completed + 1 if completed is None else completed
            self.info = info or self.info
            if description and description != self.description:
                self.description = description
                self.line()  # what runs now changed: say so at once
            else:
                self.line_if_due()

    def wait_due(self) -> float:
        """Seconds until the next line is due (at least a tenth of a second)."""
        return max(0.1, self.last + PLAIN_EVERY - _now())


@contextmanager
def _plain_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """Plain lines for a bar, with a thread that prints one when a step runs long."""
    bar = PlainProgress(description, total)
    bar.line()
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(bar.wait_due()):
            bar.line_if_due()

    thread = threading.Thread(target=heartbeat, name="obliviate-progress", daemon=True)
    thread.start()
    try:
        yield bar.update
    finally:
        stop.set()
        thread.join()
        bar.line()


@contextmanager
def _rich_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """A bar drawn on the terminal; inside another, a row of the same display."""
    global _live
    outer = _live
    bar = outer or Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        _TimeColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task(description, total=total, info="")

    def advance(
        completed: int | None = None, info: str = "", description: str | None = None
    ) -> None:
        if completed is None:
            bar.advance(task)
        else:
            bar.update(task, completed=completed)
        if info:
            bar.update(task, info=info)
        if description:
            bar.update(task, description=description)

    if outer is not None:
        try:
            yield advance
        finally:
            bar.remove_task(task)
        return
    _live = bar
    try:
        with bar:
            yield advance
    finally:
        _live = None


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield ``advance(completed=None, info="", description=None)``: one step more (or
    ``completed`` steps in all), with ``info`` (the last loss) and a new ``description``
    (what runs now); the bar shows ``k/N``, the time elapsed and the ETA."""
    if quiet():
        yield lambda *args, **kwargs: None
        return
    with (_rich_bar if _drawn() else _plain_bar)(description, total) as advance:
        yield advance


def say(message: str) -> None:
    """One line of what runs now (a log keeps it whole: no wrapping at 80 columns)."""
    if not quiet():
        console.print(message, soft_wrap=not _drawn())


def warn(message: str) -> None:
    """A warning on the terminal, shown even when quiet (once: by the main process)."""
    if os.environ.get("RANK", "0") == "0":
        console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
