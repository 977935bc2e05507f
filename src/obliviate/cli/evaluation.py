"""``obliviate eval``, ``audit``, ``chat``, ``report``, ``methods`` and ``demo``."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from obliviate import options as o
from obliviate.cli.app import app, stdout
from obliviate.cli.params import (
    AUDIT_OPTIONS,
    EVAL_OPTIONS,
    BaseModelOpt,
    BenchOpt,
    ConfigOpt,
    EvalPrecisionOpt,
    ForgetOpt,
    GuardOpt,
    HoldoutOpt,
    MaxPerSplitOpt,
    ModelOpt,
    OracleOpt,
    OutOpt,
    OverwriteOpt,
    RetainOpt,
    SplitOpt,
    TargetOpt,
    ThreadsOpt,
    TrustRemoteCodeOpt,
    given_options,
    merge_settings,
    opt,
    require,
)
from obliviate.errors import ObliviateError
from obliviate.models.threads import set_threads
from obliviate.progress import console

#: ``eval`` and ``audit``: the user's neighbour records and general questions.
GENERAL = ("neighbors", "world")


@app.command()
def methods() -> None:
    """List the unlearning methods and their hyper-parameters."""
    from obliviate.methods import METHODS

    table = Table("method", "what it does", "hyper-parameters (default)", "obliviate tune searches")
    for name, cls in sorted(METHODS.items()):
        params = ", ".join(f"{f.name}={f.default}" for f in fields(cls)) or "—"
        tuned = ", ".join(f"{key} {span}" for key, span in cls.tunable.items())
        table.add_row(name, cls.summary, params, f"lr, length{', ' + tuned if tuned else ''}")
    stdout.print(table)


@app.command("eval")
def evaluate(
    model: ModelOpt = None,
    bench: BenchOpt = None,
    split: SplitOpt = None,
    oracle: OracleOpt = None,
    target: TargetOpt = None,
    forget: ForgetOpt = None,
    retain: Annotated[Path | None, typer.Option(help="Your own retain records.")] = None,
    holdout: HoldoutOpt = None,
    holdout_random_split: Annotated[bool | None, opt(o.HOLDOUT_RANDOM_SPLIT)] = None,
    neighbors: Annotated[Path | None, opt(o.NEIGHBORS)] = None,
    world: Annotated[Path | None, opt(o.WORLD)] = None,
    real_authors: Annotated[Path | None, opt(o.REAL_AUTHORS)] = None,
    world_facts: Annotated[Path | None, opt(o.WORLD_FACTS)] = None,
    max_per_split: MaxPerSplitOpt = None,
    precision: EvalPrecisionOpt = None,
    guard: GuardOpt = None,
    judge: Annotated[
        Path | None,
        typer.Option(
            help="Behaviour benchmark: a local HF sequence-classification model to judge "
            "responses (default: the marker rule, see docs/behaviour.md)."
        ),
    ] = None,
    judge_label: Annotated[str | None, opt(o.JUDGE_LABEL)] = None,
    attacks: Annotated[
        bool | None,
        typer.Option(
            "--attacks/--no-attacks",
            help="Behaviour benchmark: also the harmful rates under the in-context and "
            "jailbreak attacks (about 8× the harmful requests' generation time).",
        ),
    ] = None,
    verbmem_prompt_tokens: Annotated[int | None, opt(o.VERBMEM_PROMPT_TOKENS)] = None,
    verbmem_new_tokens: Annotated[int | None, opt(o.VERBMEM_NEW_TOKENS)] = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evaluate --model (with --oracle and --target) on forget, retain, neighbors, holdout, world.

    Writes results.json (per-split accuracy, prob, rouge_l, truth_ratio; forget quality,
    model utility, membership inference, privleak, cost) to --out; TOFU's model utility
    needs --real-authors and --world-facts (TOFU's files). With passages to
    forget ({"id", "text"} records in --forget, or the benchmark's <split>.text.jsonl),
    also MUSE's verbmem, knowmem, privleak and verdicts (results.json "text"). On a
    behaviour benchmark (bench make --kind behaviour): harmful rates, over-refusal and
    utility against --target instead (results.json "behaviour"; --attacks adds the
    in-context and jailbreak attacks).
    """
    s = merge_settings(config, locals() | {"config": None}, evaluate)
    require(s, "model", "out")
    from obliviate import api
    from obliviate.data.behaviour import is_behaviour_bench
    from obliviate.evaluation.text import TextSettings
    from obliviate.report.terminal import (
        TEXT_TABLE_ROWS,
        behaviour_table,
        guard_table,
        results_table,
        verdict_banner,
    )

    if s.get("bench") is not None and is_behaviour_bench(s["bench"]):
        result = api.evaluate_behaviour(
            s["model"],
            s["out"],
            bench=s["bench"],
            attacks=bool(s.get("attacks")),
            overwrite=s["overwrite"],
            trust_remote_code=bool(s.get("trust_remote_code")),
            **given_options(s, "target", "judge", "judge_label", "max_per_split", "precision"),
        )
        stdout.print(behaviour_table(result))
        stdout.print(
            f"results written to [bold]{result['out']}/results.json[/bold] and report.html"
        )
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
        overwrite=s["overwrite"],
        trust_remote_code=bool(s.get("trust_remote_code")),
        text_settings=TextSettings(**{k: v for k, v in counts.items() if v is not None}),
        **given_options(
            s, *EVAL_OPTIONS, "real_authors", "world_facts", "holdout_random_split", *GENERAL
        ),
    )
    stdout.print(verdict_banner(result))
    stdout.print(results_table(result))
    if "text" in result:
        stdout.print(results_table(result, rows=TEXT_TABLE_ROWS, title="text (MUSE)"))
    if "guard" in result:
        stdout.print(guard_table(result["guard"]))
    stdout.print(f"results written to [bold]{result['out']}/results.json[/bold]")


