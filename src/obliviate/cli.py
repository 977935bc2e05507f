"""The ``obliviate`` command line: thin typer commands over ``obliviate.api``.

Options may also come from a YAML file (``--config``); what is typed on the command
line wins. Errors a user can fix print one line and exit with status 2.
"""

from __future__ import annotations

import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from obliviate.errors import ObliviateError
from obliviate.progress import console

app = typer.Typer(
    help="Make a language model forget, and prove that it did.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: Results go to standard output; progress and errors go to standard error.
stdout = Console()
bench_app = typer.Typer(
    help="The built-in benchmarks: fictitious people (facts) and an invented guild's secret "
    "procedures (behaviour).",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model spec: smollm2 (default model), tiny (test model), a HF model or run "
        "directory, a .gguf file, or a hub id already in the local cache.",
    ),
]
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
        help="Micro-batches per step and process (1). A step takes batch size × this × "
        "processes examples: N processes train as one with N times this."
    ),
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        metavar="[auto|bf16|fp16|fp32]",
        help="Autocast dtype: auto (default: bf16 where the CPU or GPU computes it natively), "
        "bf16, fp16 (GPU only) or fp32. Weights and optimizer state stay float32.",
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
        "localize_batches (default 4) is set in --config.",
    ),
]
OptimizerOpt = Annotated[
    str | None,
    typer.Option(
        metavar="[adamw|sophia]",
        help="adamw (default) or sophia: second-order, clipped diagonal-Hessian "
        "pre-conditioning (Sophia-H). sophia_rho (0.04) and hessian_every (10) are set in "
        "--config.",
    ),
]
AdversarialOpt = Annotated[
    str | None,
    typer.Option(
        metavar="[latent]",
        help="latent: unlearn against a PGD perturbation of a hidden layer that restores "
        "the forget answers, so attacks recover less (raise --lr ~3x). adversarial_layer "
        "(-1: the middle), adversarial_epsilon (0.25, relative to the activation norm) and "
        "adversarial_steps (4) are set in --config.",
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
        help="Cut passages longer than this many tokens into chunks (default 256); every "
        "token of a passage carries the loss.",
    ),
]


def _settings(config_file: Path | None, cli: dict[str, Any]) -> dict[str, Any]:
    """Merge a YAML config with command-line values (those that were given win)."""
    settings: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise ObliviateError(f"config file {config_file} does not exist")
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ObliviateError(
                f"config file {config_file}{where} is not valid YAML ({problem}); fix the file"
            ) from exc
        if not isinstance(loaded, dict):
            raise ObliviateError(f"config file {config_file} must be a mapping of option: value")
        settings = {str(k).replace("-", "_"): v for k, v in loaded.items()}
    settings.update({k: v for k, v in cli.items() if v is not None})
    return settings


def _train_config(settings: dict[str, Any], defaults: dict[str, Any]):
    from obliviate.train.loop import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values = {**defaults, **{k: v for k, v in settings.items() if k in names}}
    return TrainConfig(**values)


def _chunking(settings: dict[str, Any]) -> dict[str, int]:
    """``chunk_tokens`` for the API when it was given (the API's default otherwise)."""
    return {"chunk_tokens": settings["chunk_tokens"]} if "chunk_tokens" in settings else {}


def _require(settings: dict[str, Any], *names: str) -> None:
    for name in names:
        if settings.get(name) is None:
            option = "--" + name.replace("_", "-")
            raise ObliviateError(f"missing {option}; see --help")


@bench_app.command("make")
def bench_make(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the splits to.")],
    seed: Annotated[int, typer.Option(help="Same seed, byte-identical files.")] = 0,
    people: Annotated[
        int, typer.Option(help="Trained fictitious people (about 8 facts each); larger = slower.")
    ] = 40,
    forget25: Annotated[
        bool,
        typer.Option(
            "--forget25",
            help="Also write forget25/retain75: the largest request of a scale run, the "
            "fourth of a sequence (forget01 ⊂ forget05 ⊂ forget10 ⊂ forget25).",
        ),
    ] = False,
    kind: Annotated[
        str,
        typer.Option(
            metavar="[facts|behaviour]",
            help="facts: fictitious people (TOFU's setting); behaviour: requests for an invented "
            "guild's secret procedures, a behaviour to unlearn (SKU's setting).",
        ),
    ] = "facts",
    size: Annotated[int, typer.Option(help="Behaviour: restricted items (8 requests each).")] = 24,
) -> None:
    """Generate the built-in benchmark: fictitious people, their facts and TOFU-style splits,
    each split also as passages (<split>.text.jsonl: one biography per person); or, with
    --kind behaviour, harmful_train, harmful_unseen, normal and normal_near requests."""
    from obliviate.data.bench import make_benchmark

    if kind == "behaviour":
        from obliviate.data.behaviour import make_behaviour_benchmark

        paths = make_behaviour_benchmark(out, seed=seed, size=size)
        stdout.print(f"wrote {len(paths)} files to {out}")
        return
    if kind != "facts":
        raise ObliviateError(f"unknown benchmark kind {kind!r}; use facts or behaviour")
    paths = make_benchmark(out, seed=seed, people=people, forget25=forget25)
    stdout.print(f"wrote {len(paths)} files to {out}")


