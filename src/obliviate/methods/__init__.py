"""Unlearning methods: one module each, all in one registry.

Adding a method: write ``methods/<name>.py`` with a ``@register_method`` dataclass, then
import it below (one line).
"""

from obliviate.methods import ga, grad_diff  # noqa: F401  (registration side effect)
from obliviate.methods.base import Objective
from obliviate.methods.finetune import FineTune
from obliviate.methods.registry import METHODS, build_method, register_method

__all__ = ["METHODS", "FineTune", "Objective", "build_method", "register_method"]
