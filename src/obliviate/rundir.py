"""The run directory: everything a run makes, written so it is never left half-written.

A run works in a hidden staging directory next to ``--out`` (``.NAME.partial``), which
also holds its checkpoints; only when everything is written (and synced to the disk) is it
renamed to ``--out`` in one step. An interrupted or failed run leaves ``--out`` untouched
and its staging directory ready for ``--resume``. In a distributed run one process (the
main one) writes it; the others only know its paths.

A run directory belongs to one run: the run holds a lock (``.NAME.lock`` beside it) from
start to publication, so a second run on the same ``--out`` fails at once, and publishing
replaces only an earlier run directory (one with a ``manifest.json``), and only with
``--overwrite``: whatever else appeared at ``--out`` is left alone.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from obliviate.errors import ObliviateError

PACKAGES = ("obliviate", "torch", "transformers", "peft", "accelerate", "datasets", "numpy")


class RunDir:
    """A run's output directory, staged and then published atomically."""

    def __init__(
        self, out: str | Path, overwrite: bool = False, resume: bool = False, writer: bool = True
    ):
        """``writer=False``: another process of a distributed run writes this directory
        (perhaps on another machine); this one names its paths and writes nothing."""
        self.out = Path(out).expanduser().resolve()
        self.overwrite = overwrite
        self.staging = self.out.parent / f".{self.out.name}.partial"
        self.writer = writer
        self.started = time.perf_counter()
        self._lock: FileLock | None = None
        if not writer:
            return
        if self.out.exists() and not self.out.is_dir():
            raise ObliviateError(f"--out {self.out} is a file; give a directory path")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _own(self.out)
        try:
            self._check_out(resume)
        except ObliviateError:
            self.release()
            raise
        if not resume:
            shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def _check_out(self, resume: bool) -> None:
        if self.out.exists() and not self.overwrite:
            raise ObliviateError(
                f"output directory {self.out} already exists; choose another --out "
                "or pass --overwrite to replace it"
            )
        if self.out.exists() and not is_run_dir(self.out):
            raise ObliviateError(
                f"--out {self.out} exists and is no run directory (no manifest.json); "
                "--overwrite replaces only an earlier run: move it away or choose another --out"
            )
        if resume and not self.staging.is_dir():
            raise ObliviateError(
                f"nothing to resume: no interrupted run for {self.out}; run without --resume"
            )

    @property
    def finished(self) -> bool:
        """Whether the staged run was finished (its manifest written) but not published:
        a run killed while publishing, which ``--resume`` publishes."""
        return (self.staging / "manifest.json").is_file() and (
            self.staging / "results.json"
        ).is_file()

    def path(self, name: str) -> Path:
        return self.staging / name

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.path(name)
        if not self.writer:
            return path
        tmp = path.with_suffix(path.suffix + ".tmp")
        with writing(path):
            tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
            os.replace(tmp, path)
        return path

    def write_yaml(self, name: str, obj: Any) -> Path:
        path = self.path(name)
        if self.writer:
            tmp = path.with_suffix(path.suffix + ".tmp")
            with writing(path):
                tmp.write_text(yaml.safe_dump(obj, sort_keys=False))
                os.replace(tmp, path)
        return path

    def finish(
        self,
        results: dict[str, Any],
        config: dict[str, Any] | None,
        manifest: dict[str, Any],
        report: Callable[[list[Path], Path], Any] | None = None,
        relocate: bool = False,
    ) -> Path:
        """The one way a run ends: write ``results.json``, ``config.yaml`` (unless written
        at the start) and ``manifest.json`` (with package versions, peak memory and the
        run's total seconds added where the caller left them out), render ``report`` (a
        writer such as ``report.write_report``) into ``report.html``, and publish.

        ``relocate`` rewrites the staging path as the published one in the run's text
        files, for runs whose files name each other (a sequence's steps)."""
        self.write_json("results.json", results)
        if config is not None:
            self.write_yaml("config.yaml", config)
        manifest = dict(manifest)
        manifest.setdefault("versions", package_versions())
        timings = dict(manifest.get("timings") or {})
        timings.setdefault("total_seconds", round(time.perf_counter() - self.started, 2))
        manifest["timings"] = timings
        manifest.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
        self.write_json("manifest.json", manifest)
        if report is not None and self.writer:
            report([self.staging], self.path("report.html"))
        if relocate and self.writer:
            self._relocate()
        return self.publish()

    def _relocate(self) -> None:
        """Rewrite the staging path as the published one in the run's text files, so that
        manifests name the paths a reader will find (model files are left alone)."""
        old, new = str(self.staging), str(self.out)
        for path in self.staging.rglob("*"):
            if path.suffix not in (".json", ".yaml", ".md", ".html") or not path.is_file():
                continue
            content = path.read_text(encoding="utf-8")
            if old in content:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(content.replace(old, new), encoding="utf-8")
                os.replace(tmp, path)  # a new file, as every file of a run is its own

    def publish(self) -> Path:
        """Move the finished run into place, synced to the disk first.

        An earlier run directory at ``--out`` is replaced only with ``overwrite``; anything
        else found there (a folder made while the run worked) is left alone: the run stays
        staged, and ``--resume`` publishes it once ``--out`` is free."""
        if not self.writer:
            return self.out
        with writing(self.staging):
            # Renamed away first, so a kill while deleting leaves no half checkpoint behind.
            checkpoints = self.staging / "checkpoints"
            if checkpoints.exists():
                trash = self.staging / f".checkpoints.{os.getpid()}.deleted"
                checkpoints.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
            for leftover in self.staging.glob(".checkpoints.*.deleted"):
                shutil.rmtree(leftover, ignore_errors=True)
            fsync_tree(self.staging)
            old = self.out.parent / f".{self.out.name}.old"
            if self.out.exists() or self.out.is_symlink():
                if not (self.overwrite and is_run_dir(self.out)):
                    raise ObliviateError(
                        f"{self.out} appeared while the run worked and is not replaced; the "
                        f"finished run is kept in {self.staging}: move {self.out} away and "
                        "re-run (a training command with --resume publishes it as it is)"
                    )
                shutil.rmtree(old, ignore_errors=True)
                self.out.rename(old)
            self.staging.rename(self.out)
            fsync_path(self.out.parent)
            shutil.rmtree(old, ignore_errors=True)
        self.release()
        return self.out

    def release(self) -> None:
        """Give up the run directory's lock (publishing does; a failed run's process ends)."""
        if self._lock is not None:
            _disown(self.out, self._lock)
            self._lock = None


