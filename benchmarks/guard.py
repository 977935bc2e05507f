"""Guards on the default model: leak rate under attack and false refusals, side by side.

    .venv/bin/python benchmarks/guard.py [--work runs/bench-methods] \
        [--guards prefix,icul,input_filter,output_filter,all] \
        [--unlearned grad_diff] [--unlearned-guards none,input_filter+output_filter,all]

Uses the target and the unlearned model of ``benchmarks/methods.py`` (run it first). Each
row is one model, bare or behind one guard, attacked with the prompt-side attacks
(in-context reintroduction, jailbreak templates, paraphrased, multi-hop and
cross-lingual questions) on forget10; a row's leak rate under an attack is the fraction
of forget questions whose answer still contains the fact, at the attack's worst
variant. False refusals are measured on retain90 (its first 100 records), neighbors and
world. A guard list is comma-separated; ``+`` joins components into one guard, ``none``
is the bare model and an empty list skips those rows. Prints one Markdown table, also
written to ``WORK/guard.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from obliviate import api
from obliviate.attacks import AuditContext, run_audit
from obliviate.attacks.audit import leak_rates, refusals
from obliviate.attacks.base import Asker
from obliviate.models.loader import load_model

ATTACKS = ("in_context", "jailbreak", "paraphrase", "multihop", "crosslingual")
RETAIN_SAMPLE = 100
COLUMNS = (
    "model", "guard", "plain", *ATTACKS, "worst leak",
    "refused retain", "refused neighbors", "refused world", "added ms/question",
)  # fmt: skip


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def row(model_name: str, spec: str, guard_spec: str | None, splits: dict) -> list[str]:
    """One model behind one guard (or bare): leak per attack and false refusals."""
    utility = {
        "retain": splits["retain"][:RETAIN_SAMPLE],
        "neighbors": splits["neighbors"],
        "world": splits["world"],
    }
    guard = api.build_guard(guard_spec, splits) if guard_spec else None
    ctx = AuditContext(forget=splits["forget"], holdout=[], utility=utility, precision="auto")
    document = run_audit({"model": spec}, ctx, list(ATTACKS), guard)
    rates = leak_rates(document)
    leaks = {
        attack: max((v for k, v in rates.items() if k.split(".")[0] == attack), default=None)
        for attack in ("plain", *ATTACKS)
    }
    if guard is not None:
        refused = document["guard"]["false_refusal_rate"]
        added = f"{document['guard']['added_latency_ms']:.0f}"
    else:
        refused, _ = refusals(Asker(load_model(spec), "auto"), utility)
        added = "0"
    worst = max(v for v in leaks.values() if v is not None)
    return [
        model_name, guard_spec or "none", _percent(leaks["plain"]),
        *(_percent(leaks.get(a)) for a in ATTACKS), _percent(worst),
        *(_percent(refused[s]) for s in ("retain", "neighbors", "world")), added,
    ]  # fmt: skip


def guard_specs(listed: str) -> list[str | None]:
    """``"none,input_filter+output_filter"`` → ``[None, "input_filter,output_filter"]``."""
    names = [name.strip() for name in listed.split(",") if name.strip()]
    return [None if name == "none" else name.replace("+", ",") for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-methods"))
    parser.add_argument("--guards", default="none,prefix,icul,input_filter,output_filter,all")
    parser.add_argument("--unlearned", default="grad_diff")
    parser.add_argument("--unlearned-guards", default="none,input_filter+output_filter,all")
    args = parser.parse_args()
    demo = args.work / "demo"
    splits = api.evaluation_splits(demo / "bench", "forget10")
    plan = [("target", demo / "target", g) for g in guard_specs(args.guards)]
    unlearned = args.work / args.unlearned / "model"
    plan += [(args.unlearned, unlearned, g) for g in guard_specs(args.unlearned_guards)]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, spec, guard in plan:
        started = time.perf_counter()
        cells = row(name, str(spec), guard, splits)
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], f"({time.perf_counter() - started:.0f} s)", flush=True)
    table = "\n".join(lines)
    (args.work / "guard.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
