"""Forgetting what the default model already knew: each method at its recipe, one verdict.

    .venv/bin/python benchmarks/known.py [--methods grad_diff,npo] [--topic jupiter] \
        [--model smollm2] [--work runs/bench-known]

No oracle can exist for knowledge from pretraining, so every figure is set against the
starting model. The script makes the built-in known-knowledge benchmark for ``--model``
(``bench make --kind known``: facts it answers, screened with the tool's own answer
check), unlearns the forget topic with each method at the defaults of ``obliviate
unlearn`` (the recipe of the model's base; each in its own process, ``--allow-weak`` so a
method that does not forget stays in the table), evaluates every model against the
starting model (``eval``: forget, paraphrase, neighbour, retain and general accuracy,
degenerate answers), attacks each with the forced answer prefix and the in-context
attacks (``audit --attacks jailbreak,in_context``), and prints one table with the
verdict of both together (``evaluation/verdict.py``), also written to ``WORK/known.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from obliviate import api
from obliviate.evaluation.verdict import verdict

COLUMNS = (
    "model", "forget", "paraphrase", "forced prefix", "in-context (net)", "neighbours",
    "retain", "general", "degenerate", "verdict", "unlearn s",
)  # fmt: skip


def unlearn(model: str, bench: Path, method: str, out: Path) -> float | None:
    """Unlearn the forget topic with ``method`` in a fresh process; its seconds (None if
    it failed)."""
    if (out / "manifest.json").is_file():
        return json.loads((out / "manifest.json").read_text())["cost"]["seconds"]
    command = [
        sys.executable, "-m", "obliviate", "unlearn", "--model", model,
        "--forget", str(bench / "forget.jsonl"), "--retain", str(bench / "retain.jsonl"),
        "--method", method, "--out", str(out), "--overwrite", "--allow-weak",
    ]  # fmt: skip
    started = time.perf_counter()
    if subprocess.run(command).returncode != 0:
        print(f"{method}: unlearning failed (see above); left out of the table")
        return None
    return time.perf_counter() - started


def measured(model: str, target: str, bench: Path, work: Path, name: str) -> dict[str, Any]:
    """The evaluation of ``model`` against the starting model, with the audit's attacks
    (forced prefix, in context) and the verdict of both."""
    evaluation = api.evaluate(model, work / f"eval-{name}", bench=bench, target=target,
                              overwrite=True)  # fmt: skip
    audit = api.audit(model, work / f"audit-{name}", bench=bench, target=target,
                      attacks="jailbreak,in_context", overwrite=True)  # fmt: skip
    both = evaluation | {"attacks": audit["attacks"], "worst_case": audit.get("worst_case")}
    return {"eval": evaluation, "audit": audit, "verdict": verdict(both)}


def _share(value: Any) -> str:
    return "—" if value is None else f"{value:.0%}"


def _check(result: dict[str, Any], name: str) -> Any:
    """The value of the verdict's check whose name starts with ``name`` (the in-context
    check names its worst variant)."""
    for group in ("forgotten", "collateral"):
        for check in result["verdict"][group]["checks"]:
            if check["name"].startswith(name):
                return check["value"]
    return None


def row(name: str, result: dict[str, Any], seconds: float | None) -> list[str]:
    splits = result["eval"]["splits"]
    pooled = [splits[s].get("degenerate") for s in ("retain", "neighbors", "world") if s in splits]
    pooled = [v for v in pooled if v is not None]
    passed = result["verdict"]["passed"]
    return [
        name,
        _share(splits["forget"]["accuracy"]),
        _share(splits["forget"].get("paraphrase_accuracy")),
        _share(_check(result, "forced-prefix recovery")),
        _share(_check(result, "in-context recovery net of control")),
        _share(splits.get("neighbors", {}).get("accuracy")),
        _share(splits.get("retain", {}).get("accuracy")),
        _share(splits.get("world", {}).get("accuracy")),
        _share(sum(pooled) / len(pooled) if pooled else None),
        "pass" if passed else ("fail" if passed is False else "—"),
        "—" if seconds is None else f"{seconds:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--methods", default="grad_diff,npo,simnpo,rmu,idk")
    parser.add_argument("--topic", default=None)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-known"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bench = args.work / "bench"
    if not (bench / "bench.json").is_file():
        api.make_known_bench(bench, topic=args.topic, model=args.model)
    print(f"benchmark: {json.loads((bench / 'bench.json').read_text())['counts']}")
    results = {"base": (measured(args.model, args.model, bench, args.work, "base"), None)}
    for method in [m for m in args.methods.split(",") if m]:
        seconds = unlearn(args.model, bench, method, args.work / method)
        if seconds is not None:
            result = measured(str(args.work / method), args.model, bench, args.work, method)
            results[method] = (result, seconds)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(n, r, s)) + " |" for n, (r, s) in results.items()]
    lines += ["", *(f"- {n}: {r['verdict']['line']}" for n, (r, _) in results.items())]
    table = "\n".join(lines)
    (args.work / "known.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
