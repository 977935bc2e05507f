"""``obliviate audit``: attack the model (and the oracle and target, identically) to bring
the forgotten back, into one run directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from obliviate.attacks import AuditContext, resolve_attacks, run_audit
from obliviate.cache import cache_root
from obliviate.data.scenario import evaluation_splits, resolve_split
from obliviate.errors import ObliviateError
from obliviate.evaluation.overlap import dropped_warnings, without_overlap
from obliviate.evaluation.suite import run_cost
from obliviate.guard.guard import build_guard
from obliviate.models.loader import remote_code_option
from obliviate.models.precision import check_precision
from obliviate.options import (
    ATTACKS,
    AUDIT_SEED,
    BASE_SECRET,
    BUDGET,
    EVAL_PRECISION,
    NEIGHBORS,
    RELEARN_LR,
    RELEARN_PRECISION,
    RELEARN_STEPS,
    SPLIT,
    TRUST_REMOTE_CODE,
    WORLD,
)
from obliviate.progress import warn
from obliviate.report import write_report
from obliviate.rundir import RunDir, sha256_path
from obliviate.workflows.inputs import file_label, in_memory, named
from obliviate.workflows.results import Results


@in_memory(
    models=("model", "oracle", "target"),
    records=("forget", "retain", "holdout", "neighbors", "world"),
)
@remote_code_option
def audit(
    model: str,
    out: str | Path,
    *,
    bench: str | Path | None = None,
    split: str = SPLIT.default,
    oracle: str | None = None,
    target: str | None = None,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    holdout: str | Path | None = None,
    neighbors: str | Path | None = NEIGHBORS.default,
    world: str | Path | None = WORLD.default,
    attacks: str | list[str] = ATTACKS.default,
    budget: str = BUDGET.default,
    relearn_steps: int = RELEARN_STEPS.default,
    relearn_lr: float = RELEARN_LR.default,
    relearn_precision: str = RELEARN_PRECISION.default,
    seed: int = AUDIT_SEED.default,
    max_per_split: int | None = None,
    precision: str = EVAL_PRECISION.default,
    guard: str | Path | None = None,
    base_secret: bool = BASE_SECRET.default,
    overwrite: bool = False,
    use_cache: bool = True,
    trust_remote_code: bool = TRUST_REMOTE_CODE.default,
) -> Results:
    """Attack ``model`` (and the oracle and target, identically) into run dir ``out``.

    With ``guard``, the model is attacked behind it and ``results.json`` gains ``guard``
    (leak rate per attack, false refusals on retain, neighbors and world, added latency).
    With ``use_cache``, the oracle's and target's results of an earlier audit with the
    same models, records, settings and code are reused (they do not depend on ``model``).
    ``base_secret``: the model unlearning started from is not public, so the checkpoint
    diff, which reads answers off it, counts toward ``worst_case``. ``neighbors`` and
    ``world`` replace the benchmark's splits of those roles; the world questions that
    overlap the forget set are dropped (``overlap``), and the rest are the tamper attack's
    general data.

    Writes ``results.json`` (``attacks.<name>``: per variant and model the forget accuracy
    and probability before and after, ``recovery``, ``uplift_vs_oracle``; see
    ``docs/evaluation.md``), ``report.html`` and ``report.md``.
    """
    check_precision(precision)
    check_precision(relearn_precision, "--relearn-precision")
    if budget not in ("small", "full"):
        raise ObliviateError(f"unknown budget {budget!r}; use small or full")
    if relearn_steps <= 0 or not relearn_lr > 0:
        raise ObliviateError("--relearn-steps and --relearn-lr must be positive")
    names = resolve_attacks(attacks)
    started = time.perf_counter()
    split = resolve_split(bench, split) if bench is not None else split
    own = {"neighbors": neighbors, "world": world}
    splits = evaluation_splits(bench, split, forget, retain, holdout, max_per_split, **own)
    splits, overlap = without_overlap(splits)
    for line in dropped_warnings(overlap, splits):
        warn(line)
    built = build_guard(guard, splits) if guard is not None else None
    context = AuditContext(
        forget=[r for r in splits["forget"] if not r.is_text],
        holdout=[r for r in splits.get("holdout", []) if not r.is_text],
        retain=[r for r in splits.get("retain", []) if not r.is_text],
        general=[r for r in splits.get("world", []) if not r.is_text],
        budget=budget,
        target=target,
        seed=seed,
        precision=precision,
        relearn_steps=relearn_steps,
        relearn_lr=relearn_lr,
        relearn_precision=relearn_precision,
        utility={
            name: [r for r in splits[name] if not r.is_text]
            for name in ("retain", "neighbors", "world")
            if built is not None and splits.get(name)
        },
    )
    if not context.forget:
        raise ObliviateError("the forget records hold no question-answer facts to attack")
    run = RunDir(out, overwrite=overwrite)
    models = {"model": model, "oracle": oracle, "target": target}
    models = {role: spec for role, spec in models.items() if spec is not None}
    document: dict[str, Any] = {
        "command": "audit",
        **{role: models.get(role) for role in ("model", "oracle", "target")},
        "method": run_cost(model)["method"],
        "split": file_label(forget) if forget is not None else split,  # the user's file
    }
    cache = cache_root() if use_cache else None
    document |= run_audit(models, context, names, built, cache=cache, base_secret=base_secret)
    document["overlap"] = overlap
    inputs = {"bench": bench, "forget": forget, "retain": retain, "holdout": holdout} | own
    inputs = {k: v for k, v in inputs.items() if v is not None}
    settings = {
        "attacks": names,
        "budget": budget,
        "split": split,
        "relearn_steps": relearn_steps,
        "relearn_lr": relearn_lr,
        "relearn_precision": relearn_precision,
        "seed": seed,
        "max_per_split": max_per_split,
        "precision": precision,
        "guard": None if guard is None else str(guard),
        "base_secret": base_secret,
        "cache": use_cache,
    }
    config = {"command": "audit", "models": models, **settings}
    config |= {k: str(v) for k, v in inputs.items()}
    manifest = {
        "command": "audit",
        "models": models,
        "inputs": {k: {"path": str(v), "sha256": sha256_path(v)} for k, v in inputs.items()},
        "records": {"forget": len(context.forget), "holdout": len(context.holdout)},
        "overlap": overlap,
        "seed": seed,
        "timings": {"total_seconds": round(time.perf_counter() - started, 2)},
    }
    document, config, manifest = named(document), named(config), named(manifest)
    document["out"] = str(run.finish(document, config, manifest, report=write_report))
    return Results(document)
