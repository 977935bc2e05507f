"""The loop's processes: where this one stands in a launch, and FSDP around the loop.

Accelerate runs the one loop in one process or under ``torchrun`` / ``accelerate
launch``. What it leaves to us: telling it about a CPU launch (``cpu_launch``), turning
a CPU launch with the FSDP plugin into FSDP as it does on GPUs (``shard_on_the_cpu``),
refusing what sharding cannot run (``check_fsdp``, ``check_partitioned``), gathering a
sharded model's state for a checkpoint (``gathered_state``) and its full weights at the
end (``unshard``), and leaving the process group cleanly (``leave_process_group``).
DeepSpeed ZeRO-3's counterparts are in ``zero.py``.
"""

from __future__ import annotations

import os

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

from obliviate.errors import ObliviateError
from obliviate.train.config import TrainConfig


def processes() -> PartialState:
    """This process's place in a distributed launch (``torchrun``, ``accelerate launch``:
    rank, process count, main or not), or a single process when not launched so. The first
    call starts the process group from the launcher's environment."""
    return PartialState(cpu=cpu_launch())


def cpu_launch() -> bool:
    """A distributed launch on a machine without a CUDA GPU. Accelerate must be told: it
    looks for GPUs when a launcher set ``LOCAL_RANK``, and finding none it would let every
    process train alone instead of forming a gloo group."""
    return "LOCAL_RANK" in os.environ and not torch.cuda.is_available()


def leave_process_group() -> None:
    """Destroy the process group before the interpreter exits: left to the C++ static
    destructors, gloo's threads may still be joinable and abort the process
    ("terminate called without an active exception") after a run that succeeded."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def shard_on_the_cpu(accelerator: Accelerator) -> None:
    """Turn a CPU launch with accelerate's FSDP plugin into FSDP, as accelerate does on GPUs.

    ``AcceleratorState`` switches to FSDP only from a GPU-type launch (MULTI_GPU, …), so a
    CPU launch (``cpu=True``, MULTI_CPU) would silently train with DDP; torch's
    ``fully_shard`` itself runs on a CPU device mesh over gloo. The plugin is read from the
    launcher's ``FSDP_*`` environment, as accelerate reads it."""
    plugin = FullyShardedDataParallelPlugin()
    if plugin.fsdp_version != 2:
        raise ObliviateError(
            "FSDP on the CPU needs fsdp_version: 2 (torch's fully_shard); set it in the "
            "accelerate config (FSDP_VERSION=2 under torchrun)"
        )
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    accelerator.state.distributed_type = DistributedType.FSDP
    accelerator.state.fsdp_plugin = plugin
    # Every later ``AcceleratorState()`` copies the process state over its own (accelerate
    # does so inside clip_grad_norm_, reduce, …): the process state must say FSDP too.
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP


def check_fsdp(accelerator: Accelerator) -> None:
    """Refuse FSDP1: the loop gathers and restores torch's ``fully_shard`` (FSDP2) only."""
    if accelerator.state.fsdp_plugin.fsdp_version != 2:
        raise ObliviateError(
            "FSDP is supported with fsdp_version: 2 only (torch's fully_shard); set it in the "
            "accelerate config"
        )


def check_partitioned(config: TrainConfig, engine: str) -> None:
    """Refuse the options that reach the weights outside the wrapped loss: under FSDP or
    ZeRO-3 they would meet a process's part of the weights, not the weights."""
    for given, flag in (
        (config.optimizer == "sophia", "--optimizer sophia"),
        (config.localize, "--localize"),
        (config.adversarial, "--adversarial"),
        (config.compile, "--compile"),
    ):
        if given:
            raise ObliviateError(
                f"{flag} is not supported under {engine}; launch with DDP (multi_gpu_ddp.yaml, "
                "or torchrun without ACCELERATE_USE_FSDP / ACCELERATE_USE_DEEPSPEED)"
            )


def unshard(engine: torch.nn.Module) -> None:
    """Gather the full weights on every process and turn the FSDP modules back into the
    plain ones, in place: the caller then checks, merges and saves an ordinary model.

    Every process must call this (each weight is gathered with a collective, in the same
    order everywhere); tied weights stay tied (a shared parameter is one object)."""
    from torch.distributed.fsdp import FSDPModule
    from torch.distributed.tensor import DTensor

    full: dict[int, torch.nn.Parameter] = {}
    for module in engine.modules():
        for name, parameter in list(module._parameters.items()):
            if isinstance(parameter, DTensor):
                if id(parameter) not in full:
                    full[id(parameter)] = torch.nn.Parameter(
                        parameter.full_tensor().detach().clone(),
                        requires_grad=parameter.requires_grad,
                    )
                module._parameters[name] = full[id(parameter)]
    for module in engine.modules():
        if isinstance(module, FSDPModule):
            state = module._get_fsdp_state()
            state._pre_forward_hook_handle.remove()
            state._post_forward_hook_handle.remove()
            # fully_shard made the class (FSDPModule, original)
            module.__class__ = module.__class__.__bases__[1]


def gathered_state(engine: torch.nn.Module, optimizer, main: bool) -> dict | None:
    """The full trainable weights and optimizer state of a sharded model, on the main
    process (``None`` elsewhere); every process must call it. The optimizer state is keyed
    by parameter name, as torch.distributed.checkpoint writes it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights, optimizer_state = get_state_dict(engine, optimizer, options=options)
    if not main:
        return None
    names = {n for n, p in engine.named_parameters() if p.requires_grad}
    return {
        "model": {k: v for k, v in weights.items() if k in names},
        "optimizer": optimizer_state,
        "sharded": True,
    }
