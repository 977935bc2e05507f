"""Unlearning methods: one module each, all in one registry.

Adding a method: write ``methods/<name>.py`` with a ``@register_method`` dataclass, then
add its module name to the import below (one line).
"""

from obliviate.methods import (  # noqa: F401  (registration side effect)
    ceu,
    dpo_idk,
    ga,
    ga_kl,
    ga_mismatch,
    grad_diff,
    idk,
    npo,
    pdu,
    rmu,
    satimp,
    simnpo,
    sku,
    task_vector,
    undial,
    wga,
)
from obliviate.methods.base import Objective
from obliviate.methods.finetune import FineTune
from obliviate.methods.registry import METHODS, build_method, register_method

__all__ = ["METHODS", "FineTune", "Objective", "build_method", "register_method"]
