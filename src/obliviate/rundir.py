"""The run directory: everything a run makes, written so it is never left half-written.

A run works in a hidden staging directory next to ``--out`` (``.NAME.partial``), which
also holds its checkpoints; only when everything is written is it renamed to ``--out``
in one step. An interrupted or failed run leaves ``--out`` untouched and its staging
directory ready for ``--resume``. In a distributed run one process (the main one) writes
it; the others only know its paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

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
        if not writer:
            return
        if self.out.exists() and not overwrite:
            raise ObliviateError(
                f"output directory {self.out} already exists; choose another --out "
                "or pass --overwrite to replace it"
            )
        if self.out.exists() and not self.out.is_dir():
            raise ObliviateError(f"--out {self.out} is a file; give a directory path")
        if resume and not self.staging.is_dir():
            raise ObliviateError(
                f"nothing to resume: no interrupted run for {self.out}; run without --resume"
            )
        if not resume:
            shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.staging / name

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.path(name)
        if not self.writer:
            return path
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, path)
        return path

    def write_yaml(self, name: str, obj: Any) -> Path:
        path = self.path(name)
        if self.writer:
            path.write_text(yaml.safe_dump(obj, sort_keys=False))
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
                os.replace(tmp, path)  # a new file: a hard link into the fine-tune cache is kept

    def publish(self) -> Path:
        """Move the finished run into place (replacing an old one only with ``overwrite``)."""
        shutil.rmtree(self.staging / "checkpoints", ignore_errors=True)
        old = self.out.parent / f".{self.out.name}.old"
        if self.out.exists():
            shutil.rmtree(old, ignore_errors=True)
            self.out.rename(old)
        self.staging.rename(self.out)
        shutil.rmtree(old, ignore_errors=True)
        return self.out


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


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