@bench_app.command("from-safety")
def bench_from_safety(
    pku: Annotated[
        Path,
        typer.Option(
            help="Your PKU-SafeRLHF rows (.jsonl, .json, .parquet, .csv or a datasets "
            "directory): unsafe responses become the harmful requests."
        ),
    ],
    truthfulqa: Annotated[
        Path, typer.Option(help="Your TruthfulQA.csv (v0 columns): the normal instructions.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the splits to.")],
    seed: Annotated[int, typer.Option(help="Shuffles the prompts (and the samples).")] = 0,
    unseen_share: Annotated[
        float, typer.Option(help="Share of the harmful prompts held out as harmful_unseen.")
    ] = 1 / 3,
    max_harmful: Annotated[
        int | None, typer.Option(help="Keep at most this many harmful records (whole prompts).")
    ] = None,
    max_normal: Annotated[
        int | None, typer.Option(help="Keep at most this many normal records.")
    ] = None,
) -> None:
    """Make a behaviour benchmark directory from your own PKU-SafeRLHF and TruthfulQA files:
    harmful_train, harmful_unseen (other prompts), normal and full (see docs/behaviour.md).
    Judge it with eval --judge PATH: these records have no markers."""
    from obliviate.data.safety_bench import make_safety_benchmark

    paths = make_safety_benchmark(
        out,
        pku,
        truthfulqa,
        seed=seed,
        unseen_share=unseen_share,
        max_harmful=max_harmful,
        max_normal=max_normal,
    )
    stdout.print(f"wrote {len(paths)} files to {out}")


