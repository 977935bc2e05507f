"""MUSE's scale criterion: one method on forget sets of growing size (the text scenario).

    .venv/bin/python benchmarks/text_scale.py [--model smollm2] [--method npo] \
        [--sizes forget01,forget05,forget10,forget25] [--work runs/bench-text-scale] \
        [--demo runs/bench-text/demo]

The target is the demo's text scenario (``obliviate demo --text``: fine-tuned on every
person's biography; made in ``WORK/demo`` unless ``--demo`` names one already made, and
cached), its benchmark made again with ``forget25`` (same seed and people: the same
people and passages, checked). For each size the method unlearns that split's passages
from the target in its own process (``obliviate unlearn``, the demo's unlearning
schedule, the split's complement as retain data), so its wall time is its own; each size
has its own oracle, the target's fine-tune redone without that split's people
(``obliviate.workflows.sequence.retrained_oracle``, cached: forget10's is the demo's). Every
unlearned model is evaluated against its oracle and the target (at most 100 records per
split) with MUSE's figures. Prints one table (size → VerbMem, KnowMem on forget and
retain, PrivLeak, the four verdicts, seconds) and writes ``WORK/text_scale.md``,
``text_scale.json`` and ``text_scale.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml
from methods import demo_schedule  # the demo's schedule, each method's lr from the recipe

from obliviate import api
from obliviate.data.bench import make_benchmark
from obliviate.data.loaders import load_records
from obliviate.evaluation.suite import evaluate_models, results_document
from obliviate.report.growth import Panel, Series, growth_plot
from obliviate.report.sequence import markdown_table
from obliviate.workflows.sequence import headline, retrained_oracle, target_recipe

VERDICTS = ("no_verbmem", "no_knowmem", "no_privleak", "utility_preserved")
COLUMNS = (
    "size", "people", "verbmem", "verbmem oracle", "knowmem forget", "knowmem forget oracle",
    "knowmem retain", "privleak", "no verbmem", "no knowmem", "no privleak", "utility kept",
    "seconds",
)  # fmt: skip


def prepare(model: str, work: Path, demo: Path | None) -> tuple[Path, Path, Path]:
    """The demo's text target, a benchmark with forget25 of the same people, and the demo's
    unlearning schedule as a config file: (target, bench, config)."""
    work.mkdir(parents=True, exist_ok=True)
    demo = demo or work / "demo"
    if not (demo / "results.json").is_file():
        api.demo(out=demo, model=model, text=True)
    made = yaml.safe_load((demo / "config.yaml").read_text())
    if not made.get("text") or made["model"] != model:
        sys.exit(f"{demo} is not the demo's text scenario on {model} (obliviate demo --text)")
    bench = work / "bench"
    make_benchmark(bench, seed=made["seed"], people=made["people"], forget25=True)
    for name in ("full.text.jsonl", "full.jsonl"):
        if (bench / name).read_bytes() != (demo / "bench" / name).read_bytes():
            sys.exit(f"{bench / name} differs from the demo's; make both with this version")
    config = work / "unlearn.yaml"
    config.write_text(yaml.safe_dump(demo_schedule(model)))
    return demo / "target", bench, config


def unlearn(method: str, target: Path, bench: Path, split: str, out: Path, config: Path) -> float:
    """Unlearn ``split``'s passages in a fresh process; the run's seconds (from its manifest)."""
    if not (out / "manifest.json").is_file():
        command = [
            sys.executable, "-m", "obliviate", "unlearn", "--model", str(target),
            "--forget", str(bench / f"{split}.text.jsonl"),
            "--retain", str(bench / f"{api.retain_split_for(split)}.text.jsonl"),
            "--method", method, "--out", str(out), "--config", str(config), "--overwrite",
            "--allow-weak",  # the table shows how far each size forgot
        ]  # fmt: skip
        if subprocess.run(command).returncode != 0:
            sys.exit(f"{method} on {split}: unlearning failed (see above)")
    return json.loads((out / "manifest.json").read_text())["cost"]["seconds"]


def _figure(value: float | None, style: str = ".3f") -> str:
    return "—" if value is None else format(value, style)


def _verdict(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "—"}[value]


def scale_plot(method: str, rows: list[dict]) -> bytes:
    """The four figures against the size of the forget set (oracle and target dotted)."""
    positions = [
        f"{r['size']}\n({r['people']} {'person' if r['people'] == 1 else 'people'})" for r in rows
    ]

    def values(role: str, key: str) -> list[float | None]:
        return [r[role][key] for r in rows]

    figures = [
        Series("verbmem", values("model", "verbmem"), 0),
        Series("verbmem (oracle)", values("oracle", "verbmem"), 0, "oracle"),
        Series("knowmem forget", values("model", "knowmem_forget"), 1),
        Series("knowmem forget (oracle)", values("oracle", "knowmem_forget"), 1, "oracle"),
        Series("knowmem retain", values("model", "knowmem_retain"), 2),
        Series("knowmem retain (target)", values("target", "knowmem_retain"), 2, "oracle"),
    ]
    leak = [Series("privleak", values("model", "privleak"), 0)]
    panels = [
        Panel("figure", figures),
        Panel("privleak (0 is ideal)", leak, (-1.05, 1.05), (-0.05, 0.05), "within ±5 %"),
    ]
    caption = (
        f"{method} on forget sets of growing size: the unlearned model solid, its oracle "
        "(and for retain, the target) dotted."
    )
    return growth_plot(positions, panels, f"{method}: larger requests", "forget set", caption).png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--method", default="npo")
    parser.add_argument("--sizes", default="forget01,forget05,forget10,forget25")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-text-scale"))
    parser.add_argument("--demo", type=Path, help="a demo --text run to reuse (its target)")
    parser.add_argument("--max-per-split", type=int, default=100)
    parser.add_argument(
        "--precision", default="auto", help="evaluation precision (auto: bf16 where native)"
    )
    args = parser.parse_args()
    target, bench, config = prepare(args.model, args.work, args.demo)
    recipe = target_recipe(target)
    rows = []
    for split in [s for s in args.sizes.split(",") if s]:
        removed = frozenset(r.person for r in load_records(bench / f"{split}.text.jsonl"))
        oracle = retrained_oracle(recipe, removed, args.work / f"oracle-{split}").out
        out = args.work / f"{args.method}-{split}"
        seconds = unlearn(args.method, target, bench, split, out, config)
        evaluations = evaluate_models(
            {"model": out, "oracle": oracle, "target": target},
            api.bench_splits(bench, split, args.max_per_split),
            precision=args.precision,
            passages=api.bench_passages(bench, split, args.max_per_split),
        )
        document = results_document(evaluations, "model", split)
        reference = document["reference"]
        rows.append(
            {
                "size": split,
                "people": len(removed),
                "model": headline(document),
                "oracle": headline(reference["oracle"]),
                "target": headline(reference["target"]),
                "seconds": seconds,
            }
        )
    lines = []
    for row in rows:
        model, oracle = row["model"], row["oracle"]
        lines.append(
            [
                row["size"],
                str(row["people"]),
                _figure(model["verbmem"]),
                _figure(oracle["verbmem"]),
                _figure(model["knowmem_forget"]),
                _figure(oracle["knowmem_forget"]),
                _figure(model["knowmem_retain"]),
                _figure(model["privleak"], "+.3f"),
                *(_verdict((model["verdicts"] or {}).get(k)) for k in VERDICTS),
                f"{row['seconds']:.0f}",
            ]
        )
    table = markdown_table(list(COLUMNS), lines)
    (args.work / "text_scale.md").write_text(table + "\n")
    (args.work / "text_scale.json").write_text(
        json.dumps({"model": args.model, "method": args.method, "sizes": rows}, indent=2) + "\n"
    )
    (args.work / "text_scale.png").write_bytes(scale_plot(args.method, rows))
    print(table)
    print(f"plot: {args.work / 'text_scale.png'}")


if __name__ == "__main__":
    main()
