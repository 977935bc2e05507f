"""The one training loop, for fine-tuning and for every unlearning method.

forward → objective loss → backward → clip → step, with gradient accumulation, seeded
batch order, periodic checkpoints and ``resume``. The objective decides what the loss is;
this loop decides which examples it sees. Accelerate supplies precision and distribution
(DDP: a full copy of the model per process), so the same loop runs in one process or
under ``torchrun`` / ``accelerate launch`` (see ``docs/distributed.md``).

Distribution. A step takes ``grad_accum`` micro-batches of ``batch_size`` examples on each
of the N processes, so N·grad_accum micro-batches in all, numbered as one process with
``grad_accum`` × N would take them (process r takes every N-th, starting at r): N
processes give the weights one process gets with N times the ``grad_accum``. Gradients
are averaged by the engine accelerate wraps around the model; only the main process
writes the log, ``localize.json`` and checkpoints, and on ``resume`` it reads the
checkpoint and sends it to the others, so no other machine needs the run directory.

Three options combine with any objective, each living in its own module and applied
around these same steps: ``localize`` picks the weights to train before the first step
(``localize.py``), ``optimizer="sophia"`` pre-conditions by a diagonal Hessian estimate
refreshed every ``hessian_every`` steps (``sophia.py``), and ``adversarial="latent"``
takes every loss against a latent perturbation that restores the forget answers
(``adversarial.py``).

Sharded training. Under accelerate's FSDP plugin (``fsdp_version: 2``, torch's
``fully_shard``) each process keeps 1/N of the trained weights, their gradients and the
optimizer state. Checkpoints gather the full trainable weights and optimizer state to the
main process, which writes them; at the end every process gathers the full weights back
into ``model``, which leaves training an ordinary unsharded module, as under DDP. Under
accelerate's DeepSpeed plugin (ZeRO-3) DeepSpeed's engine partitions the same state;
``zero.py`` holds what differs (its config, checkpoints, the final gathering). Frozen
references (``frozen_copy``) are never sharded: each process holds a full copy.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import (
    DistributedType,
    FullyShardedDataParallelPlugin,
    broadcast_object_list,
)
from transformers import get_scheduler

from obliviate.errors import ObliviateError
from obliviate.methods.base import Batch, Objective
from obliviate.models.encoding import Encoded, collate
from obliviate.train.adversarial import LossFn, latent_adversary
from obliviate.train.localize import LocalizeSpec, localize
from obliviate.train.sophia import Sophia, update_hessian
from obliviate.train.zero import (
    configure,
    gathered_partitions,
    load_partitions,
    unpartition,
    zero_launch,
    zero_on_the_cpu,
)

CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainConfig:
    """Hyper-parameters shared by every training command (``--epochs``, ``--lr``, …)."""

    epochs: float = 1.0
    """Passes over the primary data (the forget set when unlearning)."""
    max_steps: int | None = None
    """Optimizer steps; overrides ``epochs`` when set."""
    lr: float = 1e-5
    batch_size: int = 8
    grad_accum: int = 1
    seed: int = 0
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    scheduler: str = "linear"
    max_grad_norm: float = 1.0
    precision: str = "auto"
    """``bf16``, ``fp16`` (GPU only), ``fp32`` or ``auto`` (bf16 where the hardware computes
    it natively): the autocast dtype; weights and optimizer state stay in float32."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward pass instead of keeping
    them: less memory for about one more forward pass per step."""
    group_by_length: bool = False
    """Batch examples of like lengths together (sorted within windows of 16 batches, the
    batches then shuffled): less padding, so fewer tokens per step for the same examples
    per pass; the batches' make-up differs from a plain shuffle."""
    compile: bool = False
    """Compile each decoder layer's forward with ``torch.compile`` (regional compilation:
    the layers are alike, so one compilation serves all of them) for the run, fusing the
    element-wise work around the matrix products; the layers are eager again afterwards.
    It costs a compilation at the start (about half a minute for the default model on 2
    CPU cores, less once torch's on-disk cache holds the kernels)."""
    checkpoint_every: int = 50
    """Save a resumable checkpoint every this many steps (and on Ctrl-C)."""
    localize: str | None = None
    """Train only part of the weights: ``weights:F`` (the fraction F with the largest
    gradient saliency on the forget set), ``layers:F`` (that fraction of decoder layers, by
    gradient norm) or ``layers=3,4,5``; see ``obliviate.train.localize``."""
    localize_batches: int = 4
    """Training batches whose summed gradient ranks weights or layers for ``localize``."""
    optimizer: str = "adamw"
    """``adamw`` or ``sophia`` (clipped diagonal-Hessian pre-conditioning, Sophia-H)."""
    sophia_rho: float = 0.04
    """Sophia's ρ (γ in the paper): the clip threshold's scale (the official default)."""
    hessian_every: int = 10
    """Sophia's k: steps between Hessian estimates (the paper's 10)."""
    adversarial: str | None = None
    """``latent``: unlearn against a PGD perturbation of one layer's hidden states that
    restores the forget answers (see ``obliviate.train.adversarial``). For unlearning; a
    fine-tune's loss and the adversary pull the same way."""
    adversarial_layer: int = -1
    """Decoder layer whose output is perturbed; negative means the middle, (L − 1) // 2."""
    adversarial_epsilon: float = 0.25
    """Per-token L2 radius of the perturbation, relative to the layer's mean activation
    norm (tuned on the built-in benchmark: with ~3× the lr, grad_diff forgot as much as
    without the adversary, and a latent attack restored the forget answers to −2.4 nats
    instead of −0.6)."""
    adversarial_steps: int = 4
    """PGD steps per batch (each costs a forward and backward pass)."""

    def __post_init__(self) -> None:
        checks = [
            (self.epochs > 0 or self.max_steps, "--epochs must be > 0"),
            (self.max_steps is None or self.max_steps > 0, "--max-steps must be > 0"),
            (self.lr > 0 and math.isfinite(self.lr), "--lr must be a positive number"),
            (self.batch_size > 0, "--batch-size must be > 0"),
            (self.grad_accum > 0, "--grad-accum must be > 0"),
            (
                self.precision in PRECISIONS,
                "--precision must be auto, bf16, fp16 or fp32",
            ),
            (self.localize_batches > 0, "localize_batches must be > 0"),
            (self.optimizer in ("adamw", "sophia"), "--optimizer must be adamw or sophia"),
            (self.sophia_rho > 0, "sophia_rho must be > 0"),
            (self.hessian_every > 0, "hessian_every must be > 0"),
            (self.adversarial in (None, "latent"), "--adversarial must be latent (or left out)"),
            (self.adversarial_epsilon > 0, "adversarial_epsilon must be > 0"),
            (self.adversarial_steps > 0, "adversarial_steps must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ObliviateError(message)
        if self.localize is not None:
            spec = LocalizeSpec.parse(self.localize)
            if spec.kind == "weights" and self.lora:
                raise ObliviateError(
                    "--localize weights:F ranks the model's own weights and does not combine "
                    "with --lora; use layers:F or layers=… with --lora"
                )


@dataclass
class TrainSummary:
    steps: int
    tokens: int
    seconds: float
    final_loss: float
    resumed_from_step: int
    distributed: str = "NO"
    """How the processes shared the work: accelerate's distributed type as the loop ran it
    (FSDP on the CPU too, where the launcher's own state says MULTI_CPU)."""


def processes() -> PartialState:
    """This process's place in a distributed launch (``torchrun``, ``accelerate launch``:
    rank, process count, main or not), or a single process when not launched so. The first
    call starts the process group from the launcher's environment."""
    return PartialState(cpu=_cpu_launch())


def _cpu_launch() -> bool:
    """A distributed launch on a machine without a CUDA GPU. Accelerate must be told: it
    looks for GPUs when a launcher set ``LOCAL_RANK``, and finding none it would let every
    process train alone instead of forming a gloo group."""
    return "LOCAL_RANK" in os.environ and not torch.cuda.is_available()


PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")


def check_precision(precision: str, option: str = "--precision") -> None:
    """The one-line error for a precision obliviate does not know, naming the option."""
    if precision not in PRECISIONS:
        raise ObliviateError(f"unknown {option} {precision!r}; use fp32, bf16, fp16 or auto")


def resolve_precision(precision: str) -> str:
    """``auto`` → bf16 on CUDA with bf16 support or a CPU with native bf16 (AMX/AVX512-BF16)."""
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "fp32"


def apply_lora(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    """Wrap the model with LoRA adapters on every linear projection (peft).

    The adapters' random start is drawn from ``config.seed``, so it does not depend on what
    ran before (other processes of a distributed run draw the same)."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        target_modules="all-linear",
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(config.seed)
    return get_peft_model(model, lora)


def _order(n: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


#: With ``group_by_length``, examples are sorted by length within windows of this many
#: batches of the shuffled order (HF Trainer's length-grouped sampler uses 50).
LENGTH_WINDOW_BATCHES = 16


class _BatchStream:
    """Deterministic micro-batches: reshuffled each pass, addressable by index (for resume).

    With ``group_by_length``, each pass's shuffled order is cut into windows of
    ``LENGTH_WINDOW_BATCHES`` batches, each window sorted by length and cut into batches,
    and the full batches shuffled (a short last batch stays last): batches of like lengths,
    so little padding, in a random order."""

    def __init__(
        self,
        examples: Sequence[Encoded],
        batch_size: int,
        seed: int,
        group_by_length: bool = False,
    ):
        self.examples = examples
        self.batch_size = min(batch_size, len(examples))
        self.seed = seed
        self.group_by_length = group_by_length
        self.per_pass = math.ceil(len(examples) / self.batch_size)
        self._orders: dict[int, list[int]] = {}

    def _pass_order(self, epoch: int) -> list[int]:
        order = _order(len(self.examples), self.seed, epoch)
        if not self.group_by_length:
            return order
        window = self.batch_size * LENGTH_WINDOW_BATCHES
        batches = []
        for start in range(0, len(order), window):
            ranked = sorted(
                order[start : start + window], key=lambda i: len(self.examples[i].input_ids)
            )
            batches += [
                ranked[first : first + self.batch_size]
                for first in range(0, len(ranked), self.batch_size)
            ]
        short = batches.pop() if len(batches[-1]) < self.batch_size else None
        shuffled = [batches[i] for i in _order(len(batches), self.seed + 1, epoch)]
        return [i for batch in shuffled + ([short] if short else []) for i in batch]

    def batch(self, index: int, pad_token_id: int) -> dict[str, torch.Tensor]:
        """The padded batch number ``index``, with each row's example index (``index`` key)."""
        epoch, position = divmod(index, self.per_pass)
        if epoch not in self._orders:
            self._orders = {epoch: self._pass_order(epoch)}
        chosen = self._orders[epoch][position * self.batch_size : (position + 1) * self.batch_size]
        batch = collate([self.examples[i] for i in chosen], pad_token_id)
        batch["index"] = torch.tensor(chosen, dtype=torch.long)
        return batch


def total_steps(n_primary: int, config: TrainConfig, n_processes: int = 1) -> int:
    """Optimizer steps the run will take on ``n_processes`` processes (each step takes
    ``grad_accum`` micro-batches on every process)."""
    if config.max_steps:
        return config.max_steps
    per_pass = math.ceil(n_primary / min(config.batch_size, n_primary))
    return max(1, math.ceil(config.epochs * per_pass / (config.grad_accum * n_processes)))


class _LossModule(torch.nn.Module):
    """The model with the objective's loss as its ``forward``: what accelerate prepares.

    Methods call the decoder and the output head directly (to project only the answer
    tokens) and may run the model several times per loss. An engine wrapped around the
    model alone (DDP) sees only calls to the model's own ``forward``, so it would not
    synchronise those gradients; wrapped around the whole loss, it sees every pass.
    Under FSDP the wrapper is the root unit (it gathers the embeddings, final norm and
    output head for the whole loss, however the method calls them) and every decoder layer
    its own unit, gathered whenever it runs: ``_no_split_modules`` names the layer class
    to accelerate's ``TRANSFORMER_BASED_WRAP`` policy.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self._no_split_modules = getattr(model, "_no_split_modules", None)
        # accelerate sizes DeepSpeed's buckets from the model's hidden size
        self.config = getattr(model, "config", None)

    def forward(
        self, loss_fn: LossFn, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return loss_fn(self.model, forget, retain)


def train(
    model: torch.nn.Module,
    objective: Objective,
    primary: Sequence[Encoded],
    retain: Sequence[Encoded] | None,
    config: TrainConfig,
    pad_token_id: int,
    work_dir: Path,
    resume: bool = False,
    on_step: Callable[[int, int, dict], None] | None = None,
) -> TrainSummary:
    """Optimise ``objective`` on ``primary`` (and ``retain`` when it uses one), in place.

    ``work_dir`` receives ``log.jsonl`` and ``checkpoints/``; with ``resume`` the loop
    restarts from the latest checkpoint there. ``on_step(step, total, logs)`` reports progress.
    """
    if not primary:
        raise ObliviateError("there are no training examples; check the data file")
    if objective.uses_retain and not retain:
        raise ObliviateError(f"method '{objective.name}' needs retain data; pass --retain FILE")
    precision = resolve_precision(config.precision)
    # Each run picks its own precision and accumulation; accelerate keeps them in
    # process-wide singletons.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    accelerator = Accelerator(
        cpu=_cpu_launch(),
        mixed_precision="no" if precision == "fp32" else precision,
        gradient_accumulation_steps=config.grad_accum,
        # With LoRA a method may freeze adapters on first use, after DDP listed them (RMU
        # does, above its layer): DDP must then look for weights without a gradient
        # instead of waiting for theirs forever. Without LoRA it need not look.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=config.lora)],
    )
    if precision == "fp16" and accelerator.device.type == "cpu":
        raise ObliviateError("--precision fp16 needs a GPU; on the CPU use bf16 or fp32")
    if _cpu_launch() and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        _shard_on_the_cpu(accelerator)
    if _cpu_launch() and zero_launch():
        zero_on_the_cpu(accelerator)
    sharded = accelerator.distributed_type == DistributedType.FSDP
    zero = accelerator.distributed_type == DistributedType.DEEPSPEED
    if sharded:
        _check_fsdp(accelerator)
    if sharded or zero:
        _check_partitioned(config, "FSDP" if sharded else "DeepSpeed ZeRO-3")
    if zero:
        configure(accelerator, config.batch_size, config.grad_accum, config.max_grad_norm)
    main = accelerator.is_main_process
    n_processes, rank = accelerator.num_processes, accelerator.process_index
    if n_processes > 1:
        atexit.register(leave_process_group)
    torch.manual_seed(config.seed)
    forget_stream = _BatchStream(primary, config.batch_size, config.seed, config.group_by_length)
    retain_stream = (
        _BatchStream(retain, config.batch_size, config.seed + 1, config.group_by_length)
        if objective.uses_retain and retain
        else None
    )

    def batches(index: int) -> tuple[Batch, Batch | None]:
        forget = _to_device(forget_stream.batch(index, pad_token_id), accelerator)
        if retain_stream is None:
            return forget, None
        return forget, _to_device(retain_stream.batch(index, pad_token_id), accelerator)

    def micro_batch(step: int, micro: int) -> int:
        """This process's ``micro``-th micro-batch of ``step`` (see the module docstring)."""
        return ((step - 1) * config.grad_accum + micro) * n_processes + rank

    loss_fn = objective.loss
    if config.adversarial:
        adversary = latent_adversary(
            model, config.adversarial_layer, config.adversarial_epsilon, config.adversarial_steps
        )
        loss_fn = adversary.robust(objective.loss)

    def loss_at(fn: LossFn, index: int) -> torch.Tensor:
        """``fn``'s loss on training batch ``index`` (for weight saliency and curvature).

        Every process computes the same figure on its own copy of the model, so no
        gradient is exchanged for it."""
        with accelerator.autocast():
            return fn(model, *batches(index))[0]

    if main:
        work_dir.mkdir(parents=True, exist_ok=True)
    if config.gradient_checkpointing:
        _enable_gradient_checkpointing(model)
    if config.compile:
        _compile_layers(model)
    model.train()
    localized = None
    if config.localize:
        model.to(accelerator.device)
        localized = localize(
            model,
            config.localize,
            partial(loss_at, objective.loss),
            config.localize_batches,
            config.weight_decay,
        )
        if main:
            localized.record(work_dir, resume)
    params = [p for p in model.parameters() if p.requires_grad]
    sophia = (
        Sophia(params, lr=config.lr, rho=config.sophia_rho, weight_decay=config.weight_decay)
        if config.optimizer == "sophia"
        else None
    )
    optimizer = sophia if sophia is not None else _adamw(params, config)
    steps = total_steps(len(primary), config, n_processes)
    scheduler = get_scheduler(
        config.scheduler,
        optimizer,
        num_warmup_steps=int(config.warmup_ratio * steps),
        num_training_steps=steps,
    )
    engine, optimizer = accelerator.prepare(_LossModule(model), optimizer)
    start_step = 0
    layout = "fsdp" if sharded else "zero" if zero else "whole"
    if resume:  # under FSDP the wrapped module holds the shards
        restored = engine if sharded else model
        start_step = _load_checkpoint(work_dir, restored, optimizer, scheduler, main, layout)
    # Only the main process keeps a log; the others write theirs nowhere.
    log_path = work_dir / "log.jsonl" if main else Path(os.devnull)
    tokens = 0
    loss_value = float("nan")
    started = time.perf_counter()
    completed = start_step
    try:
        with log_path.open("a", buffering=1) as log:
            for step in range(start_step + 1, steps + 1):
                logs: dict[str, float] = {}
                if sophia is not None and (step - 1) % config.hessian_every == 0:
                    # The step's first micro-batch, the same on every process.
                    first = (step - 1) * config.grad_accum * n_processes
                    first_batch = partial(loss_at, loss_fn, first)
                    update_hessian(sophia, first_batch, seed=config.seed * 100_003 + step)
                for micro in range(config.grad_accum):
                    forget_batch, retain_batch = batches(micro_batch(step, micro))
                    # Gradients are exchanged after the step's last micro-batch only.
                    with accelerator.accumulate(engine):
                        with accelerator.autocast():
                            loss, logs = engine(loss_fn, forget_batch, retain_batch)
                        if not torch.isfinite(loss):
                            raise ObliviateError(
                                f"the loss became {loss.item()} at step {step} "
                                f"(method {objective.name}, lr {config.lr}); lower --lr or "
                                "--max-steps; the last good checkpoint is kept for --resume"
                            )
                        accelerator.backward(loss)  # divided by grad_accum there
                    tokens += int(forget_batch["attention_mask"].sum())
                    if retain_batch is not None:
                        tokens += int(retain_batch["attention_mask"].sum())
                if localized is not None:
                    localized.mask_gradients()
                if config.max_grad_norm:
                    accelerator.clip_grad_norm_(engine.parameters(), config.max_grad_norm)
                optimizer.step()
                if localized is not None:
                    localized.hold()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                completed = step
                loss_value = loss.item()
                record = {
                    "step": step,
                    "loss": loss_value,
                    "lr": scheduler.get_last_lr()[0],
                    "seconds": round(time.perf_counter() - started, 3),
                    **logs,
                }
                log.write(json.dumps(record) + "\n")
                if on_step:
                    on_step(step, steps, record)
                if config.checkpoint_every and step % config.checkpoint_every == 0 and step < steps:
                    log.flush()
                    # partitioned, every process sends its part to the main one
                    gathered = None
                    if sharded:
                        gathered = _gathered_state(engine, optimizer, main)
                    elif zero:
                        gathered = {"zero": gathered_partitions(optimizer, main)}
                    if main:
                        _save_checkpoint(work_dir, step, model, optimizer, scheduler, gathered)
    except KeyboardInterrupt:
        # Partitioned, the state lives in every process's part, and a Ctrl-C need not
        # reach them all: the last periodic checkpoint is the one to resume from.
        if main and completed > start_step and layout == "whole":
            _save_checkpoint(work_dir, completed, model, optimizer, scheduler)
        raise
    finally:
        if config.compile:
            _eager_layers(model)
    if sharded:
        _unshard(engine)
    if zero:
        unpartition(engine)
    if config.gradient_checkpointing:
        model.activation_checkpointing_disable()
    model.eval()
    return TrainSummary(
        steps=steps - start_step,
        tokens=int(accelerator.reduce(torch.tensor(tokens, device=accelerator.device), "sum")),
        seconds=time.perf_counter() - started,
        final_loss=loss_value,
        resumed_from_step=start_step,
        distributed=accelerator.distributed_type.value,
    )


def _adamw(params: list[torch.nn.Parameter], config: TrainConfig) -> torch.optim.AdamW:
    """AdamW, fused into one kernel per step on CPU and CUDA parameters (FSDP's sharded
    ones too): its per-tensor update loop took a fifth of a fine-tuning step of the
    default model on the CPU (profiled with torch.profiler: 0.30 of 1.56 s; fused 0.08 s)."""
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(
        params, lr=config.lr, weight_decay=config.weight_decay, fused=True if fused else None
    )


def leave_process_group() -> None:
    """Destroy the process group before the interpreter exits: left to the C++ static
    destructors, gloo's threads may still be joinable and abort the process
    ("terminate called without an active exception") after a run that succeeded."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _shard_on_the_cpu(accelerator: Accelerator) -> None:
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


def _check_fsdp(accelerator: Accelerator) -> None:
    """Refuse FSDP1: the loop gathers and restores torch's ``fully_shard`` (FSDP2) only."""
    if accelerator.state.fsdp_plugin.fsdp_version != 2:
        raise ObliviateError(
            "FSDP is supported with fsdp_version: 2 only (torch's fully_shard); set it in the "
            "accelerate config"
        )


def _check_partitioned(config: TrainConfig, engine: str) -> None:
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


def _unshard(engine: torch.nn.Module) -> None:
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


def _gathered_state(engine: torch.nn.Module, optimizer, main: bool) -> dict | None:
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


def _enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each decoder layer's activations in the backward pass (transformers'
    activation checkpointing, formerly ``gradient_checkpointing_enable``; non-reentrant, so
    it works with frozen inputs, LoRA and DDP)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ObliviateError(
            "--gradient-checkpointing: this model does not support it; run without it"
        )
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def _decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated blocks: the modules of the classes its ``_no_split_modules``
    names (transformers' own list of the layers it never splits)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    return [m for m in model.modules() if type(m).__name__ in names]


def _compile_layers(model: torch.nn.Module) -> None:
    """Replace each decoder layer's ``forward`` with its compiled version (dynamic shapes:
    batches differ in length). Hooks stay outside the compiled code, at the layers'
    boundaries, where methods and the adversary attach theirs. ``_eager_layers`` undoes it."""
    layers = _decoder_layers(model)
    if not layers:
        raise ObliviateError(
            "--compile: this model does not name its decoder layers (_no_split_modules); "
            "run without --compile"
        )
    for layer in layers:
        layer.forward = torch.compile(layer.forward, dynamic=True)


def _eager_layers(model: torch.nn.Module) -> None:
    """Give back the layers' own ``forward`` (after training: evaluation and generation
    need no compilation, and a saved or copied model carries none)."""
    for layer in _decoder_layers(model):
        layer.__dict__.pop("forward", None)


def _to_device(batch: dict[str, torch.Tensor], accelerator: Accelerator) -> dict[str, torch.Tensor]:
    return {k: v.to(accelerator.device) for k, v in batch.items()}


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


def _save_checkpoint(
    work_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    gathered: dict | None = None,
) -> None:
    """Write ``checkpoints/step-N`` atomically, then drop older ones (only the latest is kept).

    ``gathered``: the weights and optimizer state already gathered from FSDP's shards
    (``_gathered_state``), written instead of ``model``'s and ``optimizer``'s own."""
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


def _load_checkpoint(
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
