"""``quantize``: round the weights to 8 and 4 bits and ask again.

Round-to-nearest with one scale and zero point per group of 128 consecutive weights of
a row (asymmetric min–max, as GPTQ/AWQ-style 4-bit checkpoints store them), applied to
every linear layer of the decoder; embeddings and the output head stay as they are, as
common quantisers leave them. When unlearning moved the weights less than half a
quantisation step, rounding lands them where the target's weights land and the
forgotten answers return; ``same_value_fraction`` says how much of the model rounds to
exactly the target's values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    VariantResult,
    calibrating,
    calibration,
    plain,
    register_attack,
)
from obliviate.models.loader import LoadedModel, load_model

BIT_WIDTHS: tuple[int, ...] = (8, 4)
GROUP_SIZE = 128


def _groups(weight: torch.Tensor, group_size: int) -> list[torch.Tensor]:
    """Each row cut into groups of ``group_size`` weights (a shorter last group where the
    row length is not a multiple), as float32 blocks of shape rows × group."""
    rows = weight.detach().float().reshape(weight.shape[0], -1)
    return list(torch.split(rows, group_size, dim=1))


def _rtn(group: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer codes, scale and zero point of one block (min–max, round to nearest)."""
    levels = 2**bits - 1
    low = group.min(dim=1, keepdim=True).values
    high = group.max(dim=1, keepdim=True).values
    scale = ((high - low) / levels).clamp(min=1e-12)
    zero = torch.round(-low / scale)
    return torch.clamp(torch.round(group / scale) + zero, 0, levels), scale, zero


@torch.no_grad()
def quantize_rtn(weight: torch.Tensor, bits: int, group_size: int = GROUP_SIZE) -> torch.Tensor:
    """The weight matrix rounded to ``bits`` per group of ``group_size`` along each row and
    mapped back to floats: what a model quantised this way computes with."""
    pieces = []
    for group in _groups(weight, group_size):
        codes, scale, zero = _rtn(group, bits)
        pieces.append((codes - zero) * scale)
    return torch.cat(pieces, dim=1).reshape(weight.shape).to(weight.dtype)


@torch.no_grad()
def quantization_codes(
    weight: torch.Tensor, bits: int, group_size: int = GROUP_SIZE
) -> torch.Tensor:
    """The integer code each weight rounds to (its quantisation level)."""
    codes = [_rtn(group, bits)[0] for group in _groups(weight, group_size)]
    return torch.cat(codes, dim=1).reshape(weight.shape)


def quantizable(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Linear]]:
    """The decoder's linear layers (name, module): what a weight quantiser rounds."""
    for name, module in model.get_decoder().named_modules():
        if isinstance(module, torch.nn.Linear):
            yield name, module


@contextlib.contextmanager
def quantized(model: torch.nn.Module, bits: int) -> Iterator[torch.nn.Module]:
    """The model with its linear weights rounded to ``bits``; restored on exit."""
    originals = {}
    try:
        for name, module in quantizable(model):
            originals[name] = module.weight.data.clone()
            module.weight.data = quantize_rtn(module.weight.data, bits)
        yield model
    finally:
        layers = dict(quantizable(model))
        for name, weight in originals.items():
            layers[name].weight.data = weight


@torch.no_grad()
def same_value_fraction(model: torch.nn.Module, reference: torch.nn.Module, bits: int) -> float:
    """Fraction of the quantised weights that round to the reference's level (their
    integer codes agree: the change unlearning made vanished in the rounding)."""
    theirs = dict(quantizable(reference))
    same = total = 0
    for name, module in quantizable(model):
        mine = quantization_codes(module.weight, bits)
        same += int((mine == quantization_codes(theirs[name].weight, bits)).sum())
        total += mine.numel()
    return same / total if total else 0.0


@register_attack(
    "quantize",
    "round the decoder's linear weights to 8 and 4 bits (RTN, groups of 128), ask again",
    lambda ctx: {"bits": list(BIT_WIDTHS), "group_size": GROUP_SIZE, "scheme": "asymmetric RTN"},
)
def quantize(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    if calibrating(ctx, role):
        return calibration(asker, {f"int{bits}": ctx.forget for bits in BIT_WIDTHS})
    questions = plain(ctx.forget)
    before = asker.score(questions)
    reference = load_model(ctx.target).model if ctx.target and role != "target" else None
    out: AttackOutput = {}
    for bits in BIT_WIDTHS:
        extra = {}
        if reference is not None:
            extra["same_value_fraction"] = same_value_fraction(loaded.model, reference, bits)
        with quantized(loaded.model, bits):
            after = asker.for_model(loaded).score(questions)
        out[f"int{bits}"] = VariantResult(Measurement(before, after, extra))
    return out
