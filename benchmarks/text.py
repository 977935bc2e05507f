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
from pathlib import Path

import yaml
from methods import demo_schedule, unlearn  # one process per method, as methods.py

from obliviate import api
from obliviate.evaluation.suite import evaluate_models, results_document

COLUMNS = (
    "model", "verbmem", "knowmem forget", "knowmem retain", "privleak",
    "no verbmem", "no knowmem", "no privleak", "utility kept", "seconds",
)  # fmt: skip


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
    config = args.work / "unlearn.yaml"
    config.write_text(yaml.safe_dump(demo_schedule(args.model)))

    bench = demo / "bench"
    forget, retain = bench / "forget10.text.jsonl", bench / "retain90.text.jsonl"
    costs = {m: unlearn(m, demo / "target", forget, retain, args.work / m, config) for m in methods}
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
