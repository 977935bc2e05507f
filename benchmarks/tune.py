"""`obliviate tune` on the demo's target, and its chosen recipe applied to forget10.

    .venv/bin/python benchmarks/tune.py [--model smollm2] [--trials 16] \
        [--methods npo,grad_diff] [--work runs/bench-tune] [--jobs 1] [--max-per-split 40]

Target and oracle come from the demo (cached after the first run, as in
benchmarks/methods.py). The study tunes on the benchmark's validation request
(validate10: as many people as forget10, none of them forget10's people or neighbours,
against its own oracle), never on forget10. Then the chosen recipe (`recipe.yaml`) is
applied to forget10 with `obliviate unlearn --config`, exactly as a user would, and the
result is evaluated against forget10's oracle beside the target and the demo's own
unlearned model (at most 100 records per split, as the demo does). Prints one table, also
written to ``WORK/tune.md``. A study left unfinished is continued (``--resume``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from obliviate import api
from obliviate.cache import cache_root
from obliviate.evaluation.suite import evaluate_models, results_document
from obliviate.workflows.tune_trials import utility_of

COLUMNS = (
    "model", "method", "recipe", "validation FQ", "validation utility ×", "forget10 FQ",
    "model utility", "× target", "forget acc", "retain acc", "seconds",
)  # fmt: skip


def obliviate(*args: str) -> None:
    """Run an obliviate command in its own process; stop the benchmark if it fails."""
    command = [sys.executable, "-m", "obliviate", *args]
    if subprocess.run(command).returncode != 0:
        sys.exit(f"failed: {' '.join(command)}")


def describe(recipe: dict) -> str:
    length = (
        f"{recipe['max_steps']} steps" if recipe.get("max_steps") else f"{recipe['epochs']:g} ep"
    )
    params = ", ".join(
        f"{k} {v:.3g}" for k, v in (recipe.get("method_params") or {}).items()
        if isinstance(v, float)
    )  # fmt: skip
    return f"lr {recipe['lr']:.3g}, {length}" + (f", {params}" if params else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--methods", default="npo,grad_diff")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-tune"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--max-per-split", type=int, default=40, help="per trial")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    demo = args.work / "demo"
    if not (demo / "results.json").is_file():
        api.demo(out=demo, model=args.model)
    bench, target, oracle = demo / "bench", demo / "target", demo / "oracle"

    tune_out = args.work / "tune"
    started = time.perf_counter()
    if not (tune_out / "results.json").is_file():
        resume = ["--resume"] if (args.work / ".tune.partial").is_dir() else []
        obliviate(
            "tune", "--model", str(target), "--bench", str(bench), "--split", "forget10",
            "--method", args.methods, "--trials", str(args.trials), "--jobs", str(args.jobs),
            "--max-per-split", str(args.max_per_split), "--out", str(tune_out), *resume,
        )  # fmt: skip
    tune_seconds = time.perf_counter() - started
    found = json.loads((tune_out / "results.json").read_text())["tune"]
    chosen = next(t for t in found["trials"] if t["number"] == found["chosen"])

    tuned = args.work / "tuned"
    obliviate(
        "unlearn", "--model", str(target), "--forget", str(bench / "forget10.jsonl"),
        "--retain", str(bench / "retain90.jsonl"), "--out", str(tuned),
        "--config", str(tune_out / "recipe.yaml"), "--overwrite", "--allow-weak",
    )  # fmt: skip

    splits = api.bench_splits(bench, "forget10", max_per_split=100)
    models = {"target": target, "demo recipe": demo / "unlearned", "tuned": tuned, "oracle": oracle}
    evaluations = evaluate_models(models, splits, cache=cache_root())
    # The utility the study kept: the standard figure, over the abilities the target has
    # (the tiny test model knows no world fact, so its world figures are left out).
    inputs = found["objectives"]["utility_inputs"]
    target_utility = utility_of(results_document(evaluations, "target", "forget10"), inputs)
    rows = []
    for name in models:
        others = {k: evaluations[k] for k in ("oracle", "target") if k != name}
        entry = results_document({name: evaluations[name], **others}, main=name, split="forget10")
        utility = utility_of(entry, inputs)
        manifest = json.loads((Path(models[name]) / "manifest.json").read_text())
        is_tuned = name == "tuned"
        rows.append(
            [
                name,
                str(manifest.get("method") or "—"),
                describe(chosen["recipe"]) if is_tuned else "—",
                f"{chosen['figures']['forget_quality']:.3g}" if is_tuned else "—",
                f"{chosen['figures']['utility_ratio']:.2f}" if is_tuned else "—",
                f"{entry['forget_quality']:.3g}",
                f"{utility:.3f}",
                f"{utility / target_utility:.2f}",
                f"{entry['splits']['forget']['accuracy']:.0%}",
                f"{entry['splits']['retain']['accuracy']:.0%}",
                f"{(manifest.get('cost') or {}).get('seconds') or 0:.0f}",
            ]
        )
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    summary = (
        f"{args.model}: {len(found['trials'])} trials of {args.methods} in "
        f"{found['seconds'] / 60:.1f} min (this call {tune_seconds / 60:.1f} min), chosen trial "
        f"{found['chosen']}: {found['chosen_reason']}"
    )
    table = "\n".join([summary, "", *lines])
    (args.work / "tune.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
