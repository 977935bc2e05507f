"""Every attack on the methods table's unlearned models, against the oracle: one table.

    .venv/bin/python benchmarks/audit.py [--methods npo,grad_diff] \
        [--from runs/bench-methods] [--work runs/bench-audit] [--budget small] [--attacks all] \
        [--precision fp32] [--relearn-precision auto] [--no-cache]

Takes the models ``benchmarks/methods.py`` made (``FROM/<method>/model``, with
``FROM/demo/{target,oracle,bench}``) and runs ``obliviate audit --split forget10`` on
each in its own process (skipped when ``WORK/<method>/results.json`` exists), so the
seconds and peak memory in the table are that audit's own. Prints, and writes to
``WORK/audit.md``:

- one row per attack variant: forget accuracy of the target and the oracle under it (in
  brackets the target's plain accuracy on the variant's records where ``--budget small``
  only calibrated it),
  each method's accuracy (its recovery of the gap to the target) and uplift over the
  oracle; tamper's cells are its curve (8 / 16 / 64 steps);
- one line per method: the worst uplift over the oracle and the worst recovery across
  every attack, with the attack that reached it, the audit's seconds and peak MB, and
  which models' results were read back from the audit cache (the oracle and target are
  attacked by the first audit; the later ones reuse them unless ``--no-cache``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def audit(
    method: str,
    source: Path,
    out: Path,
    budget: str,
    attacks: str,
    precision: str,
    relearn_precision: str,
    use_cache: bool = True,
) -> dict[str, Any]:
    """``obliviate audit`` of one method's model in a fresh process; its results.json."""
    if not (out / "results.json").is_file():
        demo = source / "demo"
        command = [
            sys.executable, "-m", "obliviate", "audit", "--model", str(source / method / "model"),
            "--oracle", str(demo / "oracle"), "--target", str(demo / "target"),
            "--bench", str(demo / "bench"), "--split", "forget10", "--attacks", attacks,
            "--budget", budget, "--precision", precision,
            "--relearn-precision", relearn_precision, "--out", str(out), "--overwrite",
        ]  # fmt: skip
        if not use_cache:
            command.append("--no-cache")
        if subprocess.run(command).returncode != 0:
            sys.exit(f"the audit of {method} failed (see above)")
    return json.loads((out / "results.json").read_text())


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:+.0f}%".replace("+0%", "0%")


def _accuracy(role: dict[str, Any]) -> str:
    """A role's forget accuracy after the attack, or its curve where it has one; in
    brackets its plain accuracy where it was not attacked (the small budget's target)."""
    curve = role.get("curve")
    if curve:
        return " / ".join(_percent(v) for v in curve.values())
    if role["after"] is None:
        return f"[{_percent(role['before']['accuracy'])}]"
    return _percent(role["after"]["accuracy"])


def table(documents: dict[str, dict[str, Any]]) -> str:
    """The Markdown table and the worst-case lines."""
    methods = list(documents)
    columns = ["attack", "variant", "target", "oracle"]
    columns += [f"{m} (recovery)" for m in methods] + [f"uplift {m}" for m in methods]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    first = documents[methods[0]]
    for attack, entry in first["attacks"].items():
        for variant, cells in entry["variants"].items():
            row = [attack, variant, _accuracy(cells["target"]), _accuracy(cells["oracle"])]
            per_method = [documents[m]["attacks"][attack]["variants"][variant] for m in methods]
            row += [
                f"{_accuracy(v['model'])} ({_percent(v['model']['recovery'])})" for v in per_method
            ]
            row += [_signed(v["uplift_vs_oracle"]) for v in per_method]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for method, document in documents.items():
        worst = document["audit"]["worst_uplift_vs_oracle"]
        recovery = document["audit"]["worst_recovery"]
        cost = document["cost"]
        lines.append(
            f"- {method}: worst uplift over the oracle {_signed(worst['value'])} "
            f"({worst['attack']}, {worst['variant']}); worst recovery "
            f"{_percent(recovery['value'])} ({recovery['attack']}, {recovery['variant']}); "
            f"{cost['seconds'] / 60:.1f} min ("
            + ", ".join(
                f"{role} {sum(seconds.values()):.0f} s"
                for role, seconds in cost.get("role_seconds", {}).items()
            )
            + f"), peak {cost['peak_rss_mb']:.0f} MB; slowest attacks: "
            + ", ".join(
                f"{name} {seconds:.0f} s"
                for name, seconds in sorted(
                    cost["attack_seconds"].items(), key=lambda item: -item[1]
                )[:3]
            )
            + "".join(
                f"; {role}'s {len(names)} attacks read back from the cache"
                for role, names in cost.get("cached", {}).items()
            )
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="npo,grad_diff")
    parser.add_argument("--from", dest="source", type=Path, default=Path("runs/bench-methods"))
    parser.add_argument("--work", type=Path, default=Path("runs/bench-audit"))
    parser.add_argument("--budget", default="small", choices=("small", "full"))
    parser.add_argument("--attacks", default="all")
    parser.add_argument(
        "--precision", default="fp32", help="fp32 (obliviate audit's default) or auto (bf16)"
    )
    parser.add_argument(
        "--relearn-precision",
        default="auto",
        help="the attacker's fine-tunes: auto (obliviate audit's default, bf16 where native) "
        "or fp32",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="attack the oracle and target in every audit (default: the first audit's are "
        "read back by the next ones, as obliviate audit does)",
    )
    args = parser.parse_args()
    documents = {
        method: audit(
            method,
            args.source,
            args.work / method,
            args.budget,
            args.attacks,
            args.precision,
            args.relearn_precision,
            use_cache=not args.no_cache,
        )
        for method in args.methods.split(",")
        if method
    }
    text = table(documents)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "audit.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
