"""Steps per second with 1 and 2 processes on this machine, and the peak memory of each
process, with and without LoRA and gradient checkpointing.

    .venv/bin/python benchmarks/scaling.py [--model smollm2] [--method finetune|npo|…]
        [--processes 1,2] [--variants plain,lora,checkpointing,lora+checkpointing]
        [--steps 8] [--warmup 2] [--batch-size 8] [--precision auto] [--cores N]
        [--out runs/bench-scaling/scaling.md]

Every configuration is a real launch, as a user would type it:
``python -m torch.distributed.run --standalone --nproc_per_node N -m obliviate finetune …``
(``unlearn --method M`` with ``--method``) on the built-in benchmark's forget10 (and
retain90), ``--max-steps warmup + steps``, no checkpoints, one process launched the same
way for N = 1. Each process gets ``--cores / N`` threads (``OMP_NUM_THREADS``), so every
launch uses the whole machine. Steps per second come from the run's ``log.jsonl`` (its
``seconds`` column, taken by the main process after each optimizer step): the ``--steps``
steps after ``--warmup`` warm-up steps, so interpreter start, model loading, ``prepare``,
the before/after log-probabilities and saving are left out (the "wall s" column has
them). A step on N processes takes N × ``--batch-size`` examples (``--grad-accum`` 1), so
examples per second is the figure to compare across N. Peak RSS is the largest process
of the launch (the kernel's ``wait4`` figure for the launcher, which includes its
workers), over the whole run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import run_with_peak_rss

from obliviate.data.bench import make_benchmark

VARIANTS = {
    "plain": [],
    "lora": ["--lora"],
    "checkpointing": ["--gradient-checkpointing"],
    "lora+checkpointing": ["--lora", "--gradient-checkpointing"],
}
COLUMNS = (
    "processes", "threads each", "LoRA", "gradient checkpointing", "steps/s",
    "examples/s", "× 1 process", "peak RSS MiB per process", "wall s",
)  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="smollm2, tiny or a model path")
    parser.add_argument("--method", default="finetune", help="finetune, or a method to unlearn")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=8, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (≥ 1)")
    parser.add_argument("--batch-size", type=int, default=8, help="examples per process")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-scaling/scaling.md"))
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1 (a step is timed from the last)")
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    return args


def steps_per_second(log_jsonl: Path, warmup: int) -> tuple[float, int]:
    """Steps per second after ``warmup`` steps, from a run's ``log.jsonl``; and the steps."""
    seconds = {}
    for line in log_jsonl.read_text().splitlines():
        record = json.loads(line)
        seconds[record["step"]] = record["seconds"]
    last = max(seconds)
    return (last - warmup) / (seconds[last] - seconds[warmup]), last - warmup


def launch(args: argparse.Namespace, processes: int, variant: str, data: Path, work: Path) -> dict:
    """One launch; what it measured, or where its log is when it failed."""
    name = f"{processes}proc-{variant}"
    out = work / name
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    config = work / "config.yaml"
    config.write_text("checkpoint_every: 0\n")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", str(processes), "-m", "obliviate"]
    if args.method == "finetune":
        command += ["finetune", "--data", str(data / "forget10.jsonl"), "--no-cache"]
    else:
        command += ["unlearn", "--method", args.method, "--forget", str(data / "forget10.jsonl")]
        command += ["--retain", str(data / "retain90.jsonl")]
    command += ["--model", args.model, "--out", str(out), "--config", str(config)]
    command += ["--max-steps", str(args.warmup + args.steps), "--batch-size", str(args.batch_size)]
    command += ["--precision", args.precision, "--lr", str(args.lr), *VARIANTS[variant]]
    threads = max(1, args.cores // processes)
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "OBLIVIATE_QUIET": "1"}
    clock = time.perf_counter()
    code, peak = run_with_peak_rss(command, env=env, log=log)
    wall = time.perf_counter() - clock
    row = {"processes": processes, "threads": threads, "variant": variant, "wall": wall}
    if code != 0 or not (out / "log.jsonl").is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        print(f"  {name}: failed ({tail[0][:200]}); log: {log}")
        return row | {"failed": str(log)}
    rate, timed = steps_per_second(out / "log.jsonl", args.warmup)
    print(f"  {name}: {rate:.3f} steps/s over {timed} steps, peak {peak:.0f} MiB, {wall:.0f} s")
    return row | {"steps_per_second": rate, "peak_rss_mb": peak}


def table(rows: list[dict], batch_size: int) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    one = {
        r["variant"]: r["steps_per_second"] * batch_size
        for r in rows
        if r["processes"] == 1 and "failed" not in r
    }
    for row in rows:
        flags = VARIANTS[row["variant"]]
        cells = [
            str(row["processes"]),
            str(row["threads"]),
            "yes" if "--lora" in flags else "no",
            "yes" if "--gradient-checkpointing" in flags else "no",
        ]
        if "failed" in row:
            cells += [f"failed, see {row['failed']}", "", "", "", f"{row['wall']:.0f}"]
        else:
            examples = row["steps_per_second"] * batch_size * row["processes"]
            base = one.get(row["variant"])
            cells += [
                f"{row['steps_per_second']:.3f}",
                f"{examples:.2f}",
                f"{examples / base:.2f}" if base else "—",
                f"{row['peak_rss_mb']:.0f}",
                f"{row['wall']:.0f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    args = parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    variants = args.variants.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench"
        make_benchmark(data, seed=0)
        for variant in variants:
            for processes in counts:
                rows.append(launch(args, processes, variant, data, Path(tmp)))
    what = "fine-tuning" if args.method == "finetune" else f"unlearning with {args.method}"
    header = [
        f"# Scaling: {what}, {args.model}, {os.cpu_count()} cores",
        "",
        f"torchrun --standalone, gloo on the CPU (NCCL on GPUs); {args.batch_size} examples per "
        f"process and step; precision {args.precision}; steps/s over {args.steps} steps after "
        f"{args.warmup} warm-up steps (from log.jsonl); peak RSS of the largest process, "
        "whole run.",
        "",
    ]
    text = "\n".join([*header, *table(rows, args.batch_size)]) + "\n"
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"args": vars(args), "rows": rows}, indent=1, default=str)
    )
    print(f"written to {args.out} (and {args.out.with_suffix('.json').name})")


if __name__ == "__main__":
    main()
