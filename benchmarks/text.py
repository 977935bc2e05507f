"""MUSE's text scenario on the default model: unlearn forget10's passages, six methods.

    .venv/bin/python benchmarks/text.py [--model smollm2] \
        [--methods ga,grad_diff,npo,simnpo,task_vector,rmu] [--work runs/bench-text]

Target and oracle are the demo's text scenario (``obliviate demo --text``: fine-tuned on
every person's biography, and on every biography but forget10's; cached after the first
run). Each method unlearns forget10's passages from the target in its own process
(``obliviate unlearn``, the demo's unlearning schedule, retain90's passages as retain
data), so its wall time is its own; then every model is evaluated together against the
oracle (at most 100 records per split) with MUSE's figures: VerbMem, KnowMem on forget
and retain, PrivLeak and the four verdicts. Prints one table, also written to
``WORK/text.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from obliviate import api
from obliviate.evaluate.suite import evaluate_models, results_document

COLUMNS = (
    "model", "verbmem", "knowmem forget", "knowmem retain", "privleak",
    "no verbmem", "no knowmem", "no privleak", "utility kept", "seconds",
)  # fmt: skip

#: Where a method's learning rate differs from the demo's schedule (as in methods.py).
LEARNING_RATES = {"rmu": 5e-4}


def unlearn(method: str, target: Path, bench: Path, out: Path, config: Path) -> dict | None:
    """Run one method on the passages in a fresh process; its manifest's cost (None if the
    run failed)."""
    if not (out / "manifest.json").is_file():
        command = [
            sys.executable, "-m", "obliviate", "unlearn", "--model", str(target),
            "--forget", str(bench / "forget10.text.jsonl"),
            "--retain", str(bench / "retain90.text.jsonl"),
            "--method", method, "--out", str(out), "--config", str(config), "--overwrite",
        ]  # fmt: skip
        if method in LEARNING_RATES:
            command += ["--lr", str(LEARNING_RATES[method])]
        if subprocess.run(command).returncode != 0:
            print(f"{method}: unlearning failed (see above); left out of the table")
            return None
    return json.loads((out / "manifest.json").read_text())["cost"]


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _verdict(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "—"}[value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default="ga,grad_diff,npo,simnpo,task_vector,rmu")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-text"))
    parser.add_argument(
        "--precision", default="auto", help="evaluation precision (auto: bf16 where native)"
    )
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    args.work.mkdir(parents=True, exist_ok=True)

    demo = args.work / "demo"
    if not (demo / "results.json").is_file():
        api.demo(out=demo, model=args.model, text=True)
    recipe = api.DEMO_RECIPES.get(args.model, api.DEMO_RECIPES["smollm2"]).unlearn
    config = args.work / "unlearn.yaml"
    schedule = {k: getattr(recipe, k) for k in ("epochs", "lr", "batch_size", "seed", "scheduler")}
    config.write_text(yaml.safe_dump(schedule))

    bench = demo / "bench"
    costs = {m: unlearn(m, demo / "target", bench, args.work / m, config) for m in methods}
    methods = [m for m in methods if costs[m] is not None]
    splits = api.bench_splits(bench, "forget10", max_per_split=100)
    passages = api.bench_passages(bench, "forget10", max_per_split=100)
    models = {"oracle": demo / "oracle", "target": demo / "target"}
    models |= {m: args.work / m for m in methods}
    evaluations = evaluate_models(models, splits, precision=args.precision, passages=passages)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name in models:
        figures = results_document(evaluations, name, "forget10")["text"]
        verdicts = figures["verdicts"]
        cost = costs.get(name)
        row = [
            name,
            *(_figure(figures[k]) for k in ("verbmem", "knowmem_forget", "knowmem_retain")),
            _figure(figures["privleak"]),
            *(_verdict(verdicts[k]) for k in verdicts),
            f"{cost['seconds']:.0f}" if cost else "—",
        ]
        lines.append("| " + " | ".join(row) + " |")
    table = "\n".join(lines)
    (args.work / "text.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
