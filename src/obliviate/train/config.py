"""The training settings every training command shares, and the fine-tune's defaults.

A light module (no torch): the command line reads its defaults and help from here, so
each training option has one definition, these dataclass fields.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from obliviate.errors import ObliviateError
from obliviate.models.precision import PRECISIONS
from obliviate.train.tracking import check_report_to


@dataclass
class TrainConfig:
    """Hyper-parameters shared by every training command (``--epochs``, ``--lr``, …)."""

    epochs: float = 1.0
    """Passes over the primary data (the forget set when unlearning)."""
    max_steps: int | None = None
    """Optimizer steps; overrides ``epochs`` and ``min_steps`` when set."""
    min_steps: int = 0
    """At least this many optimizer steps, however few batches the epochs give: steps =
    max(min_steps, what ``epochs`` give), so a 16-record request still trains long enough
    to move (0: off, the epochs alone count). The unlearning recipes set it."""
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
    report_to: str | None = None
    """``tensorboard`` or ``trackio``: log every optimizer step's loss, the method's logged
    terms and the learning rate to ``logs/`` in the run directory (``train/tracking.py``;
    ``pip install 'obliviate[tracking]'`` installs both). None: no tracker."""
    checkpoint_every: int = 50
    """Save a resumable checkpoint every this many steps (and on Ctrl-C)."""
    collapse_check_every: int = 10
    """Unlearning: every this many steps (and at the last), measure the retain probe's mean
    answer NLL and stop when it is past the collapse bound (``obliviate.train.health``);
    checkpoints are then written only after a passed check. 0: off."""
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
            (self.min_steps >= 0, "min_steps must be >= 0"),
            (self.collapse_check_every >= 0, "collapse_check_every must be >= 0 (0: off)"),
            (self.checkpoint_every >= 0, "checkpoint_every must be >= 0 (0: no checkpoints)"),
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
        check_report_to(self.report_to)
        if self.localize is not None:
            from obliviate.train.localize import LocalizeSpec  # torch: only when asked

            spec = LocalizeSpec.parse(self.localize)
            if spec.kind == "weights" and self.lora:
                raise ObliviateError(
                    "--localize weights:F ranks the model's own weights and does not combine "
                    "with --lora; use layers:F or layers=… with --lora"
                )


def convert_setting(value: Any, kind: Any, key: str) -> Any:
    """``value`` (from YAML) as the setting type ``kind`` (``float``, ``int``, ``bool``,
    ``str``, or one of them ``| None``): numbers in any spelling (PyYAML reads ``1e-4`` as a
    string), non-finite ones refused; booleans only as YAML's true/false (``"no"`` quoted is
    a string, not false). A whole number stays an ``int`` in a float field: the fine-tune
    cache keys on the values' JSON, where ``7`` and ``7.0`` differ. The recipes and
    ``--config`` files both convert with it."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    if value is None and type(None) in options:
        return None
    base = next(t for t in options if t is not type(None))
    converted = _as(value, base)
    if converted is None:
        what = {float: "a number", int: "a whole number", bool: "true or false"}
        wanted = what.get(base, "a string")
        if type(None) in options:
            wanted += " or null"
        raise ObliviateError(f"{key} must be {wanted}, not {value!r}")
    return converted


def _as(value: Any, base: type) -> Any:
    """``value`` as ``base``, or None where it is not one."""
    if base is bool or isinstance(value, bool):
        return value if base is bool and isinstance(value, bool) else None
    if base is str:
        return value if isinstance(value, str) else None
    if not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if isinstance(value, int):
        return value  # also in a float field, as Python's TrainConfig(epochs=7) keeps it
    if base is int:
        return int(number) if number.is_integer() else None
    return number
