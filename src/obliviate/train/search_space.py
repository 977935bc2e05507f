"""What ``obliviate tune`` searches, and the recipe a trial's point makes.

Every method shares two dimensions, its learning rate (log scale) and its length (epochs,
or optimizer steps where ``--steps-range`` is given), centred on the schedule of the
model's recipe for that method (``train/recipes.py``): lr from ÷ 5 to × 5 of the recipe's,
epochs from half to twice. Each method adds the hyper-parameters it declares in its
``tunable`` ranges (``methods/*.py``: loss weights, β, γ, λ …). ``--search lora`` adds
LoRA with its rank (4–64, log scale; the lr range then moves up tenfold, as adapters need),
``--search localize`` the fraction of weights trained (``weights:F``, F from 0.02 to 0.5,
log scale; ``layers:F``, F from 0.25 to 1, with LoRA).

The dimensions are named per method (``npo.lr``, ``npo.beta``) so the sampler models each
method's own landscape. Everything else (batch size, schedule, precision, seed) is the
recipe's, and a trial's recipe states it all: ``recipe_settings`` is what
``obliviate unlearn --config`` reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Protocol

from obliviate.errors import ObliviateError
from obliviate.methods import METHODS, build_method
from obliviate.methods.base import Range
from obliviate.train.config import TrainConfig

#: The extra dimensions ``--search`` may add.
EXTRAS = ("lora", "localize")
LORA_RANK = Range(4, 64, log=True, integer=True)
LOCALIZE_WEIGHTS = Range(0.02, 0.5, log=True)
LOCALIZE_LAYERS = Range(0.25, 1.0)
#: How far the learning rate is searched around the recipe's (each way, log scale).
LR_SPAN = 5.0
#: LoRA adapters train at about this many times a full fine-tune's learning rate.
LORA_LR_FACTOR = 10.0


class Trial(Protocol):
    """The part of ``optuna.Trial`` a search space asks (so this module needs no optuna)."""

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...


@dataclass(frozen=True)
class MethodSpace:
    """One method's dimensions and the fixed schedule around them."""

    method: str
    base: TrainConfig
    """The recipe's schedule for this method (batch size, scheduler, precision, seed …)."""
    defaults: dict[str, Any]
    """The recipe's hyper-parameters for this method (the method's own defaults elsewhere)."""
    ranges: dict[str, Range]
    """``lr``, ``epochs`` or ``max_steps``, maybe ``lora_rank`` and ``localize``, then the
    method's own tunables."""


@dataclass(frozen=True)
class SearchSpace:
    methods: tuple[MethodSpace, ...]
    extras: tuple[str, ...] = ()

    def describe(self) -> dict[str, dict[str, str]]:
        """Method → dimension → ``low–high (log)``: what results.json records."""
        return {m.method: {k: str(r) for k, r in m.ranges.items()} for m in self.methods}


@dataclass(frozen=True)
class Candidate:
    """One point of the space: a method, its hyper-parameters and the training settings."""

    method: str
    config: TrainConfig
    method_params: dict[str, Any] = field(default_factory=dict)


def parse_range(text: str | tuple[float, float] | None, option: str) -> tuple[float, float] | None:
    """``"1e-5,1e-3"`` (or a pair) → (low, high); one-line errors name ``option``."""
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise ObliviateError(f"{option} must be LOW,HIGH (two numbers), not {text!r}") from None
    if not 0 < low < high:
        raise ObliviateError(f"{option} must be LOW,HIGH with 0 < LOW < HIGH, not {text!r}")
    return low, high


