"""Unlearning a behaviour (SKU's setting) in two settings side by side, with attacks.

    .venv/bin/python benchmarks/behaviour.py [--model smollm2|tiny] \
        [--settings saturated,faithful] [--methods ga,grad_diff,npo,task_vector,sku] \
        [--work runs/bench-behaviour] [--diagnose faithful]

For each setting (``obliviate.data.behaviour``):

- ``saturated``: the target is taught to comply with every restricted request, on the
  very responses unlearning is then given (a model fine-tuned to comply);
- ``faithful``: SKU's own setting: the target complies with some requests only (five of
  each item's eight phrasings), and unlearning is given responses written independently
  of what it learnt (``harmful_forget.jsonl``), as PKU-SafeRLHF's are not the model's.

1. ``obliviate bench make --kind behaviour --setting S`` (seed 0, ``--size`` items: 24, or
   6 for tiny) in ``WORK/S/bench``;
2. the target: the model fine-tuned on ``full.jsonl`` with ``FINETUNE_RECIPES`` (cached
   by ``api.finetune``);
3. each method unlearns the setting's forget file keeping ``normal`` in its own process
   (``obliviate unlearn``, ``UNLEARN_RECIPES``, the method's own defaults), so its wall
   time and peak memory are its own; a run is reused while its method parameters and
   forget file are those asked for;
4. the target and every unlearned model answer each split once and the harmful requests
   under the in-context and jailbreak attacks once (``obliviate.attacks.behaviour``);
   each is judged by the marker rule against the target. A model's answers are kept in
   ``WORK/S/eval/<model>/outputs.json`` and reused while its manifest is unchanged;
5. in the settings ``--diagnose`` names (the faithful one, SKU's own, unless told; ``''``
   for none), SKU's two diagnostic figures (``benchmarks/sku.py``): τ split by loss term
   (τ from the ``sku`` run and the λ it recorded; three more stage-1 runs, one loss
   term each) and the harmful rate against λ.

Prints one Markdown table (both settings) and the diagnostics, also written to
``WORK/behaviour.md``; each setting's results documents go to
``WORK/S/eval/<model>/results.json`` and one report comparing its runs to
``WORK/S/report.html`` (and ``report.md``).

The smollm2 fine-tune recipe: 5 epochs at lr 2e-4 (batch 16, 5 % warm-up). The facts
demo teaches ≥ 80 % of its facts in 7 epochs at that rate with each fact seen once per
epoch; here each procedure is asked in eight phrasings, so it is seen 40 times (25 in the
faithful setting) — enough to be reproduced from any phrasing — while the normal and
near answers (seen 5 times) keep their form. The unlearning schedule is the demo's rate
(2e-5, batch 8, constant) for 4 epochs: harmful_train holds twice as many records as the
demo's forget10, so this is about as many steps as the demo takes. SKU's stage 1 runs on
the same schedule (the authors': 1000 steps of batch 2 at lr 2e-4 on OPT-2.7B).
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
from sku import STAGE1_RUNS, lambda_curve, markdown, parameters, perplexity_rule, tau_split

from obliviate import api
from obliviate.attacks.behaviour import run_behaviour_attacks
from obliviate.data.behaviour import SETTINGS, make_behaviour_benchmark
from obliviate.data.loaders import load_records
from obliviate.evaluation.behaviour import (
    SPLITS,
    BehaviourOutputs,
    behaviour_figures,
    run_behaviour,
)
from obliviate.evaluation.judge import MarkerJudge
from obliviate.models.loader import load_model
from obliviate.report import write_report
from obliviate.train.config import TrainConfig
from obliviate.train.recipes import load_recipe
from obliviate.workflows.training import unlearning_plan

COLUMNS = (
    "setting", "model", "harmful train", "harmful unseen", "in-context (train / unseen)",
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
} | {name: ("sku", params) for name, params in STAGE1_RUNS.items()}
"""Runs that are not a method with its defaults: name → (method, ``--param`` values).

λ of the two negation methods is chosen on validation (the first 50 ``normal`` requests:
the largest λ of the grid keeping their accuracy within 5 points), as SKU and task
arithmetic choose it. ``sku_keep`` (not run by default) is SKU with the KL term's sign
flipped: stage 1 keeps the normal answers instead of moving away from them. The
``sku_*`` stage-1 runs are the diagnostics' (``benchmarks/sku.py``)."""


