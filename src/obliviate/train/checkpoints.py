"""Resumable checkpoints of the training loop: ``checkpoints/step-N`` under a run's work
directory, written atomically, only the latest kept.

One ``state.pt`` holds the step, the trainable weights, the optimizer and the scheduler
state, so the step number is saved with the weights it labels. A checkpoint is written
under a temporary name, synced to the disk and renamed into place; ``info.json`` records
the size of ``state.pt``, and a checkpoint whose files are missing, cut short or
unreadable is ignored (``latest_checkpoint``).

The main process writes and reads it; on ``resume`` it sends the state to the others, so
no other machine needs the run directory. Under FSDP the weights and optimizer
state are gathered first (``distributed.gathered_state``); under DeepSpeed ZeRO-3 every
process's optimizer partition is (``zero.gathered_partitions``), and each process loads
its own back.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list

from obliviate.errors import ObliviateError
from obliviate.rundir import fsync_path, writing
from obliviate.train.zero import load_partitions

CHECKPOINT_DIR = "checkpoints"


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


def save_checkpoint(
    work_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    gathered: dict | None = None,
) -> None:
    """Write ``checkpoints/step-N`` atomically, then drop older ones (only the latest is kept).

    ``gathered``: the weights and optimizer state already gathered from FSDP's shards
    (``gathered_state``), written instead of ``model``'s and ``optimizer``'s own."""
    state = gathered or {"model": _trainable_state(model), "optimizer": optimizer.state_dict()}
    root = work_dir / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".step-{step:06d}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    final = root / f"step-{step:06d}"
    with writing(staging / "state.pt"):
        with open(staging / "state.pt", "wb") as handle:
            torch.save({"step": step, **state, "scheduler": scheduler.state_dict()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        size = (staging / "state.pt").stat().st_size
        with open(staging / "info.json", "w") as handle:
            handle.write(json.dumps({"step": step, "bytes": size}))
            handle.flush()
            os.fsync(handle.fileno())
        fsync_path(staging)
        if final.exists():  # moved aside, so the new one takes its name in one step
            aside = root / f".step-{step:06d}.old"
            shutil.rmtree(aside, ignore_errors=True)
            final.rename(aside)
        staging.rename(final)
        fsync_path(root)
    for old in [*root.glob("step-*"), *root.glob(".step-*.old")]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def _complete(checkpoint: Path) -> bool:
    """Whether ``checkpoint`` holds its whole ``state.pt`` (as ``info.json`` measured it)."""
    try:
        info = json.loads((checkpoint / "info.json").read_text())
        size = (checkpoint / "state.pt").stat().st_size
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("bytes", size) == size and size > 0


def complete_checkpoints(work_dir: Path) -> list[Path]:
    """The complete checkpoints under ``work_dir``, newest first."""
    found = sorted((work_dir / CHECKPOINT_DIR).glob("step-*"), reverse=True)
    return [checkpoint for checkpoint in found if _complete(checkpoint)]


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete checkpoint under ``work_dir``, if any."""
    found = complete_checkpoints(work_dir)
    return found[0] if found else None


def _read_latest(work_dir: Path) -> dict:
    """The state of the newest checkpoint that reads back whole; a one-line error if none."""
    for checkpoint in complete_checkpoints(work_dir):
        try:
            return torch.load(checkpoint / "state.pt", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile):
            continue  # damaged after it was written: an older one, if any
    if any((work_dir / CHECKPOINT_DIR).glob("step-*")):
        raise ObliviateError(
            f"--resume: the checkpoint in {work_dir / CHECKPOINT_DIR} is incomplete or damaged; "
            "run without --resume to start again"
        )
    raise ObliviateError(
        f"--resume was given but {work_dir} holds no checkpoint; run without --resume"
    )


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block is done, then raise it: for state that must
    change all at once (the weights, the optimizer and the step counter)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if received:
        raise KeyboardInterrupt


def load_checkpoint(
    work_dir: Path, model: torch.nn.Module, optimizer, scheduler, main: bool, layout: str
) -> int:
    """Restore the latest checkpoint; the main process reads it and sends it to the others.

    ``layout``: ``whole`` (one process or DDP), ``fsdp`` (``model`` is the FSDP-wrapped
    loss module, and each process keeps its own shards of the full state sent) or ``zero``
    (each process loads its own DeepSpeed partition, weights included)."""
    state = None
    if main:
        state = _read_latest(work_dir)
    # DeepSpeed's partitions go to their own process only (see load_partitions)
    partitions = state.pop("zero", None) if main else None
    if partitions is not None:
        state["zero"] = len(partitions)
    (state,) = broadcast_object_list([state])
    written = "zero" if "zero" in state else "fsdp" if state.get("sharded") else "whole"
    if written != layout:
        writers = {"zero": "a DeepSpeed", "fsdp": "an FSDP", "whole": "a DDP or one-process"}
        raise ObliviateError(
            f"the checkpoint in {work_dir} was written by {writers[written]} run; resume it "
            "with the launch that wrote it"
        )
    if layout == "zero":
        load_partitions(optimizer, partitions, state["zero"], str(work_dir))
        scheduler.load_state_dict(state["scheduler"])
        return int(state["step"])
    if layout == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        try:
            set_state_dict(
                model,
                optimizer,
                model_state_dict=state["model"],
                optim_state_dict=state["optimizer"],
                options=StateDictOptions(full_state_dict=True, strict=False),
            )
        except (KeyError, RuntimeError, ValueError) as error:
            raise ObliviateError(
                f"the checkpoint in {work_dir} does not match this model; run without --resume"
            ) from error
        scheduler.load_state_dict(state["scheduler"])
        return int(state["step"])
    missing = model.load_state_dict(state["model"], strict=False)
    if missing.unexpected_keys:
        raise ObliviateError(
            f"the checkpoint in {work_dir} does not match this model; run without --resume"
        )
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])
