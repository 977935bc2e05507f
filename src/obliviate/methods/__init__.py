"""Unlearning methods: one module each, all in one registry.

Adding a method: write ``methods/<name>.py`` with a ``@register_method`` dataclass whose
``name`` is the module's, then add that name to ``options.METHOD_NAMES`` (one word): the
command line checks ``--method`` against that list without importing torch.
"""

from importlib import import_module

from obliviate.methods.base import Objective
from obliviate.methods.finetune import FineTune
from obliviate.methods.registry import METHODS, build_method, register_method
from obliviate.options import METHOD_NAMES

for _module in METHOD_NAMES:  # registration is the import's side effect
    import_module(f"obliviate.methods.{_module}")

__all__ = ["METHODS", "FineTune", "Objective", "build_method", "register_method"]
