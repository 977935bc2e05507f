"""The one registry of unlearning methods: ``@register_method`` on a class adds it.

``obliviate methods`` prints this registry, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from obliviate.errors import ObliviateError
from obliviate.methods.base import Objective
from obliviate.options import check_method_name

METHODS: dict[str, type[Objective]] = {}


def register_method(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` selectable by its ``name``."""
    if not cls.name or cls.name in METHODS:
        raise ValueError(f"method name {cls.name!r} is empty or already registered")
    defaults = {f.name: f.default for f in fields(cls)}
    for key in cls.tunable:
        if not isinstance(defaults.get(key), int | float) or isinstance(defaults[key], bool):
            raise ValueError(f"method {cls.name!r}: tunable {key!r} is not a numeric parameter")
    METHODS[cls.name] = cls
    return cls


def build_method(name: str, params: dict[str, Any] | None = None) -> Objective:
    """Instantiate a registered method; unknown names and parameters are user errors."""
    check_method_name(name)
    cls = METHODS[name]
    known = {f.name: f for f in fields(cls)}
    params = dict(params or {})
    for key, value in params.items():
        if key not in known:
            raise ObliviateError(
                f"method '{name}' has no parameter '{key}'; its parameters are: "
                f"{', '.join(known) or 'none'}"
            )
        params[key] = _coerce(name, key, known[key].default, value)
    return cls(**params)


def _coerce(method: str, key: str, default: Any, value: Any) -> Any:
    """Give a value from the command line or YAML the type of the parameter's default."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return text in ("true", "1", "yes", "on")
        raise ObliviateError(f"parameter '{key}' of '{method}' must be true or false")
    if isinstance(default, int | float) and isinstance(value, str | int | float):
        kind = type(default)
        try:
            number = float(value)
            if kind is int and not number.is_integer():
                raise ValueError
            return kind(number)
        except ValueError as exc:
            what = "a whole number" if kind is int else "a number"
            raise ObliviateError(f"parameter '{key}' of '{method}' must be {what}") from exc
    return value
