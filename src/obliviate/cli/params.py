"""The command line's options and how given settings reach a workflow.

Each option is defined once: training settings are ``TrainConfig``'s fields
(``obliviate.train.config``), the others ``obliviate.options``; a command passes on only
the options that were given (on the command line, or in a ``--config`` YAML file, the
command line winning), so the workflow's own defaults apply to the rest.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from obliviate import options as o
from obliviate.data.text import CHUNK_TOKENS
from obliviate.errors import ObliviateError
from obliviate.train.config import TrainConfig
from obliviate.yamltext import parse_yaml


def opt(option: o.Option, *declarations: str, **kwargs: Any) -> Any:
    """The typer option of ``option``: its flag (or ``declarations``) and help with default."""
    return typer.Option(*(declarations or (option.flag,)), help=option.help_text, **kwargs)


def describe(config: TrainConfig) -> str:
    """``5 epochs, lr 0.0001, batch 16``: the training defaults a command's help states."""
    steps = f"{config.max_steps} steps" if config.max_steps else f"{config.epochs:g} epochs"
    return f"{steps}, lr {config.lr:g}, batch {config.batch_size}, {config.scheduler} schedule"


ModelOpt = Annotated[str | None, opt(o.Option("model", None, o.BASE_MODEL.help), "--model", "-m")]
BaseModelOpt = Annotated[str | None, opt(o.BASE_MODEL, "--model", "-m")]
GuardOpt = Annotated[
    str | None,
    typer.Option(
        metavar="COMPONENTS|FILE",
        help="Put the model behind a guard: prefix, input_filter, output_filter, icul "
        "(comma-separated, or all) or a YAML file of guard settings (see the README).",
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
MethodOpt = Annotated[str | None, typer.Option(help="Method name (obliviate methods).")]
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
ChunkTokensOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"Cut passages longer than this many tokens into chunks (default {CHUNK_TOKENS}); "
        "every token of a passage carries the loss.",
    ),
]


def merge_settings(config_file: Path | None, cli: dict[str, Any]) -> dict[str, Any]:
    """Merge a YAML config with command-line values (those that were given win)."""
    settings: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise ObliviateError(f"config file {config_file} does not exist")
        loaded = parse_yaml(config_file.read_text(), str(config_file), "config file") or {}
        if not isinstance(loaded, dict):
            raise ObliviateError(f"config file {config_file} must be a mapping of option: value")
        settings = {str(k).replace("-", "_"): v for k, v in loaded.items()}
    settings.update({k: v for k, v in cli.items() if v is not None})
    return settings


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
