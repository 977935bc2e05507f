"""``obliviate finetune``, ``unlearn`` and ``sequence``: the commands that train."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from obliviate import options as o
from obliviate.cli.app import app, stdout
from obliviate.cli.params import (
    AdversarialOpt,
    BaseModelOpt,
    BatchOpt,
    ChunkTokensOpt,
    CompileOpt,
    ConfigOpt,
    EpochsOpt,
    GradAccumOpt,
    GradientCheckpointingOpt,
    GroupByLengthOpt,
    LocalizeOpt,
    LoraOpt,
    LrOpt,
    MaxPerSplitOpt,
    MaxStepsOpt,
    MethodOpt,
    ModelOpt,
    OptimizerOpt,
    OutOpt,
    OverwriteOpt,
    ParamOpt,
    PrecisionOpt,
    ReportToOpt,
    ResumeOpt,
    SeedOpt,
    ThreadsOpt,
    TrustRemoteCodeOpt,
    chunking,
    given_options,
    merge_settings,
    method_params_from,
    opt,
    require,
    train_config_from,
)
from obliviate.models.adapters import check_keep_adapter
from obliviate.train.config import TrainConfig
from obliviate.train.health import COLLAPSE_FRACTION, FORGET_MARGIN
from obliviate.train.recipes import (
    base_model,
    describe_finetunes,
    describe_recipes,
    load_recipe,
    recipe_for,
)

KeepAdapterOpt = Annotated[bool | None, opt(o.KEEP_ADAPTER, "--keep-adapter/--merge-lora")]


def _check_keep_adapter(settings: dict[str, Any], schedule: TrainConfig) -> None:
    """``--keep-adapter`` without LoRA (given, or in ``schedule``: the recipe's), refused
    before torch is imported."""
    check_keep_adapter(bool(settings.get("keep_adapter")), settings.get("lora", schedule.lora))


def _check_unlearn_keep_adapter(settings: dict[str, Any]) -> None:
    """``_check_keep_adapter`` over the unlearning schedule of the recipe of ``--model``'s
    base, read without its method check (the registry loads torch)."""
    if settings.get("keep_adapter"):
        recipe = load_recipe(base_model(settings["model"]), check_methods=False)
        method = settings.get("method") or recipe.default_method
        _check_keep_adapter(settings, recipe.unlearn_config(method))


def training_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The training settings given (command line or ``--config``): what goes over the
    recipe's schedule."""
    return given_options(settings, *(f.name for f in fields(TrainConfig)))


@app.command(
    help="Fine-tune a model on records (loss on answers only): makes a target or an oracle.\n\n"
    f"Defaults: the recipe of the model's base: {describe_finetunes()}. Cached by a hash of "
    "(model, data, settings)."
)
def finetune(
    model: BaseModelOpt = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Records file (JSONL/CSV/TOFU JSON/.txt), folder of .txt files or benchmark dir."
        ),
    ] = None,
    text: Annotated[
        bool,
        typer.Option(
            "--text", help="With a benchmark dir: train on its passages (full.text.jsonl)."
        ),
    ] = False,
    chunk_tokens: ChunkTokensOpt = None,
    out: OutOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    lr: LrOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = None,
    lora: LoraOpt = None,
    localize: LocalizeOpt = None,
    optimizer: OptimizerOpt = None,
    grad_accum: GradAccumOpt = None,
    precision: PrecisionOpt = None,
    gradient_checkpointing: GradientCheckpointingOpt = None,
    group_by_length: GroupByLengthOpt = None,
    compile: CompileOpt = None,
    report_to: ReportToOpt = None,
    keep_adapter: KeepAdapterOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not reuse or store.")] = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    s = merge_settings(config, locals() | {"config": None}, finetune)
    require(s, "data", "out")
    schedule = train_config_from(s, recipe_for(s.get("model", o.BASE_MODEL.default))[0].finetune)
    _check_keep_adapter(s, schedule)
    from obliviate import api

    result = api.finetune(
        s.get("model", o.BASE_MODEL.default),
        s["data"],
        s["out"],
        schedule,
        overwrite=s["overwrite"],
        resume=s["resume"],
        trust_remote_code=bool(s.get("trust_remote_code")),
        use_cache=not s["no_cache"],
        text=s["text"],
        **given_options(s, "keep_adapter"),
        **chunking(s),
    )
    if api.processes().is_main_process:  # in a distributed run the main process reports
        stdout.print(f"fine-tuned model written to {result.out}")


