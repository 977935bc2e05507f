"""How long `obliviate eval` takes on the default model and the default-size benchmark.

    .venv/bin/python benchmarks/eval_speed.py [--model smollm2] [--people 40] [--threads 2]
        [--precision fp32|bf16]

Prints the work (records, questions generated, answers scored) and the seconds of each
phase: loading the model, preparing (collecting and tokenising) the splits, the batched
generation pass, the batched scoring pass, and the metrics. The target is 3 minutes in
all for the default model on forget10 and the other splits with 2 CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from obliviate import api
from obliviate.data.bench import make_benchmark
from obliviate.evaluation.model_outputs import generate_from_ids, score_encoded
from obliviate.evaluation.runner import ModelOutputs, prepare_splits, split_results
from obliviate.evaluation.suite import ModelEvaluation, results_entry
from obliviate.models.loader import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--split", default="forget10")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    phases: dict[str, float] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench"
        make_benchmark(bench, seed=0, people=args.people)
        splits = api.bench_splits(bench, args.split)

        clock = time.perf_counter()
        loaded = load_model(args.model)
        phases["load model"] = time.perf_counter() - clock

        clock = time.perf_counter()
        prepared = prepare_splits(splits, loaded.tokenizer)
        phases["prepare (collect, tokenise)"] = time.perf_counter() - clock

        clock = time.perf_counter()
        loaded.model.eval()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
        autocast.__enter__()
        answers = generate_from_ids(loaded.model, loaded.tokenizer, prepared.prompt_ids)
        phases["generate (greedy, batched)"] = time.perf_counter() - clock

        clock = time.perf_counter()
        stats = score_encoded(
            loaded.model,
            prepared.encoded,
            [a for _, a in prepared.pairs],
            loaded.tokenizer.pad_token_id,
        )
        phases["score (batched)"] = time.perf_counter() - clock
        autocast.__exit__(None, None, None)

        clock = time.perf_counter()
        outputs = ModelOutputs(
            answers=dict(zip(prepared.questions, answers, strict=True)),
            stats=dict(zip(prepared.pairs, stats, strict=True)),
        )
        evaluation = ModelEvaluation(args.model, args.model, split_results(prepared, outputs), 0, 0)
        entry = results_entry(evaluation, None, args.split, None)
        phases["metrics, MIA"] = time.perf_counter() - clock
    total = time.perf_counter() - started

    console = Console()
    work = Table(title=f"eval work: {args.model}, {args.split}, {args.people} people")
    for column in ("split", "records", "accuracy"):
        work.add_column(column)
    for name, records in splits.items():
        work.add_row(name, str(len(records)), f"{entry['splits'][name]['accuracy']:.0%}")
    work.add_row("questions generated", str(len(prepared.questions)), "")
    work.add_row("answers scored", str(len(prepared.pairs)), "")
    console.print(work)
    timing = Table(title=f"seconds ({args.threads} threads, {args.precision})")
    timing.add_column("phase")
    timing.add_column("seconds", justify="right")
    for phase, seconds in phases.items():
        timing.add_row(phase, f"{seconds:.1f}")
    timing.add_row("[bold]total (incl. benchmark generation)", f"[bold]{total:.1f}")
    console.print(timing)
    print(f"eval_seconds_total={total:.1f} target=180 {'OK' if total <= 180 else 'OVER'}")


if __name__ == "__main__":
    main()
