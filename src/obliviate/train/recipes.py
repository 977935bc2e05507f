"""Recipes as data: how one base model is fine-tuned and unlearned, read from YAML.

The shipped recipes are ``obliviate/recipes/<model>.yaml`` (``available_recipes``); a
user's own file has the same form::

    finetune:          # TrainConfig fields that differ from the defaults
      epochs: 7
      lr: 2e-4
    unlearn:           # `obliviate unlearn`'s default schedule (and the demo's)
      epochs: 8
      lr: 2e-5
      min_steps: 32
    replay: true
    default_method: grad_diff   # `obliviate unlearn` without --method
    known_method: rmu           # knowledge from pretraining (`demo --quick`)
    methods:           # per unlearning method, where the shared settings were not best
      grad_diff:
        params: {retain_weight: 3.0}   # its hyper-parameters
      rmu:
        train: {lr: 5e-4}              # TrainConfig fields over `unlearn`

Every value is converted to its field's type (PyYAML reads ``2e-4`` as a string; any
spelling of a number is taken) and checked; an unknown key or a wrong type is an
``ObliviateError`` naming the file and the key.

``obliviate unlearn`` (and each step of ``sequence``) starts from the recipe of the model's
base (``recipe_for``: a run directory's manifest is followed back to the model it was
fine-tuned or unlearned from), so its settings are: TrainConfig's defaults < that recipe's
``unlearn`` < its ``methods.<method>.train`` < ``--config`` < the command line.
"""

from __future__ import annotations

import difflib
import json
import typing
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from obliviate.errors import ObliviateError
from obliviate.train.config import TrainConfig, convert_setting
from obliviate.yamltext import parse_yaml

DEFAULT_RECIPE = "smollm2"
"""The recipe of a model spec without a file of its own."""

DEFAULT_METHOD = "grad_diff"
"""A recipe's ``default_method`` where its file names none."""


@dataclass(frozen=True)
class MethodRecipe:
    """One unlearning method's entry in a recipe: where the shared settings were not best."""

    params: dict[str, Any] = field(default_factory=dict)
    """Its hyper-parameters (``--param``), checked and converted by the method's fields."""
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields over the recipe's ``unlearn`` schedule (RMU's lr, say)."""


@dataclass(frozen=True)
class Recipe:
    """How one base model is fine-tuned (targets and oracles) and unlearned, tuned on the
    built-in benchmark: the fine-tune must teach ≥ 80 % of the facts, the unlearning must
    remove most of the forget split while keeping retain and world accuracy near the
    target's. ``unlearn`` is ``obliviate unlearn``'s default schedule and the demo's."""

    finetune: TrainConfig
    unlearn: TrainConfig
    replay: bool
    """Mix the base model's own answers to general questions into the fine-tunes (a
    pretrained model needs it to keep its general knowledge; a random one has none)."""
    default_method: str = DEFAULT_METHOD
    """The method of ``obliviate unlearn`` without ``--method``."""
    known_method: str | None = None
    """The method for knowledge the model got in pretraining, where no fine-tune is there to
    undo (``demo --quick``); None: ``default_method``. Tuned apart because such knowledge
    resists the schedule that removes a fine-tune's facts."""
    methods: dict[str, MethodRecipe] = field(default_factory=dict)
    """Per unlearning method, where the method's defaults or the shared schedule were not best."""

    @property
    def method_for_known(self) -> str:
        """``known_method``, or ``default_method`` where the recipe names none."""
        return self.known_method or self.default_method

    def method_params(self, method: str) -> dict[str, Any]:
        """``method``'s hyper-parameters in this recipe (empty: the method's own defaults)."""
        entry = self.methods.get(method)
        return dict(entry.params) if entry else {}

    def unlearn_config(self, method: str) -> TrainConfig:
        """The unlearning schedule of ``method``: ``unlearn`` with the method's ``train``."""
        entry = self.methods.get(method)
        return replace(self.unlearn, **entry.train) if entry and entry.train else self.unlearn


