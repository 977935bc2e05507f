"""Tokens per second and FLOP/s of a training step, per objective and precision, against
the machine's matmul peak measured in the same run.

    .venv/bin/python benchmarks/throughput.py [--model smollm2] [--methods grad_diff,npo,ga_kl]
        [--methods all] [--precisions fp32,bf16] [--batch-size 8] [--seq-len 0] [--steps 6]
        [--warmup 2] [--threads N] [--compile] [--rounds 1]
        [--out runs/bench-throughput/throughput.md]

Plain fine-tuning and each chosen method (``obliviate.methods.METHODS``, default
parameters) train in a process of their own (so each peak RSS is its own) through
obliviate's one training loop (``train.loop.train``: loss, backward, gradient clipping,
AdamW step, log line), on the built-in benchmark's forget10 and retain90 records, with
``--batch-size`` forget examples (and as many retain examples) per step. ``prepare``
(reference log-probabilities, frozen copies, relabelled targets) runs once before the
loop and is timed apart. ``--warmup`` steps are left out; the figures are medians over
the ``--steps`` steps that follow. ``--seq-len N`` puts other benchmark facts in front of
each question so that every example is about N tokens (0: the questions as they are).
bf16 is autocast (also on the CPU); weights and optimizer state stay float32.
``--rounds R`` runs the whole list R times, each round starting one objective further
along, and pools every objective's timed steps from all rounds (the matmul peak is the
best of the rounds): on a shared machine whose speed drifts over minutes, each objective
then samples the same stretches of time as the others.

What is counted (the table's notes say it again):

- forward tokens: every position that goes through the decoder, in any copy of the
  model (a frozen reference's passes included), padding included, weighted by depth (a
  pass that stops at layer ℓ of L counts ℓ/L), counted by hooks during the timed steps;
  "train" passes record autograd, "ref" passes run under ``torch.no_grad``.
- model FLOPs: 6·N·T for a training pass, 2·N·T for a reference pass (N the decoder's
  parameters without the embedding, T its tokens), plus the same for the output head
  (N = vocabulary × hidden, T = the rows it projects: obliviate projects labelled
  positions only); a frozen layer is charged 4·N·T in a training pass when something
  below it learns, 2·N·T when nothing does (RMU's layers below its update layers).
- counted FLOPs: the matrix products and attention one step actually runs, forward and
  backward, counted by ``torch.utils.flop_counter`` on one extra step; this is the
  figure compared with the matmul peak.
- peak: the fastest of n×n @ n×n products (n = ``--peak-sizes``), in fp32 and bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import (
    PassCounter,
    counted_flops,
    device_name,
    matmul_peak,
    run_with_peak_rss,
)

from obliviate.data.bench import make_benchmark
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.methods import METHODS, FineTune, build_method
from obliviate.methods.base import TrainingContext
from obliviate.models.encoding import collate, encode_fact
from obliviate.models.loader import load_model
from obliviate.models.precision import resolve_precision
from obliviate.rundir import peak_rss_mb
from obliviate.train.config import TrainConfig
from obliviate.train.loop import train

DEFAULT_METHODS = "grad_diff,npo,ga_kl"
"""GradDiff and NPO (the NPO ≤ 1.03 × GradDiff aim) and GA+KL (a reference forward pass
every step); ``--methods all`` runs every registered method."""
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
COLUMNS = (
    "objective", "precision", "s/step", "fwd tokens/step (train + ref)", "tokens/s",
    "× fine-tune per token", "model GFLOP/s", "counted GFLOP/s", "% of peak",
    "prepare s (once)", "peak RSS MiB",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="smollm2, tiny or a model path")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma list, all, or none")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=0, help="tokens per example; 0: as is")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (median of these)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (≥ 1)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument(
        "--compile", action="store_true", help="train with --compile (torch.compile per layer)"
    )
    parser.add_argument("--split", default="forget10", help="benchmark split to train on")
    parser.add_argument("--peak-sizes", default="1024,2048,4096")
    parser.add_argument("--peak-seconds", type=float, default=1.0, help="per size and dtype")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the list this many times, rotated; pool"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench-throughput/throughput.md"))
    # One objective in one precision, in a process of its own (what the parent starts).
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1 (a step is timed from the last)")
    return args


def lengthen(records: list[Record], tokenizer: object, seq_len: int, filler: str) -> list[Record]:
    """Each fact with other facts (``filler``) in front of its question, so that its
    encoding is about ``seq_len`` tokens (a few more or fewer: text is re-tokenised)."""
    if seq_len <= 0:
        return records
    filler_ids = tokenizer(filler, add_special_tokens=False)["input_ids"]
    while len(filler_ids) < seq_len:
        filler_ids = filler_ids * 2
    longer = []
    for record in records:
        room = seq_len - len(encode_fact(tokenizer, record.prompt, record.answer).input_ids) - 1
        if room > 0:
            context = tokenizer.decode(filler_ids[:room]).strip()
            record = replace(record, prompt=f"{context}\n{record.prompt}")
        longer.append(record)
    return longer


def worker(args: argparse.Namespace) -> None:
    """Train one objective for warmup + steps steps; write what was measured as JSON."""
    torch.set_num_threads(args.threads)
    name, precision = args.worker.split(":")
    loaded = load_model(args.model)
    model, tokenizer = loaded.model, loaded.tokenizer
    retain_split = "retain" + str(100 - int(args.split.removeprefix("forget")))
    forget_records = load_records(args.data / f"{args.split}.jsonl")
    retain_records = load_records(args.data / f"{retain_split}.jsonl")
    filler = " ".join(f"{r.prompt} {r.answer}" for r in retain_records)
    forget_records = lengthen(forget_records, tokenizer, args.seq_len, filler)
    retain_records = lengthen(retain_records, tokenizer, args.seq_len, filler)
    forget, retain = (
        [encode_fact(tokenizer, r.prompt, r.answer) for r in records]
        for records in (forget_records, retain_records)
    )
    objective = FineTune() if name == "finetune" else build_method(name)
    clock = time.perf_counter()
    objective.prepare(
        TrainingContext(model, tokenizer, forget, retain, forget_records, retain_records)
    )
    prepare_seconds = time.perf_counter() - clock

    counter = PassCounter(model)
    stamps: list[float] = []
    counts: list[tuple[float, float, int]] = []

    def on_step(step: int, total: int, logs: dict) -> None:
        stamps.append(time.perf_counter())
        counts.append(counter.snapshot())

    config = TrainConfig(
        max_steps=args.warmup + args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        precision=precision,
        checkpoint_every=0,
        compile=args.compile,
    )
    with tempfile.TemporaryDirectory() as work, counter:
        train(
            model,
            objective,
            forget,
            retain,
            config,
            tokenizer.pad_token_id,
            Path(work),
            on_step=on_step,
        )
    timed = range(args.warmup, args.warmup + args.steps)  # step i+1 ends at stamps[i]
    step_seconds = [stamps[i] - stamps[i - 1] for i in timed]
    per_step = [tuple(b - a for a, b in zip(counts[i - 1], counts[i], strict=True)) for i in timed]

    # One more step on a fixed batch, under the FLOP counter (too slow to time).
    device = next(model.parameters()).device
    size = min(args.batch_size, len(forget))
    batches = []
    for examples in (forget, retain):
        batch = collate(examples[:size], tokenizer.pad_token_id)
        batch["index"] = torch.arange(size)
        batches.append({k: v.to(device) for k, v in batch.items()})
    model.train()

    def one_step() -> None:
        autocast = torch.autocast(device.type, DTYPES[precision], enabled=precision != "fp32")
        with autocast:
            loss, _ = objective.loss(model, *batches)
        loss.backward()

    counter.reset()
    with counter:
        flops = counted_flops(one_step)
    model.zero_grad(set_to_none=True)
    result = {
        "objective": name,
        "precision": precision,
        "step_seconds": step_seconds,
        "train_tokens": [c[0] for c in per_step],
        "reference_tokens": [c[1] for c in per_step],
        "model_flops": [c[2] for c in per_step],
        "counted_flops_per_token": flops / (counter.train_tokens + counter.reference_tokens),
        "prepare_seconds": prepare_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        "tokens_per_example": statistics.mean(len(e.input_ids) for e in forget),
        "non_embedding_params": counter.non_embedding_params,
        "head_params": counter.head_params,
        "device": device_name(device),
    }
    args.result.write_text(json.dumps(result))


def run_worker(args: argparse.Namespace, name: str, precision: str, data: Path) -> dict:
    """One objective in one precision in a fresh process; its result, or its failure."""
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}-{precision}.log"
    result = logs / f"{name}-{precision}.json"
    result.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--worker", f"{name}:{precision}"]
    command += ["--data", str(data), "--result", str(result)]
    for option in ("model", "batch_size", "seq_len", "steps", "warmup", "threads", "lr", "split"):
        command += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    if args.compile:
        command.append("--compile")
    env = os.environ | {"OBLIVIATE_QUIET": "1"}
    clock = time.perf_counter()
    code, _ = run_with_peak_rss(command, env=env, log=log)
    seconds = time.perf_counter() - clock
    if code != 0 or not result.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        print(f"  {name} {precision}: failed ({tail[0][:200]}); log: {log}")
        return {"objective": name, "precision": precision, "failed": str(log)}
    print(f"  {name} {precision}: {seconds:.0f} s")
    return json.loads(result.read_text())


def pooled(runs: list[dict]) -> dict:
    """One row from an objective's runs in every round: their timed steps together (the
    first failure instead, if any run failed), the largest peak RSS, the median prepare."""
    failed = [run for run in runs if "failed" in run]
    if failed:
        return failed[0]
    row = dict(runs[0])
    for key in ("step_seconds", "train_tokens", "reference_tokens", "model_flops"):
        row[key] = [value for run in runs for value in run[key]]
    row["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    row["prepare_seconds"] = statistics.median(run["prepare_seconds"] for run in runs)
    row["rounds"] = len(runs)
    row["summary"] = summarise(row)
    return row


def summarise(row: dict) -> dict:
    """Medians over the timed steps: seconds, tokens, tokens/s, FLOP/s."""
    seconds = row["step_seconds"]
    tokens = [t + r for t, r in zip(row["train_tokens"], row["reference_tokens"], strict=True)]
    return {
        "seconds": statistics.median(seconds),
        "train_tokens": statistics.median(row["train_tokens"]),
        "reference_tokens": statistics.median(row["reference_tokens"]),
        "tokens_per_second": statistics.median(t / s for t, s in zip(tokens, seconds, strict=True)),
        "model_flops_per_second": statistics.median(
            f / s for f, s in zip(row["model_flops"], seconds, strict=True)
        ),
    }


def table(rows: list[dict], peaks: dict[str, float]) -> list[str]:
    """The Markdown table, one line per objective and precision."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    base = {
        r["precision"]: r["summary"]
        for r in rows
        if r["objective"] == "finetune" and "summary" in r
    }
    for row in rows:
        if "summary" not in row:
            cells = [row["objective"], row["precision"], f"failed, see {row['failed']}"]
            lines.append("| " + " | ".join(cells + [""] * (len(COLUMNS) - 3)) + " |")
            continue
        s = row["summary"]
        counted = row["counted_flops_per_token"] * s["tokens_per_second"]
        baseline = base.get(row["precision"])
        ratio = s["tokens_per_second"] / baseline["tokens_per_second"] if baseline else None
        memory = f"{row['peak_rss_mb']:.0f}"
        if row.get("gpu_peak_mb") is not None:
            memory += f" (GPU {row['gpu_peak_mb']:.0f})"
        cells = [
            row["objective"],
            row["precision"],
            f"{s['seconds']:.3f}",
            f"{s['train_tokens']:.0f} + {s['reference_tokens']:.0f}",
            f"{s['tokens_per_second']:.0f}",
            "—" if ratio is None else f"{ratio:.2f}",
            f"{s['model_flops_per_second'] / 1e9:.1f}",
            f"{counted / 1e9:.1f}",
            f"{counted / peaks[row['precision']]:.1%}",
            f"{row['prepare_seconds']:.2f}",
            memory,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def aims(rows: list[dict], peaks: dict[str, float]) -> list[str]:
    """The issue's three aims, checked on what was measured."""
    done = {(r["objective"], r["precision"]): r for r in rows if "summary" in r}
    lines = []
    for precision in dict.fromkeys(r["precision"] for r in rows):
        base = done.get(("finetune", precision))
        if base is None:
            continue
        rate = base["summary"]["tokens_per_second"]
        counted = base["counted_flops_per_token"] * rate
        below = [
            f"{name} {done[(name, p)]['summary']['tokens_per_second'] / rate:.2f}"
            for (name, p) in done
            if p == precision
            and name != "finetune"
            and done[(name, p)]["summary"]["tokens_per_second"] < 0.9 * rate
        ]
        parts = [
            f"fine-tuning at {counted / peaks[precision]:.0%} of the matmul peak (aim ≥ 60 %)",
            "every method ≥ 0.9 × fine-tuning per forward token"
            + (f": no, {', '.join(below)}" if below else ": yes"),
        ]
        if ("npo", precision) in done and ("grad_diff", precision) in done:
            npo = done[("npo", precision)]["summary"]["seconds"]
            grad_diff = done[("grad_diff", precision)]["summary"]["seconds"]
            parts.append(f"NPO / GradDiff step time {npo / grad_diff:.3f} (aim ≤ 1.03)")
        lines.append(f"- {precision}: " + "; ".join(parts))
    return lines


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    torch.set_num_threads(args.threads)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = [p for p in precisions if p not in DTYPES]
    if unknown:
        sys.exit(f"--precisions: unknown {', '.join(unknown)}; use fp32 and/or bf16")
    if args.methods == "all":
        methods = sorted(METHODS)
    elif args.methods == "none":
        methods = []
    else:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            sys.exit(f"--methods: unknown {', '.join(unknown)}; see `obliviate methods`")
    if args.rounds < 1:
        sys.exit("--rounds must be ≥ 1")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sizes = [int(n) for n in args.peak_sizes.split(",")]
    peaks: dict[str, float] = {}
    peak_sizes: dict[str, int] = {}
    jobs = [(name, precision) for precision in precisions for name in ["finetune", *methods]]
    results: dict[tuple[str, str], list[dict]] = {job: [] for job in jobs}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench"
        make_benchmark(data, seed=0)
        for round_index in range(args.rounds):
            print(f"round {round_index + 1} of {args.rounds}: the matmul peak on "
                  f"{device_name(device)} ...")  # fmt: skip
            for precision in precisions:
                peak, size = matmul_peak(DTYPES[precision], device, sizes, args.peak_seconds)
                if peak > peaks.get(precision, 0.0):
                    peaks[precision], peak_sizes[precision] = peak, size
            shift = round_index % len(jobs)
            for name, precision in jobs[shift:] + jobs[:shift]:
                results[(name, precision)].append(run_worker(args, name, precision, data))
    rows = [pooled(results[job]) for job in jobs]
    done = [r for r in rows if "summary" in r]
    first = done[0] if done else {}
    header = [
        f"# Throughput: {args.model} on {first.get('device', device_name(device))}",
        "",
        f"batch {args.batch_size} forget examples (+ as many retain where a method uses "
        f"them), about {first.get('tokens_per_example', 0):.0f} tokens each; median of "
        f"{args.steps} steps after {args.warmup} warm-up steps"
        + (f" in each of {args.rounds} rounds (rotated order)" if args.rounds > 1 else "")
        + f"; torch {torch.__version__}; "
        f"native bf16: {'yes' if resolve_precision('auto') == 'bf16' else 'no'}.",
        "",
    ]
    notes = [
        "",
        (
            "Matmul peak measured in this run (best of its rounds): "
            if args.rounds > 1
            else "Matmul peak measured in this run: "
        )
        + ", ".join(f"{p} {peaks[p] / 1e9:.0f} GFLOP/s (n = {peak_sizes[p]})" for p in precisions)
        + ".",
        "",
        *aims(rows, peaks),
        "",
        "Forward tokens: positions through the decoder in any copy of the model (train: "
        "with autograd; ref: frozen reference passes under no_grad), padding included, "
        "weighted by depth for passes that stop early. "
        f"Model FLOPs: 6·N·T per training pass and 2·N·T per reference pass, N = "
        f"{first.get('non_embedding_params', 0) / 1e6:.1f} M non-embedding parameters, plus "
        f"the output head ({first.get('head_params', 0) / 1e6:.1f} M) on the rows it "
        "projects; a frozen layer 4·N·T, or 2·N·T when nothing below it learns. "
        "Counted FLOPs: matrix products and attention of one step as "
        "torch.utils.flop_counter counts them; % of peak = counted FLOP/s / the peak. "
        "Prepare: once per run, outside the timed steps. Peak RSS: the whole process "
        "(model load, prepare, steps).",
    ]
    text = "\n".join([*header, *table(rows, peaks), *notes]) + "\n"
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    raw = {"peaks": peaks, "peak_sizes": peak_sizes, "args": vars(args), "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    print(f"written to {args.out} (and {args.out.with_suffix('.json').name})")


if __name__ == "__main__":
    main()