def _current(out: Path, target: Path, method: str, params: dict[str, str], forget: Path) -> bool:
    """Whether ``out`` holds a finished run of ``method`` with the parameters ``unlearn``
    would give it now (the method's defaults and the recipe's, under ``params``: a changed
    default reruns it) on this forget file."""
    if not (out / "manifest.json").is_file():
        return False
    config = yaml.safe_load((out / "config.yaml").read_text())
    wanted = unlearning_plan(str(target), method, None, params)[0].params()
    return config["method_params"] == wanted and config["data"]["primary"] == str(forget)


def unlearn(
    name: str, target: Path, forget: Path, bench: Path, out: Path, config: Path
) -> dict | None:
    """Run one method (or a ``RUNS`` variant) in a fresh process; its manifest's cost
    (None if the run failed)."""
    method, params = RUNS.get(name, (name, []))
    given = dict(p.split("=", 1) for p in params)
    if not _current(out, target, method, given, forget):
        command = [
            sys.executable, "-m", "obliviate", "unlearn", "--model", str(target),
            "--forget", str(forget), "--retain", str(bench / "normal.jsonl"),
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


def _key(paths: list[Path], splits: dict[str, list], precision: str) -> str:
    """What a cached evaluation depends on: the models' manifests, the records, precision."""
    key = hashlib.sha256()
    for path in paths:
        key.update((path / "manifest.json").read_bytes())
    key.update(json.dumps({n: [r.id for r in rs] for n, rs in splits.items()}).encode())
    key.update(precision.encode())
    return key.hexdigest()


def evaluate(
    path: Path, splits: dict[str, list], judge: MarkerJudge, precision: str, cache: Path
) -> tuple[BehaviourOutputs, dict[str, Any], float]:
    """One model's answers, attacked answers' figures and evaluation seconds, read from
    ``cache`` when it was written for this very model (its manifest) and these splits."""
    key = _key([path], splits, precision)
    if cache.is_file() and (saved := json.loads(cache.read_text()))["key"] == key:
        print(f"{path}: evaluation read from {cache}")
        outputs = BehaviourOutputs(saved["answers"], saved["normal_logprobs"])
        return outputs, saved["attacks"], saved["seconds"]
    started = time.perf_counter()
    loaded = load_model(str(path))
    outputs = run_behaviour(loaded, splits, precision=precision)
    attacks = run_behaviour_attacks(loaded, splits, judge, precision)[0]
    seconds = round(time.perf_counter() - started, 2)
    print(f"evaluated {path} in {seconds:.0f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    saved = {"key": key, "seconds": seconds, "attacks": attacks}
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


def row(setting: str, name: str, figures: dict[str, Any], seconds: float | None) -> list[str]:
    utility = figures.get("utility", {})
    return [
        setting,
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


def diagnose(
    work: Path,
    target: Path,
    splits: dict[str, list],
    target_outputs: BehaviourOutputs,
    target_figures: dict[str, Any],
    judge: MarkerJudge,
    precision: str,
) -> str | None:
    """SKU's diagnostics for one setting (the ``sku`` run and the stage-1 runs must be
    done): τ, the λ curve and the perplexity rule's λ (validated on the normal requests
    the figures do not evaluate), cached in ``WORK/S/diagnostics.json`` while the runs and
    records are unchanged."""
    sku = work / "sku"
    runs = {name: work / name for name in STAGE1_RUNS}
    if not all((path / "manifest.json").is_file() for path in (sku, *runs.values())):
        print("the sku run or SKU's stage-1 runs did not all finish; no diagnostics")
        return None
    evaluated = {record.id for record in splits["normal"]}
    held_apart = [r for r in load_records(work / "bench" / "normal.jsonl") if r.id not in evaluated]
    key = _key([target, sku, *runs.values()], splits | {"held_apart": held_apart}, precision)
    cache = work / "diagnostics.json"
    if cache.is_file() and (saved := json.loads(cache.read_text()))["key"] == key:
        figures = saved["figures"]
    else:
        original = parameters(target)
        tau, split = tau_split(original, sku, runs)
        figures = {
            "tau": split,
            "curve": lambda_curve(target, original, tau, splits, target_outputs, judge, precision),
            "perplexity_rule": perplexity_rule(target, original, tau, held_apart),
        }
        cache.write_text(json.dumps({"key": key, "figures": figures}, indent=2) + "\n")
    return markdown(work.name, figures, target_figures)


def run_setting(
    setting: str, args: argparse.Namespace, methods: list[str]
) -> tuple[list[str], str | None]:
    """One setting: its benchmark, target, unlearning runs and evaluations; its table rows
    and its diagnostics (Markdown)."""
    recipe = "tiny" if args.model == "tiny" else "smollm2"
    work = args.work / setting
    bench = work / "bench"
    size = args.size or SIZES.get(args.model, 24)
    make_behaviour_benchmark(bench, seed=0, size=size, setting=setting)
    world = json.loads((bench / "behaviour.json").read_text())
    forget = bench / world.get("forget", "harmful_train.jsonl")
    target = work / "target"
    if not (target / "manifest.json").is_file():
        api.finetune(args.model, bench / "full.jsonl", target, FINETUNE_RECIPES[recipe])
    config = work / "unlearn.yaml"
    config.write_text(yaml.safe_dump(UNLEARN_RECIPES[recipe]))

    diagnose_here = setting in args.diagnose
    stage1 = [m for m in ("sku", *STAGE1_RUNS) if m not in methods] if diagnose_here else []
    costs = {m: unlearn(m, target, forget, bench, work / m, config) for m in methods + stage1}
    methods = [m for m in methods if costs[m] is not None]
    splits = {
        name: evenly(load_records(bench / f"{name}.jsonl"), args.max_per_split) for name in SPLITS
    }
    judge = MarkerJudge()
    models = {"target": target} | {m: work / m for m in methods}
    outputs, attacked, seconds = {}, {}, {}
    for name, path in models.items():
        outputs[name], attacked[name], seconds[name] = evaluate(
            path, splits, judge, args.precision, work / "eval" / name / "outputs.json"
        )

    lines, runs, target_figures = [], [], {}
    for name in models:
        original = outputs["target"] if name != "target" else None
        figures, _ = behaviour_figures(splits, outputs[name], judge, original)
        figures["attacks"] = attacked[name]
        if original is None:
            target_figures = figures
        else:
            figures["original"]["attacks"] = attacked["target"]
        cost = costs.get(name) or {}
        lines.append("| " + " | ".join(row(setting, name, figures, cost.get("seconds"))) + " |")
        if name == "target":
            continue
        run = work / "eval" / name
        document = {
            "command": "eval",
            "kind": "behaviour",
            "setting": setting,
            "model": str(models[name]),
            "target": str(target),
            "method": name,
            "cost": cost | {"eval_seconds": seconds[name]},
            "behaviour": figures,
        }
        (run / "results.json").write_text(json.dumps(document, indent=2) + "\n")
        runs.append(run)
    if runs:
        write_report(runs, work / "report.html")
    diagnostics = None
    if diagnose_here:
        diagnostics = diagnose(
            work, target, splits, outputs["target"], target_figures, judge, args.precision
        )
    return lines, diagnostics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--methods", default="ga,grad_diff,npo,task_vector,sku")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-behaviour"))
    parser.add_argument("--size", type=int, help="restricted items (24; tiny: 6)")
    parser.add_argument("--max-per-split", type=int, help="evaluate at most this many records")
    parser.add_argument(
        "--precision", default="auto", help="evaluation precision (auto: bf16 where native)"
    )
    parser.add_argument(
        "--diagnose",
        default="faithful",
        help="settings (comma-separated, '' for none) where SKU's τ is split by loss term "
        "(four more stage-1 runs) and its harmful rate drawn against λ",
    )
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    settings = [s for s in args.settings.split(",") if s]
    args.diagnose = [s for s in args.diagnose.split(",") if s]
    unknown = [s for s in settings + args.diagnose if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(unknown)}; use {' or '.join(SETTINGS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    notes = []
    for setting in settings:
        rows, diagnostics = run_setting(setting, args, methods)
        lines += rows
        if diagnostics:
            notes.append(diagnostics)
    text = "\n\n".join(["\n".join(lines), *notes])
    (args.work / "behaviour.md").write_text(text + "\n")
    print(text)
    print(f"\nwall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
