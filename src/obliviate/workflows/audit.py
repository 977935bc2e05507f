"""``obliviate audit``: attack the model (and the oracle and target, identically) to bring
the forgotten back, into one run directory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from obliviate.attacks import AuditContext, resolve_attacks, run_audit
from obliviate.cache import cache_root
from obliviate.data.scenario import evaluation_splits
from obliviate.errors import ObliviateError
from obliviate.evaluate.suite import run_cost
from obliviate.guard.guard import build_guard
from obliviate.models.loader import remote_code_option
from obliviate.models.precision import check_precision
from obliviate.options import (
    ATTACKS,
    AUDIT_SEED,
    BUDGET,
    EVAL_PRECISION,
    RELEARN_LR,
    RELEARN_PRECISION,
    RELEARN_STEPS,
    SPLIT,
    TRUST_REMOTE_CODE,
)
from obliviate.report import write_report
from obliviate.rundir import RunDir, sha256_path


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
    attacks: str | list[str] = ATTACKS.default,
    budget: str = BUDGET.default,
    relearn_steps: int = RELEARN_STEPS.default,
    relearn_lr: float = RELEARN_LR.default,
    relearn_precision: str = RELEARN_PRECISION.default,
    seed: int = AUDIT_SEED.default,
    max_per_split: int | None = None,
    precision: str = EVAL_PRECISION.default,
    guard: str | Path | None = None,
    overwrite: bool = False,
    use_cache: bool = True,
    trust_remote_code: bool = TRUST_REMOTE_CODE.default,
) -> dict[str, Any]:
    """Attack ``model`` (and the oracle and target, identically) into run dir ``out``.

    With ``guard``, the model is attacked behind it and ``results.json`` gains ``guard``
    (leak rate per attack, false refusals on retain, neighbors and world, added latency).
    With ``use_cache``, the oracle's and target's results of an earlier audit with the
    same models, records, settings and code are reused (they do not depend on ``model``).

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
    splits = evaluation_splits(bench, split, forget, retain, holdout, max_per_split)
    built = build_guard(guard, splits) if guard is not None else None
    context = AuditContext(
        forget=[r for r in splits["forget"] if not r.is_text],
        holdout=[r for r in splits.get("holdout", []) if not r.is_text],
        retain=[r for r in splits.get("retain", []) if not r.is_text],
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
        "split": split,
    }
    document |= run_audit(models, context, names, built, cache=cache_root() if use_cache else None)
    inputs = {"bench": bench, "forget": forget, "retain": retain, "holdout": holdout}
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
        "cache": use_cache,
    }
    config = {"command": "audit", "models": models, **settings}
    config |= {k: str(v) for k, v in inputs.items()}
    manifest = {
        "command": "audit",
        "models": models,
        "inputs": {k: {"path": str(v), "sha256": sha256_path(v)} for k, v in inputs.items()},
        "records": {"forget": len(context.forget), "holdout": len(context.holdout)},
        "seed": seed,
        "timings": {"total_seconds": round(time.perf_counter() - started, 2)},
    }
    document["out"] = str(run.finish(document, config, manifest, report=write_report))
    return document