@app.command()
def audit(
    model: ModelOpt = None,
    bench: BenchOpt = None,
    split: SplitOpt = None,
    oracle: OracleOpt = None,
    target: TargetOpt = None,
    attacks: Annotated[str | None, opt(o.ATTACKS)] = None,
    forget: ForgetOpt = None,
    retain: RetainOpt = None,
    holdout: HoldoutOpt = None,
    neighbors: Annotated[Path | None, opt(o.NEIGHBORS)] = None,
    world: Annotated[Path | None, opt(o.WORLD)] = None,
    budget: Annotated[str | None, opt(o.BUDGET)] = None,
    relearn_steps: Annotated[int | None, opt(o.RELEARN_STEPS)] = None,
    relearn_lr: Annotated[float | None, opt(o.RELEARN_LR)] = None,
    relearn_precision: Annotated[str | None, opt(o.RELEARN_PRECISION)] = None,
    seed: Annotated[int | None, opt(o.AUDIT_SEED)] = None,
    max_per_split: Annotated[
        int | None, typer.Option(help="Attack at most this many records per split.")
    ] = None,
    precision: EvalPrecisionOpt = None,
    guard: GuardOpt = None,
    base_secret: Annotated[bool | None, opt(o.BASE_SECRET)] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Attack the oracle and target again, not from an earlier audit."
        ),
    ] = False,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    trust_remote_code: TrustRemoteCodeOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Attack --model (and --oracle and --target identically) to bring the forgotten back.

    Attacks: relearn, in_context, quantize, paraphrase, multihop, crosslingual, jailbreak,
    format, clues, probe, tamper, diff. Writes results.json (attacks.<name>: accuracy
    before/after, recovery, uplift_vs_oracle; audit.worst_uplift_vs_oracle) and
    report.html to --out.
    """
    s = merge_settings(config, locals() | {"config": None}, audit)
    require(s, "model", "out")
    from obliviate import api
    from obliviate.report.terminal import audit_table, guard_table, verdict_banner

    result = api.audit(
        s["model"],
        s["out"],
        overwrite=s["overwrite"],
        trust_remote_code=bool(s.get("trust_remote_code")),
        use_cache=not s["no_cache"],
        **given_options(s, *AUDIT_OPTIONS, "base_secret", *GENERAL),
    )
    stdout.print(verdict_banner(result))
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
    split: SplitOpt = None,
    forget: ForgetOpt = None,
    retain: RetainOpt = None,
    max_new_tokens: Annotated[int, opt(o.CHAT_NEW_TOKENS)] = o.CHAT_NEW_TOKENS.default,
    trust_remote_code: TrustRemoteCodeOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Talk to --model (behind --guard) in the terminal; /reset starts over, /exit ends."""
    if model is None:
        raise ObliviateError("missing --model; see --help")
    set_threads(threads)
    from obliviate.workflows.chat import open_chat, read_message

    session = open_chat(
        model,
        guard,
        bench,
        split or o.SPLIT.default,
        forget,
        retain,
        max_new_tokens,
        bool(trust_remote_code),
    )
    interactive = sys.stdin is not None and sys.stdin.isatty()
    console.print(f"chatting with [bold]{model}[/bold]" + (f" behind {guard}" if guard else ""))
    while True:
        if interactive:
            console.print("[bold]you>[/bold] ", end="")
        line = read_message(sys.stdin)  # None: standard input ended (or is closed)
        if line is None or line.strip() == "/exit":
            break
        if line.strip() == "/reset":
            session.turns.clear()
            continue
        if line.strip():
            stdout.print(session.respond(line.strip()), highlight=False, markup=False)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories with a results.json.")],
    out: Annotated[Path, opt(o.REPORT_OUT, "--out", "-o")] = Path(o.REPORT_OUT.default),
) -> None:
    """Write one self-contained HTML report (plots embedded) and a Markdown summary."""
    from obliviate.report import write_report

    html, markdown = write_report(runs, out)
    stdout.print(f"report: [bold]{html}[/bold]\nsummary: [bold]{markdown}[/bold]")


