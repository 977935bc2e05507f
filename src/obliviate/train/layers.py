"""Two options that change how the decoder layers run, not what they compute.

``gradient_checkpointing`` recomputes each layer's activations in the backward pass (less
memory, about one more forward pass per step); ``compile`` compiles each layer's forward
with ``torch.compile`` for the run and gives the eager one back afterwards.
"""

from __future__ import annotations

import torch

from obliviate.errors import ObliviateError


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
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


def compile_layers(model: torch.nn.Module) -> None:
    """Replace each decoder layer's ``forward`` with its compiled version (dynamic shapes:
    batches differ in length). Hooks stay outside the compiled code, at the layers'
    boundaries, where methods and the adversary attach theirs. ``eager_layers`` undoes it."""
    layers = _decoder_layers(model)
    if not layers:
        raise ObliviateError(
            "--compile: this model does not name its decoder layers (_no_split_modules); "
            "run without --compile"
        )
    for layer in layers:
        layer.forward = torch.compile(layer.forward, dynamic=True)


def eager_layers(model: torch.nn.Module) -> None:
    """Give back the layers' own ``forward`` (after training: evaluation and generation
    need no compilation, and a saved or copied model carries none)."""
    for layer in _decoder_layers(model):
        layer.__dict__.pop("forward", None)
