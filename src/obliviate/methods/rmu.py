"""Representation Misdirection for Unlearning (RMU): scramble a middle layer on forget data.

Li et al., 2024, "The WMDP benchmark: measuring and reducing malicious use with
unlearning". With h_ℓ the output of decoder layer ℓ, u a fixed random unit vector and
h_ℓ^frozen the same layer of a frozen copy of the model before unlearning,

    L = mean_{t ∈ forget} ‖h_ℓ(t) − c·u‖² + α · mean_{t ∈ retain} ‖h_ℓ(t) − h_ℓ^frozen(t)‖²

and only the layers just below ℓ (ℓ−2, ℓ−1, ℓ) are trained. Pushing the forget
activations to a large, meaningless vector leaves the later layers nothing to decode,
while the retain term keeps every other activation where it was.

Which tokens: the forget term covers the positions that predict a label (the last prompt
token and the answer tokens for a question; every token of a passage, as WMDP trains on
text), not the shared prompt template, whose activations are the same in retain
examples and would be pulled both ways. The retain term covers every non-padding token.

Scale: WMDP's c = 6.5 and α = 1200 are tuned to Zephyr-7B's layer-7 activations. Norms
differ between models by orders of magnitude (SmolLM2-135M's layer 10: about 160), so by
default c is set in ``prepare`` to ``norm_multiple`` × the mean ‖h_ℓ‖ of the forget
tokens (Adaptive RMU, Dang et al., 2024, likewise scales c with the frozen activation
norm, per example); a positive ``steering_coeff`` fixes c instead. Only three layers
train and the loss stops at layer ℓ, so RMU wants a larger learning rate than
whole-model methods (5e-4 for SmolLM2-135M on the built-in benchmark; 2e-4 barely moves
it in the same 32 steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from obliviate.errors import ObliviateError
from obliviate.methods.base import (
    Batch,
    Objective,
    Range,
    TrainingContext,
    frozen_copy,
    per_example,
)
from obliviate.methods.registry import register_method
from obliviate.models.encoding import label_mask


class _LayerReached(Exception):
    """Raised by the capture hook: nothing above layer ℓ is needed, so stop there."""


def layer_output(model: torch.nn.Module, layer: int, batch: Batch) -> torch.Tensor:
    """Hidden states leaving decoder layer ``layer``, shape (batch, width, hidden).

    A forward hook takes the layer's output and stops the forward pass, so the layers
    above ℓ (two thirds of the model by default) are never computed.
    """
    captured: list[torch.Tensor] = []

    def capture(module: torch.nn.Module, args: object, output: object) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)
        raise _LayerReached

    handle = model.get_decoder().layers[layer].register_forward_hook(capture)
    try:
        model.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    except _LayerReached:
        pass
    finally:
        handle.remove()
    return captured[0]


def steered_positions(batch: Batch) -> torch.Tensor:
    """Boolean (batch, width) mask of the positions whose next token is a label."""
    mask = torch.zeros_like(batch["attention_mask"], dtype=torch.bool)
    mask[:, :-1] = label_mask(batch).bool()
    return mask


def mean_steered_norm(model: torch.nn.Module, layer: int, batch: Batch) -> torch.Tensor:
    """Per-example mean ‖h_ℓ‖ over the steered positions, shape (batch,)."""
    norms = layer_output(model, layer, batch).float().norm(dim=-1)
    mask = steered_positions(batch).float()
    return (norms * mask).sum(-1) / mask.sum(-1).clamp(min=1)


@register_method
@dataclass
class RMU(Objective):
    name = "rmu"
    summary = "steer layer-ℓ activations on forget tokens to a random vector, keep retain's"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "norm_multiple": Range(1.0, 10.0, log=True),
        "alpha": Range(20.0, 2000.0, log=True),
    }

    layer: int = -1
    """ℓ, the steered decoder layer (0-based); negative means L // 3 for an L-layer model
    (WMDP steers layer 7 of Zephyr's 32, about a fifth to a third of the depth)."""
    update_layers: str = ""
    """Comma-separated layers to train (e.g. "5,6,7"); empty means ℓ−2, ℓ−1, ℓ (WMDP's)."""
    steering_coeff: float = 0.0
    """c; ≤ 0 means ``norm_multiple`` × the mean forget activation norm (WMDP: 6.5 for
    Zephyr-7B)."""
    norm_multiple: float = 4.0
    """c as a multiple of the mean ‖h_ℓ‖ on forget tokens, when ``steering_coeff`` ≤ 0
    (tuned on the built-in benchmark with SmolLM2-135M, whose layer-10 norm is about 160)."""
    alpha: float = 200.0
    """α: weight of the retain activation loss. Tuned on the built-in benchmark with
    SmolLM2-135M (forget10, 32 steps at lr 5e-4: forget accuracy 1.00 → 0.10, retain
    0.88 → 0.88); WMDP's 1200 (Zephyr-7B) left the forget answers untouched there. What
    matters is α against ``norm_multiple``: the retain pull balances the forget push at a
    relative drift of about norm_multiple / α."""
    seed: int = 0
    """Seed of the random direction u (WMDP draws u uniformly from [0, 1)^d, normalised)."""

    def prepare(self, context: TrainingContext) -> None:
        model = context.model
        n_layers = len(model.get_decoder().layers)
        self._layer = self.layer if self.layer >= 0 else n_layers // 3
        try:
            self._update = (
                [int(i) for i in self.update_layers.split(",")]
                if self.update_layers.strip()
                else list(range(max(0, self._layer - 2), self._layer + 1))
            )
        except ValueError as exc:
            raise ObliviateError(
                f"rmu's update_layers must be comma-separated layer numbers, not "
                f"{self.update_layers!r}"
            ) from exc
        if not all(0 <= i <= self._layer < n_layers for i in self._update):
            raise ObliviateError(
                f"rmu needs 0 ≤ update_layers ≤ layer < {n_layers} (layers above the steered "
                f"one get no gradient); got layer {self._layer}, update_layers {self._update}"
            )
        self._reference = frozen_copy(model)
        layers = model.get_decoder().layers
        for parameter in (p for i in self._update for p in layers[i].parameters()):
            parameter.requires_grad_(True)
        self._freeze_outside_update_layers(model)
        hidden = model.config.hidden_size
        generator = torch.Generator().manual_seed(self.seed)
        direction = torch.rand(hidden, generator=generator)
        coeff = self.steering_coeff
        if coeff <= 0:
            norms = per_example(
                model,
                context.primary,
                context.tokenizer.pad_token_id,
                lambda m, b: mean_steered_norm(m, self._layer, b),
            )
            coeff = self.norm_multiple * float(norms.mean())
        self.steering_norm = coeff
        self._control = coeff * direction / direction.norm()

    def _freeze_outside_update_layers(self, model: torch.nn.Module) -> None:
        """Stop every parameter outside the update layers from training.

        Run again on the first batch of each new model object: LoRA wraps the model after
        ``prepare`` and adds trainable adapters to every layer, and those outside the
        update layers must not move either (the optimizer skips parameters without a
        gradient).
        """
        layers = model.get_decoder().layers
        allowed = {id(p) for i in self._update for p in layers[i].parameters()}
        for parameter in model.parameters():
            if id(parameter) not in allowed:
                parameter.requires_grad_(False)
        self._frozen_in = id(model)

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if self._frozen_in != id(model):
            self._freeze_outside_update_layers(model)
        device = forget["input_ids"].device
        if next(self._reference.parameters()).device != device:
            self._reference.to(device)
        steered = layer_output(model, self._layer, forget)[steered_positions(forget)].float()
        forget_loss = (steered - self._control.to(device)).square().sum(-1).mean()
        kept = retain["attention_mask"].bool()
        current = layer_output(model, self._layer, retain)[kept].float()
        with torch.no_grad():
            frozen = layer_output(self._reference, self._layer, retain)[kept].float()
        retain_loss = (current - frozen).square().sum(-1).mean()
        loss = forget_loss + self.alpha * retain_loss
        return loss, {
            "forget_activation_loss": forget_loss.item(),
            "retain_activation_loss": retain_loss.item(),
            "forget_activation_norm": steered.detach().norm(dim=-1).mean().item(),
        }
