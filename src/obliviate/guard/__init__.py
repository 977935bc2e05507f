"""Inference-time unlearning: prompt-side context, input and output filters around a model."""

from obliviate.guard.guard import COMPONENTS, Guard, GuardConfig, looks_like_refusal

__all__ = ["COMPONENTS", "Guard", "GuardConfig", "looks_like_refusal"]
