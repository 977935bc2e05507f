"""The command line's options and how given settings reach a workflow.

Each option is defined once: training settings are ``TrainConfig``'s fields
(``obliviate.train.config``), the others ``obliviate.options``; a command passes on only
the options that were given (on the command line, or in a ``--config`` YAML file, the
command line winning), so the workflow's own defaults apply to the rest.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from obliviate import options as o
from obliviate.data.text import CHUNK_TOKENS
from obliviate.errors import ObliviateError
from obliviate.models.precision import check_precision
from obliviate.models.specs import check_model_spec
from obliviate.models.threads import check_threads, set_threads
from obliviate.train.config import TrainConfig, convert_setting
from obliviate.train.tracking import TRACKERS, check_report_to
from obliviate.yamltext import parse_yaml


def opt(option: o.Option, *declarations: str, **kwargs: Any) -> Any:
    """The typer option of ``option``: its flag (or ``declarations``) and help with default
    (plain text: the app renders help with click's formatter, readable at 80 columns)."""
    kwargs.setdefault("show_default", False)  # help_text states it once
    return typer.Option(*(declarations or (option.flag,)), help=option.help_text, **kwargs)


ModelOpt = Annotated[str | None, opt(o.Option("model", None, o.BASE_MODEL.help), "--model", "-m")]
BaseModelOpt = Annotated[str | None, opt(o.BASE_MODEL, "--model", "-m")]
GuardOpt = Annotated[
    str | None,
    typer.Option(
        metavar="COMPONENTS|FILE",
        help="Put the model behind a guard: prefix, input_filter, output_filter, icul "
        "(comma-separated, or all) or a YAML file of guard settings (see docs/guards.md).",
    ),
]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to create.")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="YAML file of options (keys as the long option names)."),
]
BenchOpt = Annotated[Path | None, typer.Option(help="Benchmark directory (obliviate bench make).")]
SplitOpt = Annotated[str | None, opt(o.SPLIT)]
OracleOpt = Annotated[str | None, typer.Option(help="Model retrained without the forget split.")]
TargetOpt = Annotated[str | None, typer.Option(help="Model before unlearning.")]
ForgetOpt = Annotated[Path | None, typer.Option(help="Your own forget records.")]
RetainOpt = Annotated[
    Path | None, typer.Option(help="Your own retain records (a guard calibrates on them).")
]
HoldoutOpt = Annotated[
    Path | None, typer.Option(help="Your own never-trained records (MIA non-members, control).")
]
MaxPerSplitOpt = Annotated[int | None, opt(o.MAX_PER_SPLIT)]
EvalPrecisionOpt = Annotated[str | None, opt(o.EVAL_PRECISION)]
MethodOpt = Annotated[
    str | None,
    typer.Option(help="Method name (obliviate methods); default: the recipe's default_method."),
]
ParamOpt = Annotated[
    list[str] | None, typer.Option(help="Method hyper-parameter KEY=VALUE (repeatable).")
]
EpochsOpt = Annotated[float | None, typer.Option(help="Passes over the training/forget data.")]
MaxStepsOpt = Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")]
LrOpt = Annotated[float | None, typer.Option(help="Peak learning rate.")]
BatchOpt = Annotated[
    int | None,
    typer.Option(help="Examples per micro-batch and process (forget and retain each)."),
]
GradAccumOpt = Annotated[
    int | None,
    typer.Option(
        help=f"Micro-batches per step and process ({TrainConfig.grad_accum}). A step takes "
        "batch size × this × processes examples: N processes train as one with N times this."
    ),
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        metavar="[auto|bf16|fp16|fp32]",
        help=f"Autocast dtype (default {TrainConfig.precision}: bf16 where the CPU or GPU "
        "computes it natively), bf16, fp16 (GPU only) or fp32. Weights and optimizer state "
        "stay float32.",
    ),
]
GradientCheckpointingOpt = Annotated[
    bool | None,
    typer.Option(
        "--gradient-checkpointing/--no-gradient-checkpointing",
        help="Recompute activations in the backward pass: less memory, ~1 more forward/step.",
    ),
]
GroupByLengthOpt = Annotated[
    bool | None,
    typer.Option(
        "--group-by-length/--no-group-by-length",
        help="Batch examples of like lengths together: less padding, fewer tokens per step.",
    ),
]
CompileOpt = Annotated[
    bool | None,
    typer.Option(
        "--compile/--no-compile",
        help="torch.compile each decoder layer for the run: faster steps after a compilation "
        "of about half a minute.",
    ),
]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (batch order, init).")]
LoraOpt = Annotated[
    bool | None, typer.Option("--lora/--no-lora", help="Train LoRA adapters (peft), then merge.")
]
LocalizeOpt = Annotated[
    str | None,
    typer.Option(
        metavar="SPEC",
        help="Train only part of the weights: weights:F (the fraction F with the largest "
        "gradient saliency on the forget set), layers:F (that fraction of decoder layers, "
        "by gradient norm) or layers=3,4,5. The selection goes to localize.json; "
        f"localize_batches ({TrainConfig.localize_batches}) is set in --config.",
    ),
]
OptimizerOpt = Annotated[
    str | None,
    typer.Option(
        metavar="[adamw|sophia]",
        help=f"adamw (default) or sophia: second-order, clipped diagonal-Hessian "
        f"pre-conditioning (Sophia-H). sophia_rho ({TrainConfig.sophia_rho}) and "
        f"hessian_every ({TrainConfig.hessian_every}) are set in --config.",
    ),
]
AdversarialOpt = Annotated[
    str | None,
    typer.Option(
        metavar="[latent]",
        help="latent: unlearn against a PGD perturbation of a hidden layer that restores "
        "the forget answers, so attacks recover less (raise --lr ~3x). adversarial_layer "
        f"({TrainConfig.adversarial_layer}: the middle), adversarial_epsilon "
        f"({TrainConfig.adversarial_epsilon}, relative to the activation norm) and "
        f"adversarial_steps ({TrainConfig.adversarial_steps}) are set in --config.",
    ),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace --out if it exists (atomically).")
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")
]
TrustRemoteCodeOpt = Annotated[bool | None, opt(o.TRUST_REMOTE_CODE)]
ThreadsOpt = Annotated[int | None, opt(o.THREADS, metavar="N")]
ReportToOpt = Annotated[
    str | None,
    typer.Option(
        metavar=f"[{'|'.join(TRACKERS)}]",
        help="Log every optimizer step's loss, the method's terms and the lr to --out/logs "
        "with TensorBoard or Trackio (pip install 'obliviate[tracking]'). Default: none.",
    ),
]
ChunkTokensOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"Cut passages longer than this many tokens into chunks (default {CHUNK_TOKENS}); "
        "every token of a passage carries the loss.",
    ),
]