@app.command()
def demo(
    out: Annotated[Path, opt(o.DEMO_OUT, "--out", "-o")] = Path(o.DEMO_OUT.default),
    model: BaseModelOpt = o.BASE_MODEL.default,
    method: Annotated[str | None, opt(o.DEMO_METHOD)] = o.DEMO_METHOD.default,
    seed: Annotated[int, opt(o.DEMO_SEED)] = o.DEMO_SEED.default,
    people: Annotated[int, opt(o.PEOPLE)] = o.PEOPLE.default,
    text: Annotated[
        bool,
        typer.Option(
            "--text", help="The text scenario: target, oracle and unlearning on passages."
        ),
    ] = False,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A few minutes instead of the whole story: unlearn a topic the model "
            "already knows (bench make --kind known) and judge it against the model itself.",
        ),
    ] = False,
    topic: Annotated[str | None, opt(o.KNOWN_TOPIC)] = o.KNOWN_TOPIC.default,
    threads: ThreadsOpt = None,
) -> None:
    """Run the whole story: benchmark, target and oracle fine-tunes, unlearning, evaluation
    (--quick: a known topic unlearned from the model itself, in a few minutes)."""
    if quick and text:
        raise ObliviateError("--quick and --text do not combine; pick one")
    set_threads(threads)
    from obliviate import api
    from obliviate.report.terminal import results_table, verdict_banner

    if quick:
        results = api.quick_demo(out=out, model=model, method=method, topic=topic)
    else:
        results = api.demo(out=out, model=model, method=method, seed=seed, people=people, text=text)
    stdout.print(verdict_banner(results))
    stdout.print(results_table(results, main="unlearned"))
    stdout.print(f"report: [bold]{results['report']}[/bold]")
    stdout.print(f"run directory: [bold]{results['out']}[/bold]")
