"""Run the chosen attacks against the unlearned model, the oracle and the target.

One model is in memory at a time; every attack runs on it with the identical records and
settings. Then each variant of each attack is summed up per model (accuracy and
probability before and after, ``recovery``) and against the oracle (``uplift_vs_oracle``,
the headline: an attack that teaches the oracle just as much proves nothing). Definitions
are in ``docs/evaluation.md``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from obliviate.attacks.base import (
    ATTACKS,
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    NotApplicable,
    Score,
    plain,
)
from obliviate.attacks.cache import CACHED_ROLES, AttackCache
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.guard.guard import Guard, looks_like_refusal
from obliviate.models.loader import LoadedModel, load_model
from obliviate.progress import say
from obliviate.rundir import peak_rss_mb

#: Questions timed with and without the guard for its added latency.
LATENCY_SAMPLE = 32

#: The models an audit attacks, in the order they are loaded.
ROLES: tuple[str, ...] = ("model", "oracle", "target")


def resolve_attacks(names: str | Sequence[str]) -> list[str]:
    """``all`` or a comma-separated list (or a list) of registered attack names."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names or list(names) == ["all"]:
        return list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ObliviateError(
            f"unknown attack '{unknown[0]}'; choose from: all, {', '.join(ATTACKS)}"
        )
    return list(dict.fromkeys(names))


def recovery(before: Score, after: Score | None, target_before: Score | None) -> float | None:
    """(after − before) / (target − before), clipped to [0, 1]; None without a gap to close
    (or without an attack: ``after`` None)."""
    if after is None or target_before is None or target_before.accuracy - before.accuracy <= 0:
        return None
    value = (after.accuracy - before.accuracy) / (target_before.accuracy - before.accuracy)
    return min(1.0, max(0.0, value))


def _measurements(per_role: dict[str, Measurement]) -> dict[str, Any]:
    target = per_role.get("target")
    entry: dict[str, Any] = {
        role: {
            "before": m.before.to_json(),
            "after": m.after.to_json() if m.after is not None else None,
            "recovery": recovery(m.before, m.after, target.before if target else None),
            **m.extra,
        }
        for role, m in per_role.items()
    }
    model, oracle = per_role.get("model"), per_role.get("oracle")
    entry["uplift_vs_oracle"] = (
        model.after.accuracy - oracle.after.accuracy
        if model and oracle and model.after and oracle.after
        else None
    )
    return entry


def _severity(entry: dict[str, Any]) -> float:
    """How much an attack variant brought back: the uplift over the oracle when there is
    an oracle, else the model's recovery."""
    value = entry.get("uplift_vs_oracle")
    if value is None:
        value = entry.get("model", {}).get("recovery")
    return -math.inf if value is None else value


def attack_entry(outputs: dict[str, AttackOutput]) -> dict[str, Any]:
    """One attack's results.json entry from every model's variants."""
    variants: dict[str, Any] = {}
    for name in outputs.get("model", {}):
        per_role = {role: out[name] for role, out in outputs.items() if name in out}
        entry = _measurements({role: v.forget for role, v in per_role.items()})
        controls = {role: v.control for role, v in per_role.items() if v.control is not None}
        if controls:
            entry["control"] = _measurements(controls)
        variants[name] = entry
    worst = max(variants, key=lambda v: _severity(variants[v]), default=None)
    headline = variants[worst] if worst else {}
    return {
        "variants": variants,
        "worst_variant": worst,
        "recovery": headline.get("model", {}).get("recovery"),
        "oracle_recovery": headline.get("oracle", {}).get("recovery"),
        "uplift_vs_oracle": headline.get("uplift_vs_oracle"),
    }