@dataclass(frozen=True)
class RecipeChoice:
    """Which recipe a model gets, and why (recorded in results.json and config.yaml)."""

    name: str
    """The recipe: ``smollm2``, ``tiny``."""
    source: str
    """Its file."""
    base_model: str
    """The model spec the recipe was chosen for: the model itself, or the base a run
    directory was fine-tuned or unlearned from (followed through its manifests)."""

    def record(self) -> dict[str, str]:
        return {"name": self.name, "source": self.source, "base_model": self.base_model}


def available_recipes() -> list[str]:
    """The model specs with a shipped recipe, sorted."""
    return sorted(p.name.removesuffix(".yaml") for p in _shipped().iterdir() if _is_recipe(p))


def load_recipe(model: str, check_methods: bool = True) -> Recipe:
    """The shipped recipe of ``model`` (``smollm2``, ``tiny``); any other model spec (a
    directory, a hub name, a GGUF file) gets smollm2's. ``check_methods=False`` skips
    checking the per-method parameters against the method registry (which loads torch):
    for the command line's help."""
    name = model if model in available_recipes() else DEFAULT_RECIPE
    resource = _shipped() / f"{name}.yaml"
    return _parse(resource.read_text(encoding="utf-8"), str(resource), check_methods)


def recipe_for(model: str) -> tuple[Recipe, RecipeChoice]:
    """The recipe of ``model``'s base model (``base_model``), with the record of the choice."""
    base = base_model(model)
    name = base if base in available_recipes() else DEFAULT_RECIPE
    choice = RecipeChoice(name, f"obliviate/recipes/{name}.yaml", base)
    return load_recipe(name), choice


def base_model(model: str) -> str:
    """The model spec ``model`` descends from: a run directory's manifest names the model it
    was trained from (``model.spec``, else the directory it was loaded from), followed back
    until a spec that is not a run directory (``tiny``, ``smollm2``, a hub id, a GGUF file,
    a plain model directory)."""
    seen: set[str] = set()
    spec = model
    while spec not in seen:
        seen.add(spec)
        manifest = _manifest_of(spec)
        if manifest is None:
            return spec
        recorded = manifest.get("model") or {}
        parents = [recorded.get("spec"), recorded.get("source")]
        found = [p for p in parents if isinstance(p, str) and p]
        runs = [p for p in found if _manifest_of(p) is not None]
        if not found:
            return spec
        spec = runs[0] if runs else found[0]
    return spec


def _manifest_of(spec: str) -> dict[str, Any] | None:
    """The manifest of the run directory ``spec`` names (itself, or the run holding a
    ``model/`` directory), or None."""
    path = Path(spec).expanduser()
    for directory in (path, path.parent if path.name == "model" else None):
        if directory is None:
            continue
        manifest = directory / "manifest.json"
        if manifest.is_file():
            try:
                loaded = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            return loaded if isinstance(loaded, dict) else None
    return None


def describe_finetunes() -> str:
    """``smollm2 (and any model without its own): 7 epochs, lr 0.0002, batch 16; tiny: …``:
    the fine-tune defaults ``obliviate finetune --help`` states, from the files."""
    parts = []
    for name in available_recipes():
        config = load_recipe(name, check_methods=False).finetune
        who = f"{name} (and any model without its own)" if name == DEFAULT_RECIPE else name
        schedule = f"{config.epochs:g} epochs, lr {config.lr:g}, batch {config.batch_size}"
        parts.append(f"{who}: {schedule}")
    return "; ".join(parts)


def describe_recipes() -> str:
    """``smollm2 (and any model without its own): grad_diff, 8 epochs (≥ 32 steps), …;
    tiny: …``: the unlearning defaults ``obliviate unlearn --help`` states, from the files."""
    parts = []
    for name in available_recipes():
        recipe = load_recipe(name, check_methods=False)
        config = recipe.unlearn
        steps = (
            f"{config.max_steps} steps"
            if config.max_steps
            else f"{config.epochs:g} epochs"
            + (f" (≥ {config.min_steps} steps)" if config.min_steps else "")
        )
        own = [
            f"{method} "
            + ", ".join(
                [
                    f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in {**entry.train, **entry.params}.items()
                ]
            )
            for method, entry in sorted(recipe.methods.items())
        ]
        who = f"{name} (and any model without its own)" if name == DEFAULT_RECIPE else name
        text = (
            f"{who}: {recipe.default_method}, {steps}, lr {config.lr:g}, batch "
            f"{config.batch_size}, {config.scheduler} schedule"
        )
        parts.append(text + (f"; {'; '.join(own)}" if own else ""))
    return ". ".join(parts)


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


