"""Seconds per optimizer step of unlearning methods, as a ratio to plain fine-tuning.

    .venv/bin/python benchmarks/step_time.py [--model runs/demo/target] [--methods grad_diff,npo]

Every objective takes the same forget batch (and the same retain batch) of the built-in
benchmark, `--steps` times after `--warmup` untimed steps: loss, backward, AdamW step.
Reference figures that do not change (NPO's and DPO's reference log-probabilities) are
computed once in ``prepare``, which is timed separately and not counted per step.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from obliviate.data.bench import make_benchmark
from obliviate.data.loaders import load_records
from obliviate.methods import FineTune, build_method
from obliviate.methods.base import TrainingContext
from obliviate.models.encoding import collate, encode_fact
from obliviate.models.loader import load_model
from obliviate.models.precision import resolve_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default="grad_diff,npo")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    precision = resolve_precision("auto")

    with tempfile.TemporaryDirectory() as tmp:
        make_benchmark(Path(tmp), seed=0, people=40)
        forget_records = load_records(Path(tmp) / "forget10.jsonl")
        retain_records = load_records(Path(tmp) / "retain90.jsonl")
    rows = []
    for name in ["finetune", *args.methods.split(",")]:
        loaded = load_model(args.model)
        tokenizer, model = loaded.tokenizer, loaded.model

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
        forget_batch = collate(forget[: args.batch_size], tokenizer.pad_token_id)
        forget_batch["index"] = torch.arange(args.batch_size)
        retain_batch = collate(retain[: args.batch_size], tokenizer.pad_token_id)
        retain_batch["index"] = torch.arange(args.batch_size)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
        model.train()
        timings = []
        for step in range(args.warmup + args.steps):
            clock = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss, _ = objective.loss(model, forget_batch, retain_batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= args.warmup:
                timings.append(time.perf_counter() - clock)
        rows.append((name, sum(timings) / len(timings), prepare_seconds))
        del loaded, model, optimizer
    base = rows[0][1]
    print(f"{args.model}, batch {args.batch_size}, {precision}, {args.threads} threads")
    print("| objective | seconds per step | ratio to fine-tuning | prepare (once) |")
    print("|---|---|---|---|")
    for name, seconds, prepare_seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / base:.2f} | {prepare_seconds:.1f} s |")


if __name__ == "__main__":
    main()
