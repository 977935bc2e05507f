"""``obliviate bench``: write the built-in benchmarks, or one from your safety data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from obliviate import options as o
from obliviate.cli.app import bench_app, stdout
from obliviate.cli.params import (
    ThreadsOpt,
    opt,
)
from obliviate.errors import ObliviateError
from obliviate.models.threads import check_threads, set_threads


@bench_app.command("make")
def bench_make(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the splits to.")],
    seed: Annotated[int, opt(o.BENCH_SEED)] = o.BENCH_SEED.default,
    people: Annotated[int, opt(o.PEOPLE)] = o.PEOPLE.default,
    forget25: Annotated[
        bool,
        typer.Option(
            "--forget25",
            help="Also write forget25/retain75: the largest request of a scale run, the "
            "fourth of a sequence (forget01 ⊂ forget05 ⊂ forget10 ⊂ forget25).",
        ),
    ] = False,
    kind: Annotated[
        str, opt(o.BENCH_KIND, metavar="[facts|behaviour|known]")
    ] = o.BENCH_KIND.default,
    size: Annotated[int, opt(o.BEHAVIOUR_ITEMS)] = o.BEHAVIOUR_ITEMS.default,
    setting: Annotated[
        str, opt(o.BEHAVIOUR_SETTING, metavar="[saturated|faithful]")
    ] = o.BEHAVIOUR_SETTING.default,
    topic: Annotated[str | None, opt(o.KNOWN_TOPIC)] = o.KNOWN_TOPIC.default,
    model: Annotated[str, opt(o.BASE_MODEL, "--model", "-m")] = o.BASE_MODEL.default,
    screen: Annotated[bool, opt(o.KNOWN_SCREEN, "--screen/--no-screen")] = o.KNOWN_SCREEN.default,
    threads: ThreadsOpt = None,
) -> None:
    """Generate the built-in benchmark: fictitious people, their facts and TOFU-style splits,
    each split also as passages (<split>.text.jsonl: one biography per person); with
    --kind behaviour, harmful_train, harmful_unseen, normal and normal_near requests (and
    harmful_forget with --setting faithful); with --kind known, real facts of one topic
    --model answers (forget), close facts that must stay (neighbors), other topics
    (retain) and invented facts (holdout)."""
    check_threads(threads)
    if kind == "known":
        set_threads(threads)  # the screening asks --model
        _make_known(out, topic, model, screen)
        return
    if kind == "behaviour":
        from obliviate.data.behaviour import make_behaviour_benchmark

        paths = make_behaviour_benchmark(out, seed=seed, size=size, setting=setting)
        stdout.print(f"wrote {len(paths)} files to {out}")
        return
    if kind != "facts":
        raise ObliviateError(f"unknown benchmark kind {kind!r}; use facts, behaviour or known")
    from obliviate.data.bench import make_benchmark

    paths = make_benchmark(out, seed=seed, people=people, forget25=forget25)
    stdout.print(f"wrote {len(paths)} files to {out}")


def _make_known(out: Path, topic: str | None, model: str, screen: bool) -> None:
    """Write the known benchmark; print per topic how many candidates the model answered."""
    from obliviate.workflows.known import make_known_bench

    made = make_known_bench(out, topic=topic, model=model, screen=screen)
    screening = made.document["screening"]
    if screening is not None:
        table = Table(title=f"facts {model} answers (greedy, evaluation's answer check)")
        for column in ("topic", "facts", "paraphrases", "neighbours"):
            table.add_column(column, justify="left" if column == "topic" else "right")
        for row in screening["topics"].values():
            accuracy = row["paraphrase_accuracy"]
            table.add_row(
                row["topic"],
                f"{row['facts']}/{row['fact_candidates']}",
                "-" if accuracy is None else f"{accuracy:.0%}",
                f"{row['neighbors']}/{row['neighbor_candidates']}",
            )
        stdout.print(table)
        invented = screening["invented"]
        stdout.print(
            f"invented facts it does not answer: {invented['unanswered']}/{invented['candidates']}"
        )
    counts = ", ".join(f"{name} {n}" for name, n in made.document["counts"].items())
    stdout.print(f"forget topic: {made.document['topic']} ({counts})")
    stdout.print(f"wrote {len(made.paths)} files to {out}")


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
    unseen_share: Annotated[float, opt(o.UNSEEN_SHARE)] = o.UNSEEN_SHARE.default,
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
