"""``obliviate bench``: write the built-in benchmarks, or one from your safety data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from obliviate import options as o
from obliviate.cli.app import bench_app, stdout
from obliviate.cli.params import (
    opt,
)
from obliviate.errors import ObliviateError


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
    kind: Annotated[str, opt(o.BENCH_KIND, metavar="[facts|behaviour]")] = o.BENCH_KIND.default,
    size: Annotated[int, opt(o.BEHAVIOUR_ITEMS)] = o.BEHAVIOUR_ITEMS.default,
) -> None:
    """Generate the built-in benchmark: fictitious people, their facts and TOFU-style splits,
    each split also as passages (<split>.text.jsonl: one biography per person); or, with
    --kind behaviour, harmful_train, harmful_unseen, normal and normal_near requests."""
    if kind == "behaviour":
        from obliviate.data.behaviour import make_behaviour_benchmark

        paths = make_behaviour_benchmark(out, seed=seed, size=size)
        stdout.print(f"wrote {len(paths)} files to {out}")
        return
    if kind != "facts":
        raise ObliviateError(f"unknown benchmark kind {kind!r}; use facts or behaviour")
    from obliviate.data.bench import make_benchmark

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