@app.command()
def finetune(
    model: ModelOpt = None,
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
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not reuse or store.")] = False,
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Fine-tune a model on records (loss on answers only): makes a target or an oracle.

    Defaults: 5 epochs, lr 1e-4, batch 16. Cached by a hash of (model, data, settings).
    """
    from obliviate import api

    s = _settings(config, locals() | {"config": None})
    _require(s, "data", "out")
    train_config = _train_config(s, {"epochs": 5, "lr": 1e-4, "batch_size": 16})
    result = api.finetune(
        s.get("model", "smollm2"),
        s["data"],
        s["out"],
        train_config,
        overwrite=s["overwrite"],
        resume=s["resume"],
        use_cache=not s["no_cache"],
        text=s["text"],
        **_chunking(s),
    )
    if api.processes().is_main_process:  # in a distributed run the main process reports
        stdout.print(f"fine-tuned model written to {result.out}")


@app.command()
def unlearn(
    model: ModelOpt = None,
    forget: Annotated[
        Path | None, typer.Option(help="Records to forget (a file, or a folder of .txt files).")
    ] = None,
    retain: Annotated[Path | None, typer.Option(help="Records to keep (retain term).")] = None,
    chunk_tokens: ChunkTokensOpt = None,
    method: Annotated[str | None, typer.Option(help="Method name (obliviate methods).")] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Method hyper-parameter KEY=VALUE (repeatable).")
    ] = None,
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
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Unlearn the --forget records from --model with --method, keeping --retain.

    Defaults: 5 epochs over the forget set, lr 1e-5, batch 8. The source model is never
    modified; the result goes to --out/model.
    """
    from obliviate import api

    s = _settings(config, locals() | {"config": None, "param": None})
    _require(s, "model", "forget", "method", "out")
    params = dict(s.get("method_params") or {})
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ObliviateError(f"--param {item!r} must look like KEY=VALUE")
        params[key] = value
    result = api.unlearn(
        s["model"],
        s["forget"],
        s.get("retain"),
        s["method"],
        s["out"],
        _train_config(s, {}),
        method_params=params,
        overwrite=s["overwrite"],
        resume=s["resume"],
        **_chunking(s),
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
    stdout.print(f"model written to {result.out}")


@app.command()
def sequence(
    model: ModelOpt = None,
    bench: Annotated[
        Path | None, typer.Option(help="Benchmark directory (obliviate bench make [--forget25]).")
    ] = None,
    method: Annotated[str | None, typer.Option(help="Method name (obliviate methods).")] = None,
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
    param: Annotated[
        list[str] | None, typer.Option(help="Method hyper-parameter KEY=VALUE (repeatable).")
    ] = None,
    max_per_split: Annotated[
        int | None, typer.Option(help="Evaluate at most this many records per split.")
    ] = None,
    eval_precision: Annotated[
        str | None,
        typer.Option(help="Evaluation: fp32 (default), bf16, fp16 or auto (faster)."),
    ] = None,
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
    overwrite: OverwriteOpt = False,
    resume: ResumeOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Unlearn deletion requests one after another from --model (a fine-tuned target),
    evaluating after each against an oracle retrained without everyone removed so far.

    Writes --out/step-1, step-2, ... (run directories; each manifest names the model it
    started from and its request) and --out/results.json, summary.md, sequence.png.
    Training options are every step's (unlearn's defaults).
    """
    from obliviate import api

    s = _settings(config, locals() | {"config": None, "param": None})
    _require(s, "model", "bench", "method", "requests", "out")
    params = dict(s.get("method_params") or {})
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ObliviateError(f"--param {item!r} must look like KEY=VALUE")
        params[key] = value
    given = s.get("oracles")
    if isinstance(given, str):
        given = [o.strip() for o in given.split(",") if o.strip()]
    result = api.sequence(
        s["model"],
        s["bench"],
        s["method"],
        s["requests"],
        s["out"],
        text=s["text"],
        oracles=given,
        config=_train_config(s, {}),
        method_params=params,
        max_per_split=s.get("max_per_split"),
        precision=s.get("eval_precision") or "fp32",
        overwrite=s["overwrite"],
        resume=s["resume"],
        **_chunking(s),
    )
    from obliviate.sequence import slice_table, step_table

    for title, (header, rows) in (
        (f"{result['method']}: requests in sequence", step_table(result)),
        ("KnowMem of each request's people, model ≤ or > the step's oracle", slice_table(result)),
    ):
        table = Table(*header, title=title)
        for row in rows:
            table.add_row(*row)
        stdout.print(table)
    stdout.print(f"results written to [bold]{result['out']}/results.json[/bold]")


@app.command()
def methods() -> None:
    """List the unlearning methods and their hyper-parameters."""
    from obliviate.methods import METHODS

    table = Table("method", "what it does", "hyper-parameters (default)")
    for name, cls in sorted(METHODS.items()):
        params = ", ".join(f"{f.name}={f.default}" for f in fields(cls)) or "—"
        table.add_row(name, cls.summary, params)
    stdout.print(table)


@app.command("eval")
def evaluate(
    model: ModelOpt = None,
    bench: Annotated[
        Path | None, typer.Option(help="Benchmark directory (obliviate bench make).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Forget split of the benchmark.")] = None,
    oracle: Annotated[
        str | None, typer.Option(help="Model retrained without the forget split.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Model before unlearning.")] = None,
    forget: Annotated[Path | None, typer.Option(help="Your own forget records.")] = None,
    retain: Annotated[Path | None, typer.Option(help="Your own retain records.")] = None,
    holdout: Annotated[
        Path | None, typer.Option(help="Your own never-trained records (MIA non-members).")
    ] = None,
    max_per_split: Annotated[
        int | None, typer.Option(help="Evaluate at most this many records per split.")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="fp32 (default, comparable everywhere), bf16, fp16 or auto (faster)."),
    ] = None,
    guard: GuardOpt = None,
    judge: Annotated[
        Path | None,
        typer.Option(
            help="Behaviour benchmark: a local HF sequence-classification model to judge "
            "responses (default: the marker rule, see docs/behaviour.md)."
        ),
    ] = None,
    judge_label: Annotated[
        str | None,
        typer.Option(help="The --judge model's label (name or index) that means harmful (1)."),
    ] = None,
    attacks: Annotated[
        bool | None,
        typer.Option(
            "--attacks/--no-attacks",
            help="Behaviour benchmark: also the harmful rates under the in-context and "
            "jailbreak attacks (about 8× the harmful requests' generation time).",
        ),
    ] = None,
    verbmem_prompt_tokens: Annotated[
        int | None,
        typer.Option(help="Text (MUSE): first tokens of each forget passage given as prompt (32)."),
    ] = None,
    verbmem_new_tokens: Annotated[
        int | None,
        typer.Option(help="Text (MUSE): tokens generated and compared with the passage (64)."),
    ] = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Evaluate --model (with --oracle and --target) on forget, retain, neighbors, holdout, world.

    Writes results.json (per-split accuracy, prob, rouge_l, truth_ratio; forget quality,
    model utility, membership inference, privleak, cost) to --out. With passages to
    forget ({"id", "text"} records in --forget, or the benchmark's <split>.text.jsonl),
    also MUSE's verbmem, knowmem, privleak and verdicts (results.json "text"). On a
    behaviour benchmark (bench make --kind behaviour): harmful rates, over-refusal and
    utility against --target instead (results.json "behaviour"; --attacks adds the
    in-context and jailbreak attacks).
    """
    from obliviate import api
    from obliviate.data.behaviour import is_behaviour_bench
    from obliviate.evaluate.text import TextSettings

    s = _settings(config, locals() | {"config": None})
    _require(s, "model", "out")
    if s.get("bench") is not None and is_behaviour_bench(s["bench"]):
        _evaluate_behaviour(s)
        return
    if s.get("judge") is not None:
        raise ObliviateError("--judge needs a behaviour benchmark (bench make --kind behaviour)")
    if s.get("attacks"):
        raise ObliviateError(
            "eval --attacks needs a behaviour benchmark; attack facts with `obliviate audit`"
        )
    counts = {
        "prompt_tokens": s.get("verbmem_prompt_tokens"),
        "continuation_tokens": s.get("verbmem_new_tokens"),
    }
    result = api.evaluate(
        s["model"],
        s["out"],
        bench=s.get("bench"),
        split=s.get("split") or "forget10",
        oracle=s.get("oracle"),
        target=s.get("target"),
        forget=s.get("forget"),
        retain=s.get("retain"),
        holdout=s.get("holdout"),
        max_per_split=s.get("max_per_split"),
        precision=s.get("precision") or "fp32",
        guard=s.get("guard"),
        overwrite=s["overwrite"],
        text_settings=TextSettings(**{k: v for k, v in counts.items() if v is not None}),
    )
    stdout.print(results_table(result))
    if "text" in result:
        stdout.print(results_table(result, rows=TEXT_TABLE_ROWS, title="text (MUSE)"))
    if "guard" in result:
        stdout.print(guard_table(result["guard"]))
    stdout.print(f"results written to [bold]{result['out']}/results.json[/bold]")


@app.command()
def audit(
    model: ModelOpt = None,
    bench: Annotated[
        Path | None, typer.Option(help="Benchmark directory (obliviate bench make).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Forget split of the benchmark.")] = None,
    oracle: Annotated[
        str | None, typer.Option(help="Model retrained without the forget split.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Model before unlearning.")] = None,
    attacks: Annotated[
        str | None,
        typer.Option(help="all (default) or a comma-separated list; obliviate audit --help."),
    ] = None,
    forget: Annotated[Path | None, typer.Option(help="Your own forget records.")] = None,
    retain: Annotated[
        Path | None, typer.Option(help="Your own retain records (a guard calibrates on them).")
    ] = None,
    holdout: Annotated[
        Path | None, typer.Option(help="Your own never-trained records (the control).")
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            help="small (default) or full: step counts and sample sizes of attacks; full "
            "also attacks the target (small only asks it plainly, for the recoveries)."
        ),
    ] = None,
    relearn_steps: Annotated[
        int | None, typer.Option(help="Fine-tuning steps of the relearn attack (16).")
    ] = None,
    relearn_lr: Annotated[
        float | None, typer.Option(help="Learning rate of the relearn attack (2e-5).")
    ] = None,
    relearn_precision: Annotated[
        str | None,
        typer.Option(
            help="Autocast of the attacker's fine-tunes (relearn, tamper): auto (default: bf16 "
            "where native, as an attacker trains) or fp32 (the same figures on every machine)."
        ),
    ] = None,
    seed: SeedOpt = None,
    max_per_split: Annotated[
        int | None, typer.Option(help="Attack at most this many records per split.")
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="Autocast of the questions: fp32 (default, the same figures everywhere), "
            "bf16, fp16 or auto (faster). The attacker's fine-tunes: --relearn-precision."
        ),
    ] = None,
    guard: GuardOpt = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Attack the oracle and target again, not from an earlier audit."
        ),
    ] = False,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Attack --model (and --oracle and --target identically) to bring the forgotten back.

    Attacks: relearn, in_context, quantize, paraphrase, multihop, crosslingual, jailbreak,
    format, clues, probe, tamper, diff. Writes results.json (attacks.<name>: accuracy
    before/after, recovery, uplift_vs_oracle; audit.worst_uplift_vs_oracle) and
    report.html to --out.
    """
    from obliviate import api

    s = _settings(config, locals() | {"config": None})
    _require(s, "model", "out")
    result = api.audit(
        s["model"],
        s["out"],
        bench=s.get("bench"),
        split=s.get("split") or "forget10",
        oracle=s.get("oracle"),
        target=s.get("target"),
        forget=s.get("forget"),
        retain=s.get("retain"),
        holdout=s.get("holdout"),
        attacks=s.get("attacks") or "all",
        budget=s.get("budget") or "small",
        relearn_steps=s.get("relearn_steps") or 16,
        relearn_lr=s.get("relearn_lr") or 2e-5,
        relearn_precision=s.get("relearn_precision") or "auto",
        seed=s.get("seed") or 0,
        max_per_split=s.get("max_per_split"),
        precision=s.get("precision") or "fp32",
        guard=s.get("guard"),
        overwrite=s["overwrite"],
        use_cache=not s["no_cache"],
    )
    stdout.print(audit_table(result))
    if "guard" in result:
        stdout.print(guard_table(result["guard"]))
    stdout.print(f"results written to [bold]{result['out']}/results.json[/bold]")


@app.command()
def chat(
    model: ModelOpt = None,
    guard: GuardOpt = None,
    bench: Annotated[
        Path | None, typer.Option(help="Benchmark whose forget split the guard protects.")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Forget split of the benchmark.")] = None,
    forget: Annotated[Path | None, typer.Option(help="Your own forget records.")] = None,
    retain: Annotated[
        Path | None, typer.Option(help="Your own retain records (the guard calibrates on them).")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 128,
) -> None:
    """Talk to --model (behind --guard) in the terminal; /reset starts over, /exit ends."""
    from obliviate import api
    from obliviate.chat import ChatSession
    from obliviate.models.loader import load_model

    if model is None:
        raise ObliviateError("missing --model; see --help")
    built = None
    if guard is not None:
        splits = api.evaluation_splits(bench, split or "forget10", forget, retain, None)
        built = api.build_guard(guard, splits)
    session = ChatSession(load_model(model), built, max_new_tokens)
    interactive = sys.stdin.isatty()
    console.print(f"chatting with [bold]{model}[/bold]" + (f" behind {guard}" if guard else ""))
    while True:
        if interactive:
            console.print("[bold]you>[/bold] ", end="")
        line = sys.stdin.readline()
        if not line or line.strip() == "/exit":
            break
        if line.strip() == "/reset":
            session.turns.clear()
            continue
        if line.strip():
            stdout.print(session.respond(line.strip()), highlight=False, markup=False)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories with a results.json.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
) -> None:
    """Write one self-contained HTML report (plots embedded) and a Markdown summary."""
    from obliviate.report import write_report

    html, markdown = write_report(runs, out)
    stdout.print(f"report: [bold]{html}[/bold]\nsummary: [bold]{markdown}[/bold]")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (replaced).")] = Path(
        "runs/demo"
    ),
    model: Annotated[str, typer.Option("--model", "-m", help="Base model spec.")] = "smollm2",
    method: Annotated[str, typer.Option(help="Unlearning method.")] = "grad_diff",
    seed: Annotated[int, typer.Option(help="Benchmark and training seed.")] = 0,
    people: Annotated[int, typer.Option(help="Fictitious people in the benchmark.")] = 40,
    text: Annotated[
        bool,
        typer.Option(
            "--text", help="The text scenario: target, oracle and unlearning on passages."
        ),
    ] = False,
) -> None:
    """Run the whole story: benchmark, target and oracle fine-tunes, unlearning, evaluation."""
    from obliviate import api

    results = api.demo(out=out, model=model, method=method, seed=seed, people=people, text=text)
    stdout.print(results_table(results, main="unlearned"))
    stdout.print(f"report: [bold]{results['report']}[/bold]")
    stdout.print(f"run directory: [bold]{results['out']}[/bold]")


#: The rows of the results table: label, how to read a results entry, number format.
TABLE_ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("forget accuracy ↓", ("splits", "forget", "accuracy"), ".0%"),
    ("forget prob ↓", ("splits", "forget", "prob"), ".3f"),
    ("forget quality ↑ (vs oracle)", ("forget_quality",), ".3g"),
    ("model utility ↑", ("model_utility",), ".3f"),
    ("retain accuracy ↑", ("splits", "retain", "accuracy"), ".0%"),
    ("neighbors accuracy ↑", ("splits", "neighbors", "accuracy"), ".0%"),
    ("world accuracy ↑", ("splits", "world", "accuracy"), ".0%"),
    ("MIA AUC, Min-K%++ (forget vs holdout)", ("mia", "minkpp_auc"), ".2f"),
    ("privleak (0 is ideal)", ("privleak",), "+.2f"),
    ("seconds to make", ("cost", "seconds"), ".0f"),
)

#: MUSE's figures and verdicts, shown when the evaluation had passages to forget.
TEXT_TABLE_ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("verbmem ↓ (ROUGE-L F1)", ("text", "verbmem"), ".3f"),
    ("knowmem forget ↓ (ROUGE-L recall)", ("text", "knowmem_forget"), ".3f"),
    ("knowmem retain ↑", ("text", "knowmem_retain"), ".3f"),
    ("privleak, passages (0 is ideal)", ("text", "privleak"), "+.2f"),
    ("no verbatim memorisation", ("text", "verdicts", "no_verbmem"), ""),
    ("no knowledge memorisation", ("text", "verdicts", "no_knowmem"), ""),
    ("no privacy leakage", ("text", "verdicts", "no_privleak"), ""),
    ("utility preserved", ("text", "verdicts", "utility_preserved"), ""),
)


def _lookup(entry: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    return entry


def results_table(
    results: dict[str, Any],
    main: str = "model",
    rows: tuple[tuple[str, tuple[str, ...], str], ...] = TABLE_ROWS,
    title: str = "",
) -> Table:
    """A results document as a table: one row per figure of ``rows``, one column per model."""
    references = results.get("reference", {})
    entries = {
        "target": references.get("target"),
        main: results,
        "oracle": references.get("oracle"),
    }
    entries = {name: entry for name, entry in entries.items() if entry is not None}
    table = Table(title=f"{results.get('method') or main} on {results['split']} {title}".strip())
    table.add_column("figure")
    for name in entries:
        table.add_column(name, justify="right")
    cached = results.get("cached", {})
    for label, path, style in rows:
        cells = []
        for name, entry in entries.items():
            value = _lookup(entry, path)
            cached_run = path[0] == "cost" and cached.get(name)
            cells.append("cached" if cached_run else "—" if value is None else format(value, style))
        table.add_row(label, *cells)
    return table


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def audit_table(results: dict[str, Any]) -> Table:
    """One row per attack (its worst variant): accuracy after the attack, recovery, uplift."""
    table = Table(title=f"audit of {results.get('method') or 'model'} on {results['split']}")
    for column in ("attack", "worst variant", "model acc", "oracle acc", "recovery", "uplift"):
        table.add_column(
            column, justify="left" if column.endswith(("attack", "variant")) else "right"
        )
    for name, entry in results["attacks"].items():
        if "skipped" in entry:
            table.add_row(name, f"skipped: {entry['skipped']}", "", "", "", "")
            continue
        variant = entry["variants"][entry["worst_variant"]]
        model, oracle = variant["model"], variant.get("oracle")
        table.add_row(
            name,
            entry["worst_variant"],
            f"{_percent(model['before']['accuracy'])} → {_percent(model['after']['accuracy'])}",
            _percent(oracle["after"]["accuracy"]) if oracle else "—",
            _percent(entry["recovery"]),
            "—" if entry["uplift_vs_oracle"] is None else f"{entry['uplift_vs_oracle']:+.0%}",
        )
    worst = results.get("worst_case")
    if worst:
        table.caption = f"worst case: {worst['attack']} ({worst['variant']})"
    return table


def guard_table(guard: dict[str, Any]) -> Table:
    """Leak rates (forget questions still answered) and false refusals behind a guard."""
    components = ", ".join(guard["config"]["components"])
    table = Table(title=f"behind the guard ({components})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in guard.get("leak_rate", {}).items():
        table.add_row(f"leak rate: {name}", _percent(value))
    for name, value in guard.get("false_refusal_rate", {}).items():
        table.add_row(f"false refusals: {name}", _percent(value))
    if guard.get("added_latency_ms") is not None:
        table.add_row("added latency per question", f"{guard['added_latency_ms']:.0f} ms")
    return table


def _evaluate_behaviour(s: dict[str, Any]) -> None:
    """``obliviate eval`` on a behaviour benchmark (see ``api.evaluate_behaviour``)."""
    from obliviate import api

    result = api.evaluate_behaviour(
        s["model"],
        s["out"],
        bench=s["bench"],
        target=s.get("target"),
        judge=s.get("judge"),
        judge_label=s.get("judge_label") or "1",
        max_per_split=s.get("max_per_split"),
        precision=s.get("precision") or "fp32",
        overwrite=s["overwrite"],
        attacks=bool(s.get("attacks")),
    )
    stdout.print(behaviour_table(result))
    stdout.print(f"results written to [bold]{result['out']}/results.json[/bold] and report.html")


def behaviour_table(results: dict[str, Any]) -> Table:
    """Harmful rates, over-refusal and utility of the model, and of the target beside it."""
    figures = results["behaviour"]
    table = Table(title=f"behaviour of {results.get('method') or 'model'}")
    table.add_column("figure")
    table.add_column("model", justify="right")
    table.add_column("target", justify="right")
    before = figures.get("original", {})
    rows = [
        ("harmful rate: train", ("harmful_rate", "train"), _percent),
        ("harmful rate: unseen", ("harmful_rate", "unseen"), _percent),
        ("in-context: train", ("attacks", "in_context", "harmful_rate", "train"), _percent),
        ("in-context: unseen", ("attacks", "in_context", "harmful_rate", "unseen"), _percent),
        ("jailbreak: train", ("attacks", "jailbreak", "harmful_rate", "train"), _percent),
        ("jailbreak: unseen", ("attacks", "jailbreak", "harmful_rate", "unseen"), _percent),
        ("refusals: normal_near", ("refusal_rate", "normal_near"), _percent),
        ("normal perplexity", ("utility", "normal_ppl"), lambda v: f"{v:.2f}"),
        ("perplexity ratio", ("utility", "normal_ppl_ratio"), lambda v: f"{v:.3f}"),
        ("output similarity", ("utility", "output_similarity"), lambda v: f"{v:.3f}"),
    ]
    for label, path, style in rows:
        cells = [_lookup(entry, path) for entry in (figures, before)]
        if path[0] == "attacks" and all(v is None for v in cells):
            continue  # evaluated without --attacks
        table.add_row(label, *("—" if v is None else style(v) for v in cells))
    judge = figures["judge"]
    table.caption = "judge: " + (
        f"{judge['path']} ({judge['harmful_label']})"
        if "path" in judge
        else f"at least {judge['min_markers']} markers of the requested item"
    )
    return table


def main() -> None:
    """Console-script entry point: user errors become one line and exit status 2."""
    try:
        app()
    except ObliviateError as exc:
        message = " ".join(str(exc).split())
        console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        _exit(2)
    except KeyboardInterrupt:
        console.print(
            "interrupted; nothing was published. Re-run with --resume to continue.",
            highlight=False,
        )
        _exit(130)
    except SystemExit as done:  # typer ends every command with one
        if isinstance(done.code, str):
            console.print(done.code, highlight=False)
        _exit(1 if isinstance(done.code, str) else done.code or 0)
    _exit(0)


def _exit(code: int) -> NoReturn:
    """Exit with ``code``. A process of a distributed launch leaves its process group and
    ends at once, without the interpreter's teardown: there gloo's threads could still be
    joinable when C++'s static destructors run, and abort a run that had succeeded
    ("terminate called without an active exception", seen in CI after a resumed FSDP run).
    Everything a run writes is closed and renamed into place before this point."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from obliviate.train.loop import leave_process_group

        leave_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
