"""DeepSpeed ZeRO-3 around the one training loop (accelerate's DeepSpeed plugin).

ZeRO stage 3 partitions the trained weights, their gradients and the optimizer state
across the processes; each process gathers a layer's weights just before that layer runs
(DeepSpeed's hooks on every submodule, so the methods' direct calls to the decoder and
the output head gather what they use). What the loop needs on top of accelerate:

- the DeepSpeed config's per-process micro-batch, accumulation and clipping, which
  accelerate cannot infer without a data loader (``configure``);
- on a CPU launch, the switch to DeepSpeed that accelerate makes on GPUs only
  (``zero_on_the_cpu``; DeepSpeed's CPU accelerator talks over gloo);
- checkpoints: every process's optimizer partition (its fp32 master weights and Adam
  moments) gathered to the main process, which writes them into the one ``state.pt``;
  on ``resume`` the main process sends each its own (``gathered_partitions``,
  ``load_partitions``), so a run resumes on as many processes as wrote it;
- at the end, the full weights gathered on every process and the DeepSpeed hooks removed
  (``unpartition``), so the caller checks, merges and saves an ordinary model.

Frozen references (a KL term's copy of the model) are never partitioned: each process
holds a full copy, as under FSDP.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DeepSpeedPlugin, DistributedType

from obliviate.errors import ObliviateError


def zero_launch() -> bool:
    """Launched with accelerate's DeepSpeed plugin (``deepspeed_zero3.yaml``, or
    ``ACCELERATE_USE_DEEPSPEED=true`` under torchrun)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def require_deepspeed() -> Any:
    """The ``deepspeed`` module, or a clear error naming how to install it."""
    try:
        import deepspeed
    except ImportError as error:
        raise ObliviateError(
            "this launch asks for DeepSpeed but it is not installed; run "
            "`pip install --no-build-isolation deepspeed` (or launch with fsdp.yaml)"
        ) from error
    return deepspeed


def zero_on_the_cpu(accelerator: Accelerator) -> None:
    """Turn a CPU launch with accelerate's DeepSpeed plugin into DeepSpeed, as accelerate
    does on GPUs.

    ``AcceleratorState`` engages DeepSpeed only when not told ``cpu=True``, and without it
    a CPU launch forms no process group: so the launch starts as MULTI_CPU (gloo), and
    DeepSpeed's communication is then built on that group. The plugin is read from the
    launcher's ``ACCELERATE_DEEPSPEED_*`` environment, as accelerate reads it. Weights stay
    float32 (DeepSpeed's own half precision is left off): bf16 runs as autocast, as in
    every other mode on the CPU."""
    deepspeed = require_deepspeed()
    deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
    plugin = DeepSpeedPlugin()
    plugin.set_mixed_precision("no")
    plugin.select(_from_accelerator_state=True)
    state = accelerator.state
    state.deepspeed_plugins = plugin
    state.distributed_type = DistributedType.DEEPSPEED
    # Later ``AcceleratorState()`` calls copy the process state over their own.
    PartialState._shared_state["distributed_type"] = DistributedType.DEEPSPEED


def configure(accelerator: Accelerator, batch_size: int, grad_accum: int, clip: float) -> None:
    """Fill the DeepSpeed config with the run's micro-batch, accumulation and clipping (the
    loop feeds its own batches, so accelerate has no data loader to read them from), and
    refuse a stage other than 3 (the checkpoints here read stage 3's partitions)."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin.zero_stage != 3:
        raise ObliviateError(
            f"DeepSpeed ZeRO stage {plugin.zero_stage} is not supported; use zero_stage: 3 "
            "(configs/accelerate/deepspeed_zero3.yaml) or DDP"
        )
    plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = batch_size
    plugin.deepspeed_config["gradient_accumulation_steps"] = grad_accum
    plugin.deepspeed_config["train_batch_size"] = (
        batch_size * grad_accum * accelerator.num_processes
    )
    plugin.deepspeed_config["gradient_clipping"] = clip
    accelerator.gradient_accumulation_steps = grad_accum
    # DeepSpeed calls torch's collectives by their deprecated names, a warning a step.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.distributed\.\w+` is deprecated", category=FutureWarning
    )


def _zero_optimizer(optimizer: Any) -> Any:
    """DeepSpeed's ZeRO-3 optimizer inside accelerate's wrapper."""
    return getattr(optimizer, "optimizer", optimizer)


def gathered_partitions(optimizer: Any, main: bool) -> list[dict] | None:
    """Every process's optimizer partition (fp32 master weights, Adam moments), gathered
    to the main process (``None`` elsewhere); every process must call it. The loss
    scaler object is left out (it is rebuilt from the config on ``resume``)."""
    state = _zero_optimizer(optimizer).state_dict()
    mine = {
        "optimizer_state_dict": state["optimizer_state_dict"],
        "fp32_flat_groups": [t.detach().cpu().clone() for t in state["fp32_flat_groups"]],
        "dynamic_loss_scale": state["dynamic_loss_scale"],
        "overflow": state["overflow"],
        "partition_count": state["partition_count"],
    }
    everyone = [None] * torch.distributed.get_world_size() if main else None
    torch.distributed.gather_object(mine, everyone, dst=0)
    return everyone


def load_partitions(optimizer: Any, partitions: list[dict] | None, count: int, where: str) -> None:
    """Give each process its own optimizer partition (weights included) from the main
    process's list (``partitions``, as ``gathered_partitions`` wrote them; ``None`` on the
    other processes; ``count`` partitions in all). The others receive only their own, not
    the whole optimizer state. Every process must call this."""
    world = torch.distributed.get_world_size()
    if count != world:
        raise ObliviateError(
            f"the checkpoint in {where} was written by {count} DeepSpeed processes; "
            f"resume it with as many (not {world})"
        )
    received: list[Any] = [None]
    torch.distributed.scatter_object_list(received, partitions, src=0)
    zero = _zero_optimizer(optimizer)
    # DeepSpeed reads the list's entry at this process's rank only
    states: list[dict | None] = [None] * world
    states[torch.distributed.get_rank()] = dict(received[0]) | {"loss_scaler": zero.loss_scaler}
    zero.load_state_dict(states)


def unpartition(engine: torch.nn.Module) -> None:
    """Gather the full weights on every process and remove DeepSpeed's hooks, in place:
    the wrapped model is then an ordinary module. Every process must call this (the
    weights are gathered with collectives); tied weights stay tied (one object)."""
    deepspeed = require_deepspeed()
    module = engine.module
    partitioned = {id(p): p for p in module.parameters() if hasattr(p, "ds_id")}
    full: dict[int, torch.nn.Parameter] = {}
    with deepspeed.zero.GatheredParameters(list(partitioned.values())):
        for key, parameter in partitioned.items():
            full[key] = torch.nn.Parameter(
                parameter.data.detach().clone(), requires_grad=parameter.requires_grad
            )
    engine.destroy()  # the ZeRO hooks on every submodule
    for submodule in module.modules():
        for name, parameter in list(submodule._parameters.items()):
            if parameter is not None and id(parameter) in full:
                submodule._parameters[name] = full[id(parameter)]
