"""``obliviate eval``: the model (and the oracle and target, sharing the work) on every
split of the scenario, into one run directory."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from obliviate.cache import cache_root
from obliviate.data.scenario import (
    evaluation_passages,
    evaluation_splits,
    mia_applicability,
    resolve_split,
)
from obliviate.evaluation.overlap import dropped_warnings, without_overlap
from obliviate.evaluation.sanity import overlap_warnings, same_model_warnings
from obliviate.evaluation.suite import evaluate_models, guard_figures, results_document
from obliviate.evaluation.text import TextSettings
from obliviate.guard.guard import build_guard
from obliviate.models.loader import remote_code_option
from obliviate.models.precision import check_precision
from obliviate.options import (
    EVAL_PRECISION,
    HOLDOUT_RANDOM_SPLIT,
    NEIGHBORS,
    REAL_AUTHORS,
    SPLIT,
    TRUST_REMOTE_CODE,
    WORLD,
    WORLD_FACTS,
)
from obliviate.progress import say, warn
from obliviate.report import write_report
from obliviate.rundir import RunDir, sha256_path
from obliviate.workflows.inputs import file_label, in_memory, named
from obliviate.workflows.results import Results


@in_memory(
    models=("model", "oracle", "target"),
    records=("forget", "retain", "holdout", "real_authors", "world_facts", "neighbors", "world"),
)
@remote_code_option
def evaluate(
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
    holdout_random_split: bool = HOLDOUT_RANDOM_SPLIT.default,
    real_authors: str | Path | None = REAL_AUTHORS.default,
    world_facts: str | Path | None = WORLD_FACTS.default,
    neighbors: str | Path | None = NEIGHBORS.default,
    world: str | Path | None = WORLD.default,
    max_per_split: int | None = None,
    precision: str = EVAL_PRECISION.default,
    guard: str | Path | None = None,
    overwrite: bool = False,
    text_settings: TextSettings | None = None,
    trust_remote_code: bool = TRUST_REMOTE_CODE.default,
) -> Results:
    """Evaluate ``model`` (and the oracle and target, sharing the work) into run dir ``out``.

    With ``guard`` (components or a YAML file, see ``obliviate.guard``) the model is
    evaluated behind it, and ``results.json`` gains a ``guard`` part. With forget
    passages (``evaluation_passages``), it gains ``text``: MUSE's figures, measured as
    ``text_settings`` say. With ``real_authors`` and ``world_facts`` (TOFU's files), they
    are evaluated as splits of those names and ``model_utility`` is TOFU's. ``neighbors``
    and ``world`` (the user's files) replace the benchmark's splits of those roles (world:
    the built-in questions where neither gives one); general questions that overlap the
    forget set are dropped and counted (``overlap``, see ``evaluation/overlap.py``). A model
    directory evaluated before on the same records, settings and code (the target and
    oracle of every run against them) is read back from the cache, as the demo does. The
    results name the user's forget file when one is given. Membership inference (``mia``,
    the PrivLeaks) is left out, with ``mia_note`` saying why, unless forget and holdout are
    a random split of one pool (``mia_applicability``; ``holdout_random_split`` asserts it
    of the user's own files). Writes
    ``results.json`` (see ``docs/evaluation.md``),
    ``report.html`` and ``report.md``.
    """
    check_precision(precision)
    started = time.perf_counter()
    split = resolve_split(bench, split) if bench is not None else split
    own = {"neighbors": neighbors, "world": world}
    splits = evaluation_splits(
        bench, split, forget, retain, holdout, max_per_split, real_authors, world_facts, **own
    )
    splits, overlap = without_overlap(splits)
    passages = evaluation_passages(bench, split, forget, retain, holdout, max_per_split)
    mia_note = mia_applicability(bench, forget, holdout, holdout_random_split)
    text_settings = text_settings or TextSettings()
    built = build_guard(guard, splits) if guard is not None else None
    run = RunDir(out, overwrite=overwrite)
    models = {"model": model, "target": target, "oracle": oracle}
    models = {name: spec for name, spec in models.items() if spec is not None}
    warnings = same_model_warnings(models) + overlap_warnings(splits)
    warnings += dropped_warnings(overlap, splits)
    for warning in warnings:
        warn(warning)
    evaluations = evaluate_models(
        models,
        splits,
        on_model=lambda n: say(f"evaluating {n}"),
        precision=precision,
        guards={"model": built} if built else None,
        passages=passages,
        text_settings=text_settings,
        cache=cache_root(),
    )
    label = file_label(forget) if forget is not None else split
    document = results_document(evaluations, main="model", split=label, mia_note=mia_note)
    document["warnings"] = warnings
    document["overlap"] = overlap
    if built is not None:
        document["guard"] = guard_figures(evaluations["model"], built)
    inputs = {"bench": bench, "forget": forget, "retain": retain, "holdout": holdout}
    inputs |= {"real_authors": real_authors, "world_facts": world_facts}
    inputs |= own
    inputs = {k: v for k, v in inputs.items() if v is not None}
    config = {
        "command": "eval",
        "models": models,
        "split": split,
        "max_per_split": max_per_split,
        "precision": precision,
        "guard": None if guard is None else str(guard),
        "holdout_random_split": holdout_random_split,
    }
    config |= {"text": asdict(text_settings)} if "text" in document else {}
    config |= {k: str(v) for k, v in inputs.items()}
    manifest = {
        "command": "eval",
        "models": models,
        "inputs": {k: {"path": str(v), "sha256": sha256_path(v)} for k, v in inputs.items()},
        "splits": {k: len(v) for k, v in splits.items()},
        "passages": {k: len(v) for k, v in passages.items()},
        "overlap": overlap,
        "timings": {"total_seconds": round(time.perf_counter() - started, 2)},
    }
    document, config, manifest = named(document), named(config), named(manifest)
    document["out"] = str(run.finish(document, config, manifest, report=write_report))
    return Results(document)
