"""Run the chosen attacks against the unlearned model, the oracle and the target.

One model is in memory at a time; every attack runs on it with the identical records and
settings. Then each variant of each attack is summed up per model (accuracy and
probability before and after, ``recovery``) and against the oracle (``uplift_vs_oracle``,
the headline: an attack that teaches the oracle just as much proves nothing). The worst
case counts the attacks that fit the threat model: the checkpoint diff reads answers off
the model you started from, which tells an attacker nothing new when that model is
public, so it counts only when the base is secret. Definitions are in
``docs/evaluation.md``.
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
from obliviate.evaluation.verdict import net_of_control, verdict
from obliviate.guard.guard import Guard, looks_like_refusal
from obliviate.models.loader import LoadedModel, load_model
from obliviate.options import BASE_SECRET
from obliviate.progress import progress_bar, say
from obliviate.rundir import peak_rss_mb

#: Questions timed with and without the guard for its added latency.
LATENCY_SAMPLE = 32

#: The models an audit attacks, in the order they are loaded.
ROLES: tuple[str, ...] = ("model", "oracle", "target")

#: Attacks that read the answers off the model you started from (the target) rather than
#: out of the unlearned one: they count toward the worst case only when that model is
#: secret (``--base-secret``); anyone can ask a public base model directly.
BASE_READING: dict[str, str] = {
    "diff": "reads the answers off the starting model, which is public: anyone can ask it "
    "(counts with --base-secret)",
}


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


def _net_recovery(entry: dict[str, Any], role: str) -> float | None:
    """``recovery`` of the role's accuracy net of its control's (``net_accuracy``): how far
    the attack moved it toward the target's beyond what it gives on invented facts."""
    side = entry.get(role, {})
    net, before = side.get("net_accuracy"), side["before"]["accuracy"]
    top = (entry.get("target", {}).get("before") or {}).get("accuracy")
    if net is None or top is None or top - before <= 0:
        return None
    return min(1.0, max(0.0, (net - before) / (top - before)))


def _severity(entry: dict[str, Any]) -> float:
    """How much an attack variant brought back: the uplift over the oracle when there is
    an oracle, else the model's recovery, else (no target either) its rise in accuracy;
    each net of the control where the variant has one."""
    value = entry.get("uplift_vs_oracle")
    model = entry.get("model", {})
    for fallback in ("net_recovery", "recovery"):
        value = model.get(fallback) if value is None else value
    if value is None:
        before = (model.get("before") or {}).get("accuracy")
        after = model.get("net_accuracy", (model.get("after") or {}).get("accuracy"))
        if after is not None and before is not None:
            value = after - before
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
            for role in controls:
                entry[role]["net_accuracy"] = net_of_control(entry, role)
                entry[role]["net_recovery"] = _net_recovery(entry, role)
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


def counted(
    attacks: dict[str, dict[str, Any]], base_secret: bool = BASE_SECRET.default
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The attacks that count toward the worst case under the threat model, and those
    left out with why: an attack that reads the answers off the starting model counts
    only when that model is secret."""
    excluded = {
        name: why for name, why in BASE_READING.items() if name in attacks and not base_secret
    }
    return {n: e for n, e in attacks.items() if n not in excluded}, excluded


def _worst_case(
    attacks: dict[str, dict[str, Any]], base_secret: bool = BASE_SECRET.default
) -> dict[str, Any]:
    """The attack variant that brought back the most across the attacks that count
    (``counted``); ``attack`` None and ``nothing recovered`` when none brought anything back
    (no uplift over the oracle, else no recovery, else no rise in accuracy)."""
    counts, excluded = counted(attacks, base_secret)
    candidates = [
        (name, entry["worst_variant"], entry["variants"][entry["worst_variant"]])
        for name, entry in counts.items()
        if entry.get("worst_variant") is not None
    ]
    case: dict[str, Any] = {
        "threat_model": "secret base" if base_secret else "public base",
        "counted": [n for n, e in counts.items() if e.get("variants")],
        "excluded": excluded,
    }
    worst = max(candidates, key=lambda c: _severity(c[2]), default=None)
    if worst is None or _severity(worst[2]) <= 0:
        return case | {"attack": None, "variant": None, "summary": "nothing recovered"}
    name, variant, entry = worst
    model = entry.get("model", {})
    return case | {
        "attack": name,
        "variant": variant,
        "uplift_vs_oracle": entry["uplift_vs_oracle"],
        "recovery": model.get("recovery"),
        "accuracy": (model.get("after") or {}).get("accuracy"),
    }


def worst_figures(
    attacks: dict[str, dict[str, Any]], base_secret: bool = BASE_SECRET.default
) -> dict[str, Any]:
    """The largest uplift over the oracle and the largest recovery over every variant of
    the attacks that count (``counted``), each with where it happened: the audit's result
    is its weakest point."""
    found: dict[str, Any] = {"worst_uplift_vs_oracle": None, "worst_recovery": None}
    for figure, key in (
        ("uplift_vs_oracle", "worst_uplift_vs_oracle"),
        ("recovery", "worst_recovery"),
    ):
        for name, entry in counted(attacks, base_secret)[0].items():
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
    base_secret: bool = BASE_SECRET.default,
) -> dict[str, Any]:
    """Attack each model (role → spec, ``model`` required) and return the ``attacks``,
    ``worst_case``, ``verdict`` and ``cost`` parts of results.json.

    ``base_secret``: the model unlearning started from is not public, so an attack that
    reads answers off it (``BASE_READING``) counts toward the worst case.

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
    roles = [r for r in ROLES if r in models]
    # One step per attack and model: a step read from the cache, or an attack skipped
    # (so on every model after this one too), is done at once.
    done = 0
    with progress_bar("audit", len(roles) * len(attacks)) as advance:
        for index, role in enumerate(roles):
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
                    done += len(reused[role])
                    advance(done)
            if not pending:
                continue
            advance(done, description=f"audit: loading {role} {models[role]}")
            loaded = load_model(models[role])
            guarded = guard if role == "model" else None
            asker = Asker(loaded, ctx.precision, ctx.max_new_tokens, guarded)
            for name in pending:
                advance(done, description=f"audit: {name} on {role}")
                begun = time.perf_counter()
                try:
                    outputs[name][role] = ATTACKS[name].run(ctx, loaded, asker, role)
                except NotApplicable as reason:
                    skipped[name] = str(reason)
                    say(f"skipped {name}: {reason}")
                    done += len(roles) - index - 1  # not run on the models after this one
                else:
                    if stored is not None and role in CACHED_ROLES:
                        stored.store(name, role, outputs[name][role])
                seconds.setdefault(role, {})[name] = round(time.perf_counter() - begun, 2)
                done += 1
                advance(done)
            if guarded is not None:
                advance(done, description="audit: the guard's false refusals on model")
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
    document["worst_case"] = _worst_case(document["attacks"], base_secret)
    document["audit"] = worst_figures(document["attacks"], base_secret)
    document["verdict"] = verdict(document)
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
