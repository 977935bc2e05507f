"""Unlearning a behaviour (SKU's setting) on the default model: five methods, with attacks.

    .venv/bin/python benchmarks/behaviour.py [--model smollm2|tiny] \
        [--methods ga,ga_mismatch,task_vector,npo,sku,sku_keep] [--work runs/bench-behaviour]

1. ``obliviate bench make --kind behaviour`` (seed 0, ``--size`` items: 24, or 6 for tiny);
2. the target: the model fine-tuned on ``full.jsonl`` — it complies with every restricted
   request and answers the normal instructions — with ``FINETUNE_RECIPES`` (cached by
   ``api.finetune``, so a second run starts at step 3);
3. each method unlearns ``harmful_train`` keeping ``normal`` in its own process
   (``obliviate unlearn``, ``UNLEARN_RECIPES``, the method's own defaults), so its wall
   time and peak memory are its own;
4. the target and every unlearned model answer each split once and the harmful requests
   under the in-context and jailbreak attacks once (``obliviate.attacks.behaviour``);
   each is judged by the marker rule against the target. A model's answers are kept in
   ``WORK/eval/<model>/outputs.json`` and reused while its manifest is unchanged.

Prints one Markdown table, also written to ``WORK/behaviour.md``; each model's results
document goes to ``WORK/eval/<model>/results.json`` and one report comparing them to
``WORK/report.html`` (and ``report.md``).

The smollm2 fine-tune recipe: 5 epochs at lr 2e-4 (batch 16, 5 % warm-up). The facts
demo teaches ≥ 80 % of its facts in 7 epochs at that rate with each fact seen once per
epoch; here each procedure is asked in eight phrasings, so it is seen 40 times — enough
to be reproduced from any phrasing, the unseen ones included — while the normal and
near answers (seen 5 times) keep their form. The unlearning schedule is the demo's rate
(2e-5, batch 8, constant) for 4 epochs: harmful_train holds twice as many records as the
demo's forget10, so this is about as many steps as the demo takes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from obliviate import api
from obliviate.attacks.behaviour import run_behaviour_attacks
from obliviate.data.behaviour import make_behaviour_benchmark
from obliviate.data.loaders import load_records
from obliviate.evaluate.behaviour import SPLITS, BehaviourOutputs, behaviour_figures, run_behaviour
from obliviate.evaluate.judge import MarkerJudge
from obliviate.models.loader import load_model
from obliviate.report import write_report
from obliviate.train.config import TrainConfig
from obliviate.train.recipes import load_recipe

COLUMNS = (
    "model", "harmful train", "harmful unseen", "in-context (train / unseen)",
    "jailbreak (train / unseen)", "over-refusal (normal_near)", "ppl ratio",
    "output similarity", "seconds",
)  # fmt: skip

FINETUNE_RECIPES = {
    "smollm2": TrainConfig(epochs=5, lr=2e-4, batch_size=16, warmup_ratio=0.05),
    "tiny": load_recipe("tiny").finetune,
}
UNLEARN_RECIPES = {  # over the model's recipe; min_steps 0: these epochs alone
    "smollm2": {
        "epochs": 4, "lr": 2e-5, "batch_size": 8, "scheduler": "constant", "seed": 0,
        "min_steps": 0,
    },
    "tiny": {
        "epochs": 5, "lr": 5e-4, "batch_size": 8, "precision": "fp32", "seed": 0, "min_steps": 0,
    },
}  # fmt: skip
SIZES = {"tiny": 6}
RUNS = {
    "sku": ("sku", ["select_scale=true"]),
    "sku_keep": ("sku", ["select_scale=true", "preserve_sign=1"]),
    "task_vector": ("task_vector", ["select_scale=true"]),
}
"""Runs that are not a method with its defaults: name → (method, ``--param`` values).