def merge_settings(
    config_file: Path | None, cli: dict[str, Any], command: Callable[..., Any]
) -> dict[str, Any]:
    """Merge a YAML config with command-line values (those that were given win), check
    them, and apply ``threads`` (torch's CPU threads) when given.

    The file is checked against the command's own options (``cli``: the parameters of
    ``command``, the command's function, typed as its signature says) and, for a training command,
    ``TrainConfig``'s fields: an unknown key is an error naming the closest known one, and
    each value is converted to its option's type (``convert_setting``: ``1e-4`` is a
    number, ``"no"`` is not false). A run's own ``config.yaml`` is accepted back: its
    ``train:`` settings, ``data:`` files and ``models:`` are read as the options they came
    from."""
    settings: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise ObliviateError(f"config file {config_file} does not exist")
        loaded = parse_yaml(config_file.read_text(), str(config_file), "config file") or {}
        if not isinstance(loaded, dict):
            raise ObliviateError(f"config file {config_file} must be a mapping of option: value")
        settings = {str(k).replace("-", "_"): v for k, v in loaded.items()}
        settings = _unnested(settings, cli, config_file, command)
        settings = _checked(settings, cli, config_file, command)
    # A plain flag (--overwrite, --resume) left off says nothing: the file may set it.
    hints = typing.get_type_hints(command)
    unset = {k for k, v in cli.items() if v is False and hints.get(k) is bool}
    given = {k: v for k, v in cli.items() if v is not None and k not in unset}
    merged = {k: False for k in unset} | settings | given
    check_inputs(merged, command)
    set_threads(merged.get("threads"))
    return merged


