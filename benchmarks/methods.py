"""Every unlearning method with its defaults on the built-in benchmark's forget10.

    .venv/bin/python benchmarks/methods.py [--model smollm2] [--methods npo,grad_diff] \
        [--work runs/bench-methods]

Target and oracle come from the demo's recipe (cached after the first run). Each method
unlearns forget10 from the target in its own process with ``obliviate unlearn``'s
defaults (no training option: the recipe of the model, its ``methods`` entry included),
so its wall time and peak memory are its own, and with ``--allow-weak``, so a method
that does not forget stays in the table (its check verdict is a column); then all models
are evaluated together against the oracle (at most 100 records per split, as the demo
does; in bf16 where the CPU has it, which halves the time of evaluating some seventeen
models). Prints one table, also written to
``WORK/methods.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from obliviate import api
from obliviate.evaluation.suite import evaluate_models, results_entry
from obliviate.methods import METHODS
from obliviate.train.recipes import load_recipe

COLUMNS = (
    "method", "forget acc", "forget prob", "forget quality", "model utility (neighbours)",
    "retain acc", "world acc", "check", "seconds", "peak MB",
)  # fmt: skip


def demo_schedule(model: str) -> dict:
    """The demo's unlearning schedule as ``--config`` settings (text.py, text_scale.py):
    the recipe's epochs alone (``min_steps`` 0, as the demo runs it); the learning rate is
    left to the recipe, which gives each method its own (RMU's 5e-4: it moves activations,
    not answer likelihoods, and does nothing at the shared 2e-5)."""
    recipe = load_recipe(model).unlearn
    keys = ("epochs", "batch_size", "seed", "scheduler")
    return {k: getattr(recipe, k) for k in keys} | {"min_steps": 0}


def unlearn(
    method: str, target: Path, forget: Path, retain: Path, out: Path, config: Path | None = None
) -> dict | None:
    """Run one method in a fresh process (``config``: a ``--config`` file over the
    recipe's defaults); its manifest's cost (None if the run failed)."""
    if not (out / "manifest.json").is_file():
        command = [
            sys.executable, "-m", "obliviate", "unlearn", "--model", str(target),
            "--forget", str(forget), "--retain", str(retain),
            "--method", method, "--out", str(out), "--overwrite", "--allow-weak",
        ]  # fmt: skip
        if config is not None:
            command += ["--config", str(config)]
        if subprocess.run(command).returncode != 0:
            print(f"{method}: unlearning failed (see above); left out of the table")
            return None
    return json.loads((out / "manifest.json").read_text())["cost"]


def verdict(run: Path) -> str:
    """The unlearning checks' verdict of a run (forgot, weak, raised)."""
    results = json.loads((run / "results.json").read_text())
    return (results.get("checks") or {}).get("verdict", "—")


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
    bench = demo / "bench"
    forget, retain = bench / "forget10.jsonl", bench / "retain90.jsonl"
    costs = {m: unlearn(m, demo / "target", forget, retain, args.work / m) for m in methods}
    methods = [m for m in methods if costs[m] is not None]
    splits = api.bench_splits(demo / "bench", "forget10", max_per_split=100)
    models = {"oracle": demo / "oracle", "target": demo / "target"}
    models |= {m: args.work / m for m in methods}
    evaluations = evaluate_models(models, splits, precision=args.precision)
    oracle, target = evaluations["oracle"], evaluations["target"]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, evaluation in evaluations.items():
        entry = results_entry(evaluation, oracle, "forget10", target)
        cost = costs.get(name, {})
        s = entry["splits"]
        row = [
            name,
            f"{s['forget']['accuracy']:.0%}",
            f"{s['forget']['prob']:.3f}",
            f"{entry['forget_quality']:.3g}",
            f"{entry['model_utility_neighbors']:.3f}",
            f"{s['retain']['accuracy']:.0%}",
            f"{s['world']['accuracy']:.0%}",
            verdict(args.work / name) if cost else "—",
            f"{cost['seconds']:.0f}" if cost else "—",
            f"{cost['peak_rss_mb']:.0f}" if cost else "—",
        ]
        lines.append("| " + " | ".join(row) + " |")
    table = "\n".join(lines)
    (args.work / "methods.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