def search_space(
    methods: list[str],
    schedules: dict[str, TrainConfig],
    defaults: dict[str, dict[str, Any]],
    lr_range: tuple[float, float] | None = None,
    epochs_range: tuple[float, float] | None = None,
    steps_range: tuple[float, float] | None = None,
    extras: tuple[str, ...] = (),
) -> SearchSpace:
    """The space over ``methods``, each around its recipe's schedule (``schedules``) and
    hyper-parameters (``defaults``); the ranges given replace the recipe-centred ones."""
    if not methods:
        raise ObliviateError("no method to tune; give --method, e.g. npo,grad_diff")
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ObliviateError(f"--search takes {' and '.join(EXTRAS)}, not {', '.join(unknown)}")
    if epochs_range and steps_range:
        raise ObliviateError("give --epochs-range or --steps-range, not both")
    spaces = []
    for method in dict.fromkeys(methods):
        build_method(method, defaults.get(method))  # an unknown method fails here, in one line
        base = schedules[method]
        ranges: dict[str, Range] = {"lr": _lr_range(base, lr_range, "lora" in extras)}
        if steps_range or (base.max_steps and not epochs_range):
            low, high = steps_range or (max(1, base.max_steps // 2), 2 * base.max_steps)
            ranges["max_steps"] = Range(round(low), round(high), log=True, integer=True)
        else:
            low, high = epochs_range or (
                (max(1, round(base.epochs / 2)), round(2 * base.epochs))
                if base.epochs >= 1
                else (base.epochs / 2, 2 * base.epochs)
            )
            whole = float(low).is_integer() and float(high).is_integer()
            ranges["epochs"] = Range(low, high, integer=whole)
        if "lora" in extras:
            ranges["lora_rank"] = LORA_RANK
        if "localize" in extras:
            ranges["localize"] = LOCALIZE_LAYERS if "lora" in extras else LOCALIZE_WEIGHTS
        ranges |= METHODS[method].tunable
        spaces.append(MethodSpace(method, base, dict(defaults.get(method) or {}), ranges))
    return SearchSpace(tuple(spaces), tuple(extras))


def _lr_range(base: TrainConfig, given: tuple[float, float] | None, lora: bool) -> Range:
    if given:
        return Range(*given, log=True)
    centre = base.lr * (LORA_LR_FACTOR if lora else 1.0)
    return Range(centre / LR_SPAN, centre * LR_SPAN, log=True)


def _round(value: float) -> float:
    """Three significant digits: the recipe reads ``3.17e-05``, not ``3.1702265e-05``."""
    return float(f"{value:.3g}")


def suggest(space: SearchSpace, trial: Trial) -> Candidate:
    """The candidate ``trial`` samples: a method, then each of that method's dimensions."""
    method = trial.suggest_categorical("method", [m.method for m in space.methods])
    chosen = next(m for m in space.methods if m.method == method)
    values = {}
    for name, r in chosen.ranges.items():
        key = f"{method}.{name}"
        if r.integer:
            values[name] = trial.suggest_int(key, int(r.low), int(r.high), log=r.log)
        else:
            values[name] = _round(trial.suggest_float(key, r.low, r.high, log=r.log))
    return candidate(chosen, values)


def candidate(space: MethodSpace, values: dict[str, Any]) -> Candidate:
    """The candidate of one method's dimension ``values`` (train settings and tunables)."""
    settings: dict[str, Any] = {"lr": values["lr"]}
    if "max_steps" in values:
        settings["max_steps"] = int(values["max_steps"])
    else:
        settings |= {"epochs": values["epochs"], "max_steps": None}
    if "min_steps" in {f.name for f in fields(TrainConfig)}:
        settings["min_steps"] = 0  # the searched length is the length
    if "lora_rank" in values:
        rank = int(values["lora_rank"])
        settings |= {"lora": True, "lora_rank": rank, "lora_alpha": 2 * rank}
    if "localize" in values:
        kind = "layers" if "lora_rank" in values else "weights"
        settings["localize"] = f"{kind}:{values['localize']:.3g}"
    params = dict(space.defaults)
    params |= {k: v for k, v in values.items() if k in METHODS[space.method].tunable}
    # Every parameter, the untuned at their values: the recipe says all it ran with.
    params = build_method(space.method, params).params()
    return Candidate(space.method, replace(space.base, **settings), params)


def starting_points(space: SearchSpace) -> list[dict[str, Any]]:
    """One point per method: its recipe as it is (clipped into the ranges), for the first
    trials, so the search starts from what is known to work and can only improve on it."""
    points = []
    for m in space.methods:
        objective = build_method(m.method, m.defaults)
        known = {
            "lr": m.base.lr * (LORA_LR_FACTOR if "lora" in space.extras else 1.0),
            "epochs": m.base.epochs,
            # A recipe counted in epochs has no step count: the range's middle stands in.
            "max_steps": m.base.max_steps or _middle(m.ranges.get("max_steps")),
            "lora_rank": m.base.lora_rank,
            "localize": 0.1 if "lora" not in space.extras else 0.5,
        }
        point: dict[str, Any] = {"method": m.method}
        for name, r in m.ranges.items():
            value = known[name] if name in known else getattr(objective, name)
            point[f"{m.method}.{name}"] = r.clip(value)
        points.append(point)
    return points


def _middle(span: Range | None) -> float:
    if span is None:
        return 1
    return (span.low * span.high) ** 0.5 if span.log else (span.low + span.high) / 2


def recipe_settings(candidate: Candidate) -> dict[str, Any]:
    """The candidate as ``obliviate unlearn --config`` reads it: ``method``,
    ``method_params`` and every training setting (nulls included, so the recipe of the
    model's own defaults cannot fill one in under it)."""
    config = asdict(candidate.config)
    first = ["lr", "max_steps" if candidate.config.max_steps else "epochs"]
    settings: dict[str, Any] = {
        "method": candidate.method,
        "method_params": dict(candidate.method_params),
    }
    settings |= {k: config.pop(k) for k in first}
    return settings | config