#: Path options that name something the command writes, not something it reads.
WRITTEN = frozenset({"out", "config"})
#: Options that name a model to load, and those that name several (comma-separated).
MODEL_OPTIONS = ("model", "oracle", "target")
MODEL_LIST_OPTIONS = ("oracles",)
PRECISION_OPTIONS = ("precision", "relearn_precision")


def check_inputs(settings: dict[str, Any], command: Callable[..., Any]) -> None:
    """Every file, folder and model a command reads exists, checked before torch is
    imported: a mistyped path is one line in a second, not a traceback minutes in."""
    hints = typing.get_type_hints(command)
    for name, value in settings.items():
        kind = hints.get(name)
        kinds = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
        if value is None or name in WRITTEN or Path not in kinds:
            continue
        if not Path(value).expanduser().exists():
            raise ObliviateError(
                f"{flag_of(name)} {value}: no such file or directory; check the path"
            )
    specs = [(name, settings.get(name)) for name in MODEL_OPTIONS]
    for name in MODEL_LIST_OPTIONS:
        value = settings.get(name)
        listed = value.split(",") if isinstance(value, str) else (value or [])
        specs += [(name, spec.strip()) for spec in listed if spec and spec.strip()]
    for name, spec in specs:
        if isinstance(spec, str):
            check_model_spec(spec, flag_of(name))
    for name in PRECISION_OPTIONS:
        if isinstance(settings.get(name), str):
            check_precision(settings[name], flag_of(name))
    check_threads(settings.get("threads"))
    check_report_to(settings.get("report_to"))
    if isinstance(settings.get("method"), str):  # one method, or tune's comma-separated list
        for method in settings["method"].split(","):
            o.check_method_name(method.strip())


def flag_of(name: str) -> str:
    """``real_authors`` → ``--real-authors``."""
    return "--" + name.replace("_", "-")


def _command_name(command: Callable[..., Any]) -> str:
    """The name ``command`` is registered under (``eval`` for ``evaluate``)."""
    from obliviate.cli.app import app, bench_app

    for group in (app, bench_app):
        for info in group.registered_commands:
            if info.callback is command:
                return info.name or command.__name__
    return command.__name__


def _option_types(cli: dict[str, Any], command: Callable[..., Any]) -> dict[str, Any]:
    """Each option a config file may set, and its type: the command's parameters as typed
    in its function, ``TrainConfig``'s fields for a training command."""
    hints = typing.get_type_hints(command)
    kinds: dict[str, Any] = {}
    for name in cli:
        kind = hints.get(name, Any)
        options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
        if Path in options:  # a path is written as a string
            kind = str | None
        kinds[name] = kind
    kinds.pop("config", None)
    if any(f.name in kinds for f in fields(TrainConfig)):
        hints = typing.get_type_hints(TrainConfig)
        kinds |= {name: hint | None for name, hint in hints.items()}
    if "param" in kinds:
        kinds["method_params"] = dict
    return kinds


#: What a run's config.yaml records of the run without being an option: the recipe it
#: applied, a sequence's oracle fine-tune schedule and text-scenario settings.
RECORDS_ONLY = ("recipe", "oracle_train", "text_settings")


