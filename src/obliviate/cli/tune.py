"""``obliviate tune``: search recipes for the front of forgetting against utility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from obliviate import options as o
from obliviate.cli.app import app, stdout
from obliviate.cli.params import (
    BenchOpt,
    ConfigOpt,
    ModelOpt,
    OutOpt,
    OverwriteOpt,
    ResumeOpt,
    SplitOpt,
    ThreadsOpt,
    given_options,
    merge_settings,
    opt,
    require,
)

#: Options passed on to ``api.tune`` when given (the workflow's defaults fill the rest).
TUNE_OPTIONS = (
    "bench", "split", "forget", "retain", "oracle", "method", "trials", "utility_floor",
    "max_per_split", "storage", "study", "jobs", "seed", "lr_range", "epochs_range",
    "steps_range", "search", "held_out",
)  # fmt: skip


@app.command()
def tune(
    model: ModelOpt = None,
    bench: BenchOpt = None,
    split: SplitOpt = None,
    forget: Annotated[
        Path | None,
        typer.Option(help="Your own forget records: a held-out share of them is tuned on."),
    ] = None,
    retain: Annotated[Path | None, typer.Option(help="Your own retain records.")] = None,
    oracle: Annotated[
        str | None,
        typer.Option(
            help="With --bench: a model retrained without the validation people (default: "
            "the target's fine-tune redone without them, cached)."
        ),
    ] = None,
    method: Annotated[str | None, opt(o.TUNE_METHODS)] = None,
    trials: Annotated[int | None, opt(o.TUNE_TRIALS, min=1)] = None,
    utility_floor: Annotated[float | None, opt(o.UTILITY_FLOOR)] = None,
    max_per_split: Annotated[int | None, opt(o.TUNE_MAX_PER_SPLIT, min=1)] = None,
    storage: Annotated[str | None, opt(o.TUNE_STORAGE, metavar="URL|PATH")] = None,
    study: Annotated[str | None, opt(o.TUNE_STUDY)] = None,
    jobs: Annotated[int | None, opt(o.TUNE_JOBS, min=1)] = None,
    seed: Annotated[int | None, opt(o.TUNE_SEED)] = None,
    lr_range: Annotated[str | None, opt(o.TUNE_LR_RANGE, metavar="LOW,HIGH")] = None,
    epochs_range: Annotated[str | None, opt(o.TUNE_EPOCHS_RANGE, metavar="LOW,HIGH")] = None,
    steps_range: Annotated[str | None, opt(o.TUNE_STEPS_RANGE, metavar="LOW,HIGH")] = None,
    search: Annotated[str | None, opt(o.TUNE_SEARCH, metavar="lora,localize")] = None,
    held_out: Annotated[float | None, opt(o.HELD_OUT_SHARE)] = None,
    eval_precision: Annotated[str | None, opt(o.EVAL_PRECISION, "--eval-precision")] = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Search the hyper-parameters of one or several methods (--method npo,grad_diff) with
    Optuna for the front of forgetting against utility, on a validation request that is
    never the one the recipe is for: on --bench, people disjoint from --split (and its
    neighbours) against their own oracle; on your --forget file, a held-out share of it,
    scored without an oracle. Writes trials.csv, results.json, report.html (the Pareto
    front) and recipe.yaml, the chosen recipe: obliviate unlearn --config recipe.yaml.
    Resumable (--resume); several machines join one study through --storage (docs/tune.md).
    """
    s = merge_settings(config, locals() | {"config": None}, tune)
    require(s, "model", "out")
    from obliviate import api

    result = api.tune(
        s["model"],
        s["out"],
        overwrite=s["overwrite"],
        resume=s["resume"],
        **given_options(s, *TUNE_OPTIONS),
        **({"precision": s["eval_precision"]} if s.get("eval_precision") else {}),
    )
    found = result["tune"]
    label = "forget quality" if found["scenario"] == "bench" else "forgetting"
    table = Table("trial", "method", "lr", "length", label, "utility", "feasible",
                  title="The Pareto front (validation request)")  # fmt: skip
    for row in found["trials"]:
        if row["number"] not in found["pareto_front"]:
            continue
        recipe = row["recipe"]
        length = (
            f"{recipe['max_steps']} steps"
            if recipe.get("max_steps")
            else f"{recipe['epochs']:g} ep"
        )
        chosen = " ←" if row["number"] == found["chosen"] else ""
        table.add_row(
            f"{row['number']}{chosen}",
            str(recipe.get("method")),
            f"{recipe['lr']:.3g}",
            length,
            f"{row['forget_score']:.3g}",
            f"{row['utility']:.3f}",
            "✓" if row["feasible"] else "✗",
        )
    stdout.print(table)
    stdout.print(f"chosen: trial {found['chosen']}, {found['chosen_reason']}")
    stdout.print(f"recipe written to [bold]{result['out']}/recipe.yaml[/bold]")