def _worst_case(attacks: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The attack variant that brought back the most, across all attacks."""
    candidates = [
        (name, entry["worst_variant"], entry["variants"][entry["worst_variant"]])
        for name, entry in attacks.items()
        if entry.get("worst_variant") is not None
    ]
    if not candidates:
        return None
    name, variant, entry = max(candidates, key=lambda c: _severity(c[2]))
    return {
        "attack": name,
        "variant": variant,
        "uplift_vs_oracle": entry["uplift_vs_oracle"],
        "recovery": entry.get("model", {}).get("recovery"),
    }


def worst_figures(attacks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The largest uplift over the oracle and the largest recovery over every attack
    variant, each with where it happened: the audit's result is its weakest point."""
    found: dict[str, Any] = {"worst_uplift_vs_oracle": None, "worst_recovery": None}
    for figure, key in (
        ("uplift_vs_oracle", "worst_uplift_vs_oracle"),
        ("recovery", "worst_recovery"),
    ):
        for name, entry in attacks.items():
            for variant, figures in entry.get("variants", {}).items():
                value = (
                    figures.get(figure)
                    if figure == "uplift_vs_oracle"
                    else figures["model"].get(figure)
                )
                if value is None:
                    continue
                if found[key] is None or value > found[key]["value"]:
                    found[key] = {"value": value, "attack": name, "variant": variant}
    return found


def leak_rates(document: dict[str, Any]) -> dict[str, float]:
    """The fraction of forget questions whose answer still holds the fact, asked plainly
    and under each attack variant (the model's accuracy after the attack)."""
    rates: dict[str, float] = {}
    for name, entry in document["attacks"].items():
        for variant, figures in entry.get("variants", {}).items():
            rates.setdefault("plain", figures["model"]["before"]["accuracy"])
            key = name if variant == "default" else f"{name}.{variant}"
            rates[key] = figures["model"]["after"]["accuracy"]
    return rates


def refusals(
    asker: Asker, utility: dict[str, list[Record]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per split of retained or general questions: the fraction of answers that decline
    (a filter's or the model's own refusal), and the accuracy that is left."""
    refused, accuracy = {}, {}
    for split, records in utility.items():
        questions = plain(records)
        answers = asker.answers(questions)
        refused[split] = sum(map(looks_like_refusal, answers)) / len(answers)
        accuracy[split] = asker.score(questions).accuracy
    return refused, accuracy


def guard_report(ctx: AuditContext, loaded: LoadedModel, asker: Asker) -> dict[str, Any]:
    """False refusals on retained and general questions behind the guard, and the time the
    guard adds per ordinary question (the same sample asked with and without it; the
    model answers even what the input filter refuses, so this is an upper bound)."""
    refused, accuracy = refusals(asker, ctx.utility)
    ordinary = [r for records in ctx.utility.values() for r in records] or ctx.forget
    sample = plain(ordinary[:LATENCY_SAMPLE])
    timings = []
    for guard in (asker.guard, None):
        started = time.perf_counter()
        Asker(loaded, ctx.precision, ctx.max_new_tokens, guard).answers(sample)
        timings.append(time.perf_counter() - started)
    return {
        "false_refusal_rate": refused,
        "accuracy": accuracy,
        "filtered": dict(asker.guard.filtered),
        "filter_ms_per_answer": asker.guard.filter_ms(),
        "added_latency_ms": round(1000 * (timings[0] - timings[1]) / len(sample), 2),
    }


def run_audit(
    models: dict[str, str],
    ctx: AuditContext,
    attacks: Sequence[str],
    guard: Guard | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Attack each model (role → spec, ``model`` required) and return the ``attacks``,
    ``worst_case`` and ``cost`` parts of results.json.

    With a ``guard``, the model is attacked behind it (oracle and target stay bare: they
    are the yardsticks), and the ``guard`` part reports leak and false-refusal rates.
    With ``cache`` (a directory), the oracle's and target's outputs of an earlier audit
    with the same models, records, settings and code are read back (``attacks.cache``);
    ``cost.cached`` lists them per role.
    """
    if "model" not in models:
        raise ObliviateError("the audit needs a model to attack (--model)")
    started = time.perf_counter()
    outputs: dict[str, dict[str, AttackOutput]] = {name: {} for name in attacks}
    skipped: dict[str, str] = {}
    seconds: dict[str, dict[str, float]] = {}
    reused: dict[str, list[str]] = {}
    guard_figures: dict[str, Any] = {}
    stored = AttackCache(cache, models, ctx) if cache is not None else None
    for role in (r for r in ROLES if r in models):
        pending = [name for name in attacks if name not in skipped]
        if stored is not None and role in CACHED_ROLES:
            for name in list(pending):
                output = stored.load(name, role)
                if output is not None:
                    outputs[name][role] = output
                    reused.setdefault(role, []).append(name)
                    pending.remove(name)
            if reused.get(role):
                say(f"reused the {role}'s cached results of {', '.join(reused[role])}")
        if not pending:
            continue
        say(f"loading {role} [bold]{models[role]}[/bold]")
        loaded = load_model(models[role])
        guarded = guard if role == "model" else None
        asker = Asker(loaded, ctx.precision, ctx.max_new_tokens, guarded)
        for name in pending:
            say(f"attack {name} on {role}")
            begun = time.perf_counter()
            try:
                outputs[name][role] = ATTACKS[name].run(ctx, loaded, asker, role)
            except NotApplicable as reason:
                skipped[name] = str(reason)
                say(f"skipped {name}: {reason}")
            else:
                if stored is not None and role in CACHED_ROLES:
                    stored.store(name, role, outputs[name][role])
            seconds.setdefault(role, {})[name] = round(time.perf_counter() - begun, 2)
        if guarded is not None:
            guard_figures = guard_report(ctx, loaded, asker)
        del loaded, asker
    document: dict[str, Any] = {"attacks": {}}
    for name in attacks:
        spec = ATTACKS[name]
        entry: dict[str, Any] = {"description": spec.description, "settings": spec.settings(ctx)}
        if name in skipped:
            entry["skipped"] = skipped[name]
        else:
            entry |= attack_entry(outputs[name])
        document["attacks"][name] = entry
    worst = _worst_case(document["attacks"])
    if worst is not None:
        document["worst_case"] = worst
    document["audit"] = worst_figures(document["attacks"])
    if guard is not None:
        document["guard"] = guard.to_json() | guard_figures | {"leak_rate": leak_rates(document)}
    document["cost"] = {
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "attack_seconds": {
            name: round(sum(per_role.get(name, 0.0) for per_role in seconds.values()), 2)
            for name in attacks
        },
        "role_seconds": seconds,
        "cached": reused,
    }
    return document