def is_run_dir(path: Path) -> bool:
    """A published run directory: what ``--overwrite`` may replace."""
    return (path / "manifest.json").is_file()


#: Run directories this process holds, by path: the thread and the lock.
_HELD: dict[Path, tuple[int, FileLock]] = {}


def _own(out: Path) -> FileLock:
    """Lock ``out`` for this run, or fail at once when another run holds it.

    A run that failed in this thread holds its lock until its process ends; a later run in
    the same thread (the Python API, a test) takes it over, since one thread runs one
    command at a time. Another thread or process is refused."""
    lock_path = out.parent / f".{out.name}.lock"
    held = _HELD.pop(out, None)
    if held is not None and held[0] == threading.get_ident():
        held[1].release(force=True)
    elif held is not None:
        _HELD[out] = held
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ObliviateError(
            f"another run is writing {out} (it holds {lock_path}); wait for it to end or "
            "choose another --out"
        ) from None
    _HELD[out] = (threading.get_ident(), lock)
    return lock


def _disown(out: Path, lock: FileLock) -> None:
    if _HELD.get(out, (None, None))[1] is lock:
        del _HELD[out]
    lock_path = Path(lock.lock_file)
    # Removed while still held: a run that opens it afterwards locks a new file, and then
    # finds the published directory at --out.
    lock_path.unlink(missing_ok=True)
    lock.release(force=True)


def fsync_path(path: Path) -> None:
    """Make a file's bytes, or a directory's entries (a rename into it), durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Sync every file and directory under ``root`` to the disk (before it is renamed into
    place: a power cut after the rename must not leave empty or half-written files)."""
    for directory, _, files in os.walk(root):
        for name in files:
            fsync_path(Path(directory) / name)
        fsync_path(Path(directory))


#: How torch's zip writer reports a failed write (a full disk among the causes).
_TORCH_WRITE_FAILURES = ("unexpected pos", "file write failed", "PytorchStreamWriter failed")


def disk_full_error(error: BaseException, path: str | Path) -> ObliviateError | None:
    """The one-line error for a write to ``path`` that failed for want of space, or None
    when ``error`` is something else."""
    full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, RuntimeError) and any(t in str(error) for t in _TORCH_WRITE_FAILURES):
        full = True
    if not full:
        return None
    where = Path(path)
    existing = next((p for p in (where, *where.parents) if p.exists()), Path("/"))
    try:
        free = f"{shutil.disk_usage(existing).free / 2**20:.0f} MiB free"
    except OSError:
        free = "free space unknown"
    return ObliviateError(
        f"the disk holding {where} is full ({free}) while writing it; free some space "
        "(or write --out elsewhere) and re-run (with --resume for a training run)"
    )


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a full disk while writing ``path`` into one line naming it."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        friendly = disk_full_error(error, path)
        if friendly is None:
            raise
        raise friendly from None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_path(path: str | Path) -> str:
    """Content hash of a file, or of every file under a directory (names and bytes)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(child.relative_to(path)).encode())
        digest.update(sha256_file(child).encode())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def high_water_mb(pid: int | str = "self") -> float | None:
    """A process's own peak RSS (``VmHWM``), in MiB; None where /proc cannot say.

    Not ``getrusage``'s ``ru_maxrss``: Linux starts a process's figure at its parent's peak
    when it calls ``exec`` (the memory it replaced), so ``obliviate unlearn`` started from a
    script that held a model would report that script's peak as its own."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def peak_rss_mb() -> float:
    """This process's own peak resident memory so far, in MiB (``ru_maxrss`` where there is
    no /proc: KiB on Linux and the BSDs, bytes on macOS)."""
    own = high_water_mb()
    if own is not None:
        return own
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