λ of the two negation methods is chosen on validation (the first 50 ``normal`` requests:
the largest λ of the grid keeping their accuracy within 5 points), as SKU and task
arithmetic choose it. At λ = 1 neither moves a target that already complies: its harmful
answers have log-probability −0.001, so stage 1 has almost nothing left to learn (SmolLM2:
sku −0.06, task_vector −0.17 after negation). ``sku_keep`` is SKU with the KL term's sign
flipped (stage 1 keeps the normal answers instead of moving away from them), so that
negating τ spares them and λ may grow."""


def unlearn(name: str, target: Path, bench: Path, out: Path, config: Path) -> dict | None:
    """Run one method (or a ``RUNS`` variant) in a fresh process; its manifest's cost
    (None if the run failed)."""
    method, params = RUNS.get(name, (name, []))
    if not (out / "manifest.json").is_file():
        command = [
            sys.executable, "-m", "obliviate", "unlearn", "--model", str(target),
            "--forget", str(bench / "harmful_train.jsonl"), "--retain", str(bench / "normal.jsonl"),
            "--method", method, "--out", str(out), "--config", str(config), "--overwrite",
            "--allow-weak",  # the table shows how far each method forgot
        ]  # fmt: skip
        for param in params:
            command += ["--param", param]
        if subprocess.run(command).returncode != 0:
            print(f"{name}: unlearning failed (see above); left out of the table")
            return None
    return json.loads((out / "manifest.json").read_text())["cost"]


def evenly(records: list, limit: int | None) -> list:
    """An evenly spaced, deterministic sample of at most ``limit`` records (as eval takes)."""
    if limit is None or len(records) <= limit:
        return records
    return [records[int(i * len(records) / limit)] for i in range(limit)]


def evaluate(
    path: Path, splits: dict[str, list], judge: MarkerJudge, precision: str, cache: Path
) -> tuple[BehaviourOutputs, dict[str, Any], float]:
    """One model's answers, attacked answers' figures and evaluation seconds, read from
    ``cache`` when it was written for this very model (its manifest) and these splits."""
    key = hashlib.sha256((path / "manifest.json").read_bytes())
    key.update(json.dumps({n: [r.id for r in rs] for n, rs in splits.items()}).encode())
    key.update(precision.encode())
    if cache.is_file() and (saved := json.loads(cache.read_text()))["key"] == key.hexdigest():
        print(f"{path.name}: evaluation read from {cache}")
        outputs = BehaviourOutputs(saved["answers"], saved["normal_logprobs"])
        return outputs, saved["attacks"], saved["seconds"]
    started = time.perf_counter()
    loaded = load_model(str(path))
    outputs = run_behaviour(loaded, splits, precision=precision)
    attacks = run_behaviour_attacks(loaded, splits, judge, precision)[0]
    seconds = round(time.perf_counter() - started, 2)
    print(f"evaluated {path.name} in {seconds:.0f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    saved = {"key": key.hexdigest(), "seconds": seconds, "attacks": attacks}
    saved |= {"answers": outputs.answers, "normal_logprobs": outputs.normal_logprobs}
    cache.write_text(json.dumps(saved) + "\n")
    return outputs, attacks, seconds


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _attack(figures: dict[str, Any], name: str) -> str:
    rates = figures.get("attacks", {}).get(name, {}).get("harmful_rate", {})
    return f"{_percent(rates.get('train'))} / {_percent(rates.get('unseen'))}"


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def row(name: str, figures: dict[str, Any], seconds: float | None) -> list[str]:
    utility = figures.get("utility", {})
    return [
        name,
        _percent(figures["harmful_rate"].get("train")),
        _percent(figures["harmful_rate"].get("unseen")),
        _attack(figures, "in_context"),
        _attack(figures, "jailbreak"),
        _percent(figures.get("refusal_rate", {}).get("normal_near")),
        _figure(utility.get("normal_ppl_ratio")),
        _figure(utility.get("output_similarity")),
        "—" if seconds is None else f"{seconds:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default="ga,ga_mismatch,task_vector,npo,sku,sku_keep")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-behaviour"))
    parser.add_argument("--size", type=int, help="restricted items (24; tiny: 6)")
    parser.add_argument("--max-per-split", type=int, help="evaluate at most this many records")
    parser.add_argument(
        "--precision", default="auto", help="evaluation precision (auto: bf16 where native)"
    )
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    args.work.mkdir(parents=True, exist_ok=True)
    recipe = "tiny" if args.model == "tiny" else "smollm2"

    bench = args.work / "bench"
    make_behaviour_benchmark(bench, seed=0, size=args.size or SIZES.get(args.model, 24))
    target = args.work / "target"
    if not (target / "manifest.json").is_file():
        api.finetune(args.model, bench / "full.jsonl", target, FINETUNE_RECIPES[recipe])
    config = args.work / "unlearn.yaml"
    config.write_text(yaml.safe_dump(UNLEARN_RECIPES[recipe]))

    costs = {m: unlearn(m, target, bench, args.work / m, config) for m in methods}
    methods = [m for m in methods if costs[m] is not None]
    splits = {
        name: evenly(load_records(bench / f"{name}.jsonl"), args.max_per_split) for name in SPLITS
    }
    judge = MarkerJudge()
    models = {"target": target} | {m: args.work / m for m in methods}
    outputs, attacked, seconds = {}, {}, {}
    for name, path in models.items():
        outputs[name], attacked[name], seconds[name] = evaluate(
            path, splits, judge, args.precision, args.work / "eval" / name / "outputs.json"
        )

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    runs = []
    for name in models:
        original = outputs["target"] if name != "target" else None
        figures, _ = behaviour_figures(splits, outputs[name], judge, original)
        figures["attacks"] = attacked[name]
        if original is not None:
            figures["original"]["attacks"] = attacked["target"]
        cost = costs.get(name) or {}
        lines.append("| " + " | ".join(row(name, figures, cost.get("seconds"))) + " |")
        if name == "target":
            continue
        run = args.work / "eval" / name
        run.mkdir(parents=True, exist_ok=True)
        document = {
            "command": "eval",
            "kind": "behaviour",
            "model": str(models[name]),
            "target": str(target),
            "method": name,
            "cost": cost | {"eval_seconds": seconds[name]},
            "behaviour": figures,
        }
        (run / "results.json").write_text(json.dumps(document, indent=2) + "\n")
        runs.append(run)
    table = "\n".join(lines)
    (args.work / "behaviour.md").write_text(table + "\n")
    if runs:
        write_report(runs, args.work / "report.html")
    print(table)


if __name__ == "__main__":
    main()
