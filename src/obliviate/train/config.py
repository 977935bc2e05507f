"""The training settings every training command shares, and the fine-tune's defaults.

A light module (no torch): the command line reads its defaults and help from here, so
each training option has one definition, these dataclass fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from obliviate.errors import ObliviateError
from obliviate.models.precision import PRECISIONS


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
            from obliviate.train.localize import LocalizeSpec  # torch: only when asked

            spec = LocalizeSpec.parse(self.localize)
            if spec.kind == "weights" and self.lora:
                raise ObliviateError(
                    "--localize weights:F ranks the model's own weights and does not combine "
                    "with --lora; use layers:F or layers=… with --lora"
                )


#: A fine-tune's settings where none are given (how targets and oracles are made).
FINETUNE_DEFAULTS = TrainConfig(epochs=5, lr=1e-4, batch_size=16)
