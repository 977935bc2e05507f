"""Resumable checkpoints of the training loop: ``checkpoints/step-N`` under a run's work
directory, written atomically, only the latest kept.

One ``state.pt`` holds the step, the trainable weights, the optimizer and the scheduler
state. The main process writes and reads it; on ``resume`` it sends the state to the
others, so no other machine needs the run directory. Under FSDP the weights and optimizer
state are gathered first (``distributed.gathered_state``); under DeepSpeed ZeRO-3 every
process's optimizer partition is (``zero.gathered_partitions``), and each process loads
its own back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list

from obliviate.errors import ObliviateError
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
    torch.save({"step": step, **state, "scheduler": scheduler.state_dict()}, staging / "state.pt")
    (staging / "info.json").write_text(json.dumps({"step": step}))
    final = root / f"step-{step:06d}"
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in root.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete checkpoint under ``work_dir``, if any."""
    found = sorted((work_dir / CHECKPOINT_DIR).glob("step-*"))
    return found[-1] if found else None


def load_checkpoint(
    work_dir: Path, model: torch.nn.Module, optimizer, scheduler, main: bool, layout: str
) -> int:
    """Restore the latest checkpoint; the main process reads it and sends it to the others.

    ``layout``: ``whole`` (one process or DDP), ``fsdp`` (``model`` is the FSDP-wrapped
    loss module, and each process keeps its own shards of the full state sent) or ``zero``
    (each process loads its own DeepSpeed partition, weights included)."""
    state = None
    if main:
        checkpoint = latest_checkpoint(work_dir)
        if checkpoint is None:
            raise ObliviateError(
                f"--resume was given but {work_dir} holds no checkpoint; run without --resume"
            )
        state = torch.load(checkpoint / "state.pt", weights_only=True)
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