def _parse(text: str, where: str, check_methods: bool = True) -> Recipe:
    loaded = parse_yaml(text, where, "recipe")
    top = _mapping(loaded, where, "its top level")
    keys = [f.name for f in fields(Recipe)]
    _known_keys(top, keys, where, "")
    for key in ("finetune", "unlearn", "replay"):
        if key not in top:
            raise ObliviateError(f"recipe {where} lacks '{key}'; its keys are {', '.join(keys)}")
    unlearn = _train_config(top["unlearn"], where, "unlearn")
    methods = _methods(top.get("methods"), unlearn, where, check_methods)
    default_method = _convert(
        top.get("default_method", DEFAULT_METHOD), str, where, "default_method"
    )
    known_method = top.get("known_method")
    if known_method is not None:
        known_method = _convert(known_method, str, where, "known_method")
    if check_methods:
        _check_method(default_method, {}, where, "default_method")
        if known_method is not None:
            _check_method(known_method, {}, where, "known_method")
    return Recipe(
        finetune=_train_config(top["finetune"], where, "finetune"),
        unlearn=unlearn,
        replay=_convert(top["replay"], bool, where, "replay"),
        default_method=default_method,
        known_method=known_method,
        methods=methods,
    )


def _train_values(section: Any, where: str, name: str) -> dict[str, Any]:
    """A mapping of TrainConfig fields, each converted to its field's type."""
    values = _mapping(section, where, name)
    types_ = typing.get_type_hints(TrainConfig)
    _known_keys(values, list(types_), where, f"{name}.")
    return {k: _convert(v, types_[k], where, f"{name}.{k}") for k, v in values.items()}


def _train_config(
    section: Any, where: str, name: str, base: TrainConfig | None = None
) -> TrainConfig:
    converted = _train_values(section, where, name)
    try:
        return replace(base, **converted) if base else TrainConfig(**converted)
    except ObliviateError as exc:
        raise ObliviateError(f"recipe {where}, {name}: {exc}") from exc


def _methods(
    section: Any, unlearn: TrainConfig, where: str, check: bool
) -> dict[str, MethodRecipe]:
    """Each method's entry: ``params`` checked and converted by the method's own fields,
    ``train`` by TrainConfig's (and checked over the ``unlearn`` schedule)."""
    methods = {}
    for method, entry in _mapping(section, where, "methods").items():
        entry = _mapping(entry, where, f"methods.{method}")
        _known_keys(entry, ["params", "train"], where, f"methods.{method}.")
        params = _mapping(entry.get("params"), where, f"methods.{method}.params")
        if check:
            params = _check_method(method, params, where, f"methods.{method}.params")
        train = _train_values(entry.get("train"), where, f"methods.{method}.train")
        _train_config(train, where, f"methods.{method}.train", unlearn)
        methods[method] = MethodRecipe(params=params, train=train)
    return methods


def _check_method(method: str, params: dict[str, Any], where: str, key: str) -> dict[str, Any]:
    """``params`` converted by ``method``'s fields; an unknown method or parameter refused."""
    from obliviate.methods import build_method  # the registry loads torch: only when asked

    try:
        objective = build_method(method, params)
    except ObliviateError as exc:
        raise ObliviateError(f"recipe {where}, {key}: {exc}") from exc
    return {k: getattr(objective, k) for k in params}


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
    """``value`` as the field type ``kind`` (``convert_setting``), naming the recipe."""
    try:
        return convert_setting(value, kind, key)
    except ObliviateError as exc:
        raise ObliviateError(f"recipe {where}: {exc}") from None
