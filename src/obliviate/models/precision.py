"""Precision: the dtype a model computes in, a property of how it runs (training,
evaluation and attacks alike), not of training.

Weights and optimizer state stay float32; ``precision`` only picks autocast's dtype.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from obliviate.errors import ObliviateError

if TYPE_CHECKING:
    import torch

PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")


def check_precision(precision: str, option: str = "--precision") -> None:
    """The one-line error for a precision obliviate does not know, naming the option."""
    if precision not in PRECISIONS:
        raise ObliviateError(f"unknown {option} {precision!r}; use fp32, bf16, fp16 or auto")


def resolve_precision(precision: str) -> str:
    """``auto`` → bf16 on CUDA with bf16 support or a CPU with native bf16 (AMX/AVX512-BF16)."""
    import torch  # here, not at the top: the command line checks precisions before torch loads

    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "fp32"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype ``precision`` resolves to, or None for float32 (no autocast)."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(resolve_precision(precision))
