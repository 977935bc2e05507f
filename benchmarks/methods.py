"""Every unlearning method with its defaults on the built-in benchmark's forget10.

    .venv/bin/python benchmarks/methods.py [--model smollm2] [--methods npo,grad_diff] \
        [--work runs/bench-methods]

Target and oracle come from the demo's recipe (cached after the first run). Each method
unlearns forget10 from the target in its own process (`obliviate unlearn`, the demo's
unlearning schedule, the method's own default hyper-parameters), so its wall time and
peak memory are its own; then all models are evaluated together against the oracle (at
most 100 records per split, as the demo does; in bf16 where the CPU has it, which halves
the time of evaluating some seventeen models). Prints one table, also written to
``WORK/methods.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from obliviate import api
from obliviate.evaluate import mia
from obliviate.evaluate.suite import evaluate_models, mia_scores, results_entry
from obliviate.methods import METHODS
from obliviate.train.recipes import load_recipe

COLUMNS = (
    "method", "forget acc", "forget prob", "forget quality", "model utility",
    "retain acc", "world acc", "seconds", "peak MB",
)  # fmt: skip


#: Where a method's learning rate differs from the demo's schedule. RMU moves activations,
#: not answer likelihoods, and does nothing at the demo's 2e-5 (tuned on the demo target).
LEARNING_RATES = {"rmu": 5e-4}


def unlearn(
    method: str, target: Path, forget: Path, retain: Path, out: Path, config: Path
) -> dict | None:
    """Run one method in a fresh process; its manifest's cost (None if the run failed)."""
    if not (out / "manifest.json").is_file():
        command = [
            sys.executable, "-m", "obliviate", "unlearn", "--model", str(target),
            "--forget", str(forget), "--retain", str(retain),
            "--method", method, "--out", str(out), "--config", str(config), "--overwrite",
        ]  # fmt: skip
        if method in LEARNING_RATES:
            command += ["--lr", str(LEARNING_RATES[method])]
        if subprocess.run(command).returncode != 0:
            print(f"{method}: unlearning failed (see above); left out of the table")
            return None
    return json.loads((out / "manifest.json").read_text())["cost"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default=",".join(sorted(METHODS)))
    parser.add_argument("--work", type=Path, default=Path("runs/bench-methods"))
    parser.add_argument(
        "--precision", default="auto", help="evaluation precision (auto: bf16 where native)"
    )
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    args.work.mkdir(parents=True, exist_ok=True)

    demo = args.work / "demo"
    if not (demo / "results.json").is_file():
        api.demo(out=demo, model=args.model)
    recipe = load_recipe(args.model).unlearn
    config = args.work / "unlearn.yaml"
    schedule = {k: getattr(recipe, k) for k in ("epochs", "lr", "batch_size", "seed", "scheduler")}
    config.write_text(yaml.safe_dump(schedule))

    bench = demo / "bench"
    forget, retain = bench / "forget10.jsonl", bench / "retain90.jsonl"
    costs = {m: unlearn(m, demo / "target", forget, retain, args.work / m, config) for m in methods}
    methods = [m for m in methods if costs[m] is not None]
    splits = api.bench_splits(demo / "bench", "forget10", max_per_split=100)
    models = {"oracle": demo / "oracle", "target": demo / "target"}
    models |= {m: args.work / m for m in methods}
    evaluations = evaluate_models(models, splits, precision=args.precision)
    oracle = evaluations["oracle"]
    oracle_aucs = mia.mia_aucs(
        *({a: s[part] for a, s in mia_scores(oracle).items()} for part in ("forget", "holdout"))
    )
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, evaluation in evaluations.items():
        entry = results_entry(evaluation, oracle, "forget10", oracle_aucs)
        cost = costs.get(name, {})
        s = entry["splits"]
        row = [
            name,
            f"{s['forget']['accuracy']:.0%}",
            f"{s['forget']['prob']:.3f}",
            f"{entry['forget_quality']:.3g}",
            f"{entry['model_utility']:.3f}",
            f"{s['retain']['accuracy']:.0%}",
            f"{s['world']['accuracy']:.0%}",
            f"{cost['seconds']:.0f}" if cost else "—",
            f"{cost['peak_rss_mb']:.0f}" if cost else "—",
        ]
        lines.append("| " + " | ".join(row) + " |")
    table = "\n".join(lines)
    (args.work / "methods.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
