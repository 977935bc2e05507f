"""Recipes as data: how the demo fine-tunes and unlearns one base model, read from YAML.

The shipped recipes are ``obliviate/recipes/<model>.yaml`` (``available_recipes``); a
user's own file has the same form::

    finetune:          # TrainConfig fields that differ from the defaults
      epochs: 7
      lr: 2e-4
    unlearn:
      epochs: 8
      lr: 2e-5
    replay: true
    method_params:     # per unlearning method, where its defaults were not best
      grad_diff:
        retain_weight: 3.0

Every value is converted to its field's type (PyYAML reads ``2e-4`` as a string; any
spelling of a number is taken) and checked; an unknown key or a wrong type is an
``ObliviateError`` naming the file and the key.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from obliviate.errors import ObliviateError
from obliviate.methods import build_method
from obliviate.train.config import TrainConfig
from obliviate.yamltext import parse_yaml

DEFAULT_RECIPE = "smollm2"
"""The recipe of a model spec without a file of its own."""


@dataclass(frozen=True)
class Recipe:
    """How the demo fine-tunes and unlearns one base model, tuned on the built-in benchmark:
    the fine-tune must teach ≥ 80 % of the facts, the unlearning must remove most of the
    forget split while keeping retain and world accuracy near the target's."""

    finetune: TrainConfig
    unlearn: TrainConfig
    replay: bool
    """Mix the base model's own answers to general questions into the fine-tunes (a
    pretrained model needs it to keep its general knowledge; a random one has none)."""
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Hyper-parameters per unlearning method, where the method's defaults were not best."""


def available_recipes() -> list[str]:
    """The model specs with a shipped recipe, sorted."""
    return sorted(p.name.removesuffix(".yaml") for p in _shipped().iterdir() if _is_recipe(p))


def load_recipe(model: str) -> Recipe:
    """The shipped recipe of ``model`` (``smollm2``, ``tiny``); any other model spec (a
    directory, a hub name, a GGUF file) gets smollm2's."""
    name = model if model in available_recipes() else DEFAULT_RECIPE
    resource = _shipped() / f"{name}.yaml"
    return _parse(resource.read_text(encoding="utf-8"), str(resource))


def recipe_from_file(path: str | Path) -> Recipe:
    """A recipe from the user's own YAML file (the form of the shipped ones)."""
    path = Path(path)
    if not path.is_file():
        raise ObliviateError(f"recipe file {path} does not exist")
    return _parse(path.read_text(encoding="utf-8"), str(path))


def _shipped() -> Any:
    return resources.files("obliviate.recipes")


def _is_recipe(entry: Any) -> bool:
    return entry.is_file() and entry.name.endswith(".yaml")


def _parse(text: str, where: str) -> Recipe:
    loaded = parse_yaml(text, where, "recipe")
    top = _mapping(loaded, where, "its top level")
    keys = [f.name for f in fields(Recipe)]
    _known_keys(top, keys, where, "")
    for key in ("finetune", "unlearn", "replay"):
        if key not in top:
            raise ObliviateError(f"recipe {where} lacks '{key}'; its keys are {', '.join(keys)}")
    return Recipe(
        finetune=_train_config(top["finetune"], where, "finetune"),
        unlearn=_train_config(top["unlearn"], where, "unlearn"),
        replay=_convert(top["replay"], bool, where, "replay"),
        method_params=_method_params(top.get("method_params"), where),
    )


def _train_config(section: Any, where: str, name: str) -> TrainConfig:
    values = _mapping(section, where, name)
    types_ = typing.get_type_hints(TrainConfig)
    _known_keys(values, list(types_), where, f"{name}.")
    converted = {k: _convert(v, types_[k], where, f"{name}.{k}") for k, v in values.items()}
    try:
        return TrainConfig(**converted)
    except ObliviateError as exc:
        raise ObliviateError(f"recipe {where}, {name}: {exc}") from exc


def _method_params(section: Any, where: str) -> dict[str, dict[str, Any]]:
    """Each method's parameters, checked and converted by the method's own fields."""
    params = {}
    for method, given in _mapping(section, where, "method_params").items():
        given = _mapping(given, where, f"method_params.{method}")
        try:
            objective = build_method(str(method), given)
        except ObliviateError as exc:
            raise ObliviateError(f"recipe {where}, method_params: {exc}") from exc
        params[str(method)] = {k: getattr(objective, k) for k in given}
    return params


def _mapping(value: Any, where: str, name: str) -> dict[str, Any]:
    """A YAML mapping (an empty entry reads as an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ObliviateError(f"recipe {where}: {name} must be a mapping of key: value")
    return {str(k): v for k, v in value.items()}


def _known_keys(values: dict[str, Any], known: list[str], where: str, prefix: str) -> None:
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = (
                f"did you mean '{prefix}{close[0]}'?"
                if close
                else f"the keys are {', '.join(known)}"
            )
            raise ObliviateError(f"recipe {where} has unknown key '{prefix}{key}'; {hint}")


def _convert(value: Any, kind: Any, where: str, key: str) -> Any:
    """``value`` as the field type ``kind`` (``float``, ``int``, ``bool``, ``str``, or one
    of them ``| None``); numbers in any spelling, non-finite ones refused. A whole number
    stays an ``int`` in a float field: the fine-tune cache keys on the values' JSON, where
    ``7`` and ``7.0`` differ."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    if value is None and type(None) in options:
        return None
    base = next(t for t in options if t is not type(None))
    converted = _as(value, base)
    if converted is None:
        what = {float: "a number", int: "a whole number", bool: "true or false"}
        wanted = what.get(base, "a string")
        if type(None) in options:
            wanted += " or null"
        raise ObliviateError(f"recipe {where}: {key} must be {wanted}, not {value!r}")
    return converted


def _as(value: Any, base: type) -> Any:
    """``value`` as ``base``, or None where it is not one."""
    if base is bool or isinstance(value, bool):
        return value if base is bool and isinstance(value, bool) else None
    if base is str:
        return value if isinstance(value, str) else None
    if not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if isinstance(value, int):
        return value  # also in a float field, as Python's TrainConfig(epochs=7) keeps it
    if base is int:
        return int(number) if number.is_integer() else None
    return number