def _unnested(
    settings: dict[str, Any], cli: dict[str, Any], where: Path, command: Callable[..., Any]
) -> dict[str, Any]:
    """A run's ``config.yaml`` as options: ``train:`` settings at the top level, ``data:``
    (``primary`` as ``--data`` or ``--forget``, ``retain``, ``chunk_tokens``), ``models:``;
    its ``command`` must be this one; what only records the run (hashes, recipe) goes."""
    made_by = settings.pop("command", None)
    if made_by is not None and made_by != _command_name(command):
        raise ObliviateError(
            f"config file {where} is a `obliviate {made_by}` run's; give it to that command"
        )
    if isinstance(settings.get("train"), dict):
        settings = {k: v for k, v in settings.items() if k != "train"} | settings["train"]
    if isinstance(settings.get("data"), dict):
        data = dict(settings.pop("data"))
        data.pop("sha256", None)
        primary = "data" if "data" in cli else "forget"
        renamed = {"primary": primary, "retain": "retain", "chunk_tokens": "chunk_tokens"}
        settings |= {renamed.get(k, k): v for k, v in data.items()}
    if isinstance(settings.get("models"), dict):
        settings = {k: v for k, v in settings.items() if k != "models"} | settings["models"]
    for record in RECORDS_ONLY if made_by is not None else ("recipe",):
        settings.pop(record, None)
    if "method" not in cli and settings.get("method") == "finetune":
        del settings["method"]  # a fine-tune's config.yaml names its objective
    if "param" not in cli and not settings.get("method_params"):
        settings.pop("method_params", None)
    return settings


def _checked(
    settings: dict[str, Any], cli: dict[str, Any], where: Path, command: Callable[..., Any]
) -> dict[str, Any]:
    kinds = _option_types(cli, command)
    checked = {}
    for key, value in settings.items():
        if key not in kinds:
            close = difflib.get_close_matches(key, list(kinds), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else "see --help for the options"
            raise ObliviateError(f"config file {where}: unknown option '{key}'; {hint}")
        kind = kinds[key]
        if kind is Any:
            checked[key] = value
        elif kind is dict:
            if not isinstance(value, dict):
                raise ObliviateError(f"config file {where}: {key} must be a mapping of key: value")
            checked[key] = value
        elif _list_of(kind) is not None:
            items = value if isinstance(value, list) else [value]
            checked[key] = [_converted(v, _list_of(kind), key, where) for v in items]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            checked[key] = _converted(",".join(value), kind, key, where)  # comma-separated
        else:
            checked[key] = _converted(value, kind, key, where)
    return checked


def _list_of(kind: Any) -> Any:
    """The item type of ``list[T]`` (or ``list[T] | None``), else None."""
    for option in typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,):
        if typing.get_origin(option) is list:
            return typing.get_args(option)[0]
    return None


def _converted(value: Any, kind: Any, key: str, where: Path) -> Any:
    try:
        return convert_setting(value, kind, key)
    except ObliviateError as exc:
        raise ObliviateError(f"config file {where}: {exc}") from None


def given_options(settings: dict[str, Any], *names: str) -> dict[str, Any]:
    """The options among ``names`` that were given: the workflow's defaults fill the rest."""
    return {name: settings[name] for name in names if settings.get(name) is not None}


def train_config_from(settings: dict[str, Any], defaults: TrainConfig | None = None) -> TrainConfig:
    """``defaults`` (``TrainConfig()``'s own when None) with the training settings given."""
    names = {f.name for f in fields(TrainConfig)}
    return replace(defaults or TrainConfig(), **{k: v for k, v in settings.items() if k in names})


#: Options ``eval`` and ``audit`` pass on to their workflow when given.
EVAL_OPTIONS = (
    "bench", "split", "oracle", "target", "forget", "retain", "holdout", "max_per_split",
    "precision", "guard",
)  # fmt: skip
AUDIT_OPTIONS = EVAL_OPTIONS + (
    "attacks", "budget", "relearn_steps", "relearn_lr", "relearn_precision", "seed",
)  # fmt: skip


def chunking(settings: dict[str, Any]) -> dict[str, int]:
    """``chunk_tokens`` for the API when it was given (the API's default otherwise)."""
    return given_options(settings, "chunk_tokens")


def method_params_from(settings: dict[str, Any], param: list[str] | None) -> dict[str, Any]:
    """``method_params`` of the config file, with each ``--param KEY=VALUE`` over them."""
    params = dict(settings.get("method_params") or {})
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ObliviateError(f"--param {item!r} must look like KEY=VALUE")
        params[key] = value
    return params


def require(settings: dict[str, Any], *names: str) -> None:
    for name in names:
        if settings.get(name) is None:
            option = "--" + name.replace("_", "-")
            raise ObliviateError(f"missing {option}; see --help")