@app.command(
    help="Unlearn the --forget records from --model with --method, keeping --retain.\n\n"
    "Defaults: the recipe of the model's base (a run directory's manifest is followed back "
    "to the model it was trained from; TrainConfig's defaults < the recipe < --config < the "
    f"options given), over the forget set: {describe_recipes()}.\n\n"
    f"Checks: the forget answers' mean log-prob must fall by {FORGET_MARGIN} nats/token, or "
    "the run exits 2 and publishes nothing (--allow-weak publishes it anyway); every "
    "collapse_check_every steps (--config; 0: off) training stops when the retain answers' "
    f"mean NLL has gone {COLLAPSE_FRACTION:.0%} of the way from its start to a uniform "
    "guess's (ln of the vocabulary size), keeping the last good checkpoint. The "
    "source model is never modified; the result goes to --out/model."
)
def unlearn(
    model: ModelOpt = None,
    forget: Annotated[
        Path | None, typer.Option(help="Records to forget (a file, or a folder of .txt files).")
    ] = None,
    retain: Annotated[Path | None, typer.Option(help="Records to keep (retain term).")] = None,
    chunk_tokens: ChunkTokensOpt = None,
    method: MethodOpt = None,
    param: ParamOpt = None,
    out: OutOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    lr: LrOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = None,
    lora: LoraOpt = None,
    localize: LocalizeOpt = None,
    optimizer: OptimizerOpt = None,
    adversarial: AdversarialOpt = None,
    grad_accum: GradAccumOpt = None,
    precision: PrecisionOpt = None,
    gradient_checkpointing: GradientCheckpointingOpt = None,
    group_by_length: GroupByLengthOpt = None,
    compile: CompileOpt = None,
    report_to: ReportToOpt = None,
    keep_adapter: KeepAdapterOpt = None,
    allow_weak: Annotated[bool, opt(o.ALLOW_WEAK, "--allow-weak")] = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    s = merge_settings(config, locals() | {"config": None, "param": None}, unlearn)
    require(s, "model", "forget", "out")
    _check_unlearn_keep_adapter(s)
    from obliviate import api

    result = api.unlearn(
        s["model"],
        s["forget"],
        s.get("retain"),
        s.get("method"),
        s["out"],
        training_settings(s),
        method_params=method_params_from(s, param),
        overwrite=s["overwrite"],
        resume=s["resume"],
        trust_remote_code=bool(s.get("trust_remote_code")),
        allow_weak=s["allow_weak"],
        **given_options(s, "keep_adapter"),
        **chunking(s),
    )
    if not api.processes().is_main_process:
        return  # in a distributed run the main process reports
    for key, what in (
        ("primary_answer_logprob", "answers'"),
        ("primary_text_logprob", "passages'"),
    ):
        figure = result.results[key]
        if figure["before"] is not None:
            stdout.print(
                f"forget {what} mean log-prob {figure['before']:.3f} → {figure['after']:.3f}"
            )
    checks = result.results["checks"]
    retain = checks["retain"]
    stdout.print(
        f"retain ({retain['source']}, {retain['records']} records) answers' mean log-prob "
        f"{retain['before']:.3f} → {retain['after']:.3f}"
    )
    if checks["verdict"] != "forgot":
        stdout.print(
            f"[bold yellow]warning[/bold yellow]: published with --allow-weak: the forget "
            f"figures did not fall by {FORGET_MARGIN} nats/token (verdict {checks['verdict']})"
        )
    recipe = result.results["recipe"]
    if recipe:
        stdout.print(
            f"recipe {recipe['name']} ({recipe['source']}), method {result.results['method']}"
        )
    stdout.print(f"model written to {result.out}")


@app.command()
def sequence(
    model: ModelOpt = None,
    bench: Annotated[
        Path | None, typer.Option(help="Benchmark directory (obliviate bench make [--forget25]).")
    ] = None,
    method: MethodOpt = None,
    requests: Annotated[
        str | None,
        typer.Option(
            help="Nested forget splits, smallest first: forget01,forget05,forget10[,forget25]. "
            "Request k removes the people of split k that no earlier request removed."
        ),
    ] = None,
    text: Annotated[
        bool, typer.Option("--text", help="Unlearn the people's passages (MUSE's setting).")
    ] = False,
    oracles: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated models retrained without each request's split, one per "
            "request (default: fine-tuned from --model's own recipe, and cached)."
        ),
    ] = None,
    param: ParamOpt = None,
    max_per_split: MaxPerSplitOpt = None,
    eval_precision: Annotated[str | None, opt(o.EVAL_PRECISION, "--eval-precision")] = None,
    chunk_tokens: ChunkTokensOpt = None,
    out: OutOpt = None,
    epochs: EpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    lr: LrOpt = None,
    batch_size: BatchOpt = None,
    seed: SeedOpt = None,
    lora: LoraOpt = None,
    grad_accum: GradAccumOpt = None,
    precision: PrecisionOpt = None,
    keep_adapter: KeepAdapterOpt = None,
    allow_weak: Annotated[bool, opt(o.ALLOW_WEAK, "--allow-weak")] = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Unlearn deletion requests one after another from --model (a fine-tuned target),
    evaluating after each against an oracle retrained without everyone removed so far.

    Writes --out/step-1, step-2, ... (run directories; each manifest names the model it
    started from and its request) and --out/results.json, summary.md, sequence.png.
    Training options are every step's (unlearn's defaults: the recipe of --model's base;
    with --lora --keep-adapter each step keeps its adapter over the step before's model);
    a step that does not forget stops the sequence (--resume continues after the last
    finished step) unless --allow-weak.
    """
    s = merge_settings(config, locals() | {"config": None, "param": None}, sequence)
    require(s, "model", "bench", "requests", "out")
    _check_unlearn_keep_adapter(s)
    from obliviate import api
    from obliviate.report.sequence import slice_table, step_table

    given = s.get("oracles")
    if isinstance(given, str):
        given = [spec.strip() for spec in given.split(",") if spec.strip()]
    result = api.sequence(
        s["model"],
        s["bench"],
        s.get("method"),
        s["requests"],
        s["out"],
        text=s["text"],
        oracles=given,
        config=training_settings(s),
        method_params=method_params_from(s, param),
        overwrite=s["overwrite"],
        resume=s["resume"],
        allow_weak=s["allow_weak"],
        trust_remote_code=bool(s.get("trust_remote_code")),
        **given_options(s, "max_per_split", "keep_adapter"),
        **({"precision": s["eval_precision"]} if s.get("eval_precision") else {}),
        **chunking(s),
    )
    for title, (header, rows) in (
        (f"{result['method']}: requests in sequence", step_table(result)),
        ("KnowMem of each request's people, model ≤ or > the step's oracle", slice_table(result)),
    ):
        table = Table(*header, title=title)
        for row in rows:
            table.add_row(*row)
        stdout.print(table)
    stdout.print(f"results written to [bold]{result['out']}/results.json[/bold]")
