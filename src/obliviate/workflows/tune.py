"""``obliviate tune``: search unlearning recipes for the front of forgetting against utility.

An Optuna study samples recipes (a method, its learning rate and length, its loss weights
and temperatures: ``train/search_space.py``) and runs each as a trial: unlearn a
*validation* request from the target with it (``unlearn`` into a temporary run directory,
deleted once scored), evaluate the result (``evaluate_models``, at most
``max_per_split`` records per split) and report two objectives, both maximised:

- on the built-in benchmark, forget quality against the validation request's own oracle
  (the target's fine-tune redone without its people: ``retrained_oracle``, cached) and
  model utility;
- on the user's own files, oracle-free: *forgetting* = 1 − ½ (acc / acc₀ + p / p₀), where
  acc and p are the forget answers' accuracy and mean length-normalised probability and
  acc₀, p₀ the starting model's (0: nothing forgotten, 1: no answer given or likely; p
  alone where acc₀ is 0), and model utility (the harmonic mean of the retain and world
  figures).

A trial is feasible when its utility is at least ``utility_floor`` × the starting model's
(a constraint the sampler learns). The chosen recipe is the feasible trial of highest
forget score, else (none feasible, said so) the trial of highest utility; it is written as
``recipe.yaml``, which ``obliviate unlearn --config`` takes. The validation request is
never the request the recipe is for (``data/validation.py``): validate10's people are
neither forget10's nor its neighbours; on the user's data a held-out share of the forget
file is tuned on.

The study lives in an Optuna storage: ``RUN/study.journal`` by default (so ``--resume``
continues it), or ``storage`` (``sqlite:///PATH``, a database URL or a journal file) shared
by several machines, each running its own ``obliviate tune`` on the same study name.
``trials`` counts every trial in the study, wherever it ran; ``jobs`` runs that many
processes on this machine. The trials themselves are ``workflows/tune_trials.py``'s. See
``docs/tune.md``.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from obliviate.cache import cache_root
from obliviate.data.loaders import load_records, save_records
from obliviate.data.scenario import bench_splits, evaluation_splits, evenly_spaced
from obliviate.data.validation import bench_validation, held_out_part
from obliviate.errors import ObliviateError
from obliviate.evaluation.suite import evaluate_models, results_document
from obliviate.methods import METHODS
from obliviate.models.precision import check_precision
from obliviate.options import (
    EVAL_PRECISION,
    HELD_OUT_SHARE,
    SPLIT,
    TUNE_JOBS,
    TUNE_MAX_PER_SPLIT,
    TUNE_METHODS,
    TUNE_SEED,
    TUNE_TRIALS,
    UTILITY_FLOOR,
)
from obliviate.progress import say
from obliviate.report import write_report
from obliviate.report.plots import pareto_front
from obliviate.rundir import RunDir, sha256_path
from obliviate.train.recipes import recipe_for
from obliviate.train.search_space import parse_range, search_space
from obliviate.workflows.inputs import in_memory, named
from obliviate.workflows.sequence import retrained_oracle, target_recipe
from obliviate.workflows.tune_trials import (
    Setup,
    best_row,
    create_study,
    load_study,
    rows_of,
    run_workers,
    storage_url,
    utility_of,
)

#: The study's storage in the run directory, where none is given.
STUDY_FILE = "study.journal"


# -- what the study found ------------------------------------------------------------------


def summarise(rows: list[dict[str, Any]], setup: Setup) -> dict[str, Any]:
    """The Pareto front (of finished trials, feasible or not) and the chosen trial."""
    complete = [r for r in rows if r["state"] == "complete"]
    front = [complete[i]["number"] for i in pareto_front(
        [(r["utility"], r["forget_score"]) for r in complete]
    )]  # fmt: skip
    for row in rows:
        row["pareto"] = row["number"] in front
    chosen = best_row(rows)
    score = "forget quality" if setup.scenario == "bench" else "forgetting"
    if chosen is None:
        reason = "no trial finished"
    elif chosen["feasible"]:
        reason = f"the highest {score} among the trials whose utility reached the floor"
    else:
        reason = (
            "no trial reached the utility floor; this is the trial of highest utility "
            "(raise --trials, or lower --utility-floor)"
        )
    return {"pareto_front": front, "chosen": chosen, "reason": reason}


def _recipe_text(chosen: dict[str, Any], setup: Setup, reason: str) -> str:
    """recipe.yaml: the chosen recipe as ``obliviate unlearn --config`` reads it."""
    recipe = dict(chosen["recipe"])
    searched = {k: recipe.pop(k) for k in ("method", "method_params", "lr") if k in recipe}
    length = "max_steps" if recipe.get("max_steps") else "epochs"
    searched[length] = recipe.pop(length)
    figures = chosen["figures"]
    label = "forget quality" if setup.scenario == "bench" else "forgetting"
    ratio = figures.get("utility_ratio")
    head = [
        f"# obliviate tune: trial {chosen['number']} ({recipe_method(chosen)}), {reason}.",
        f"# On the validation request ({setup.validation}): {label} "
        f"{figures['forget_score']:.3g}, model utility {figures['utility']:.3f}"
        + (f" ({ratio:.2f}× the starting model's)" if ratio is not None else "") + ".",
        "# Use: obliviate unlearn --model M --forget F --retain R --out OUT --config recipe.yaml",
    ]  # fmt: skip
    rest = "# The rest of the schedule (as the trials ran it):\n" + yaml.safe_dump(
        recipe, sort_keys=False
    )
    return "\n".join(head) + "\n" + yaml.safe_dump(searched, sort_keys=False) + rest


def recipe_method(row: dict[str, Any]) -> str:
    return str(row["recipe"].get("method", "?"))


TRIAL_COLUMNS = (
    "number", "state", "method", "lr", "epochs", "max_steps", "method_params", "forget_score",
    "forget_quality", "forget_accuracy", "utility", "utility_ratio", "feasible", "pareto",
    "unlearn_seconds", "eval_seconds", "error",
)  # fmt: skip


def _write_trials(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, TRIAL_COLUMNS)
        writer.writeheader()
        for row in rows:
            recipe, figures = row["recipe"], row["figures"]
            seconds = figures.get("seconds") or {}
            writer.writerow(
                {
                    "number": row["number"],
                    "state": row["state"],
                    "method": recipe.get("method"),
                    "lr": recipe.get("lr"),
                    "epochs": recipe.get("epochs") if not recipe.get("max_steps") else None,
                    "max_steps": recipe.get("max_steps"),
                    "method_params": json.dumps(recipe.get("method_params") or {}),
                    "forget_score": row["forget_score"],
                    "forget_quality": figures.get("forget_quality"),
                    "forget_accuracy": figures.get("forget_accuracy"),
                    "utility": row["utility"],
                    "utility_ratio": figures.get("utility_ratio"),
                    "feasible": row["feasible"],
                    "pareto": row["pareto"],
                    "unlearn_seconds": seconds.get("unlearn"),
                    "eval_seconds": seconds.get("eval"),
                    "error": row["error"],
                }
            )


# -- the validation request ----------------------------------------------------------------


def _bench_request(
    run: RunDir, model: str, bench: Path, split: str, oracle: str | None, limit: int | None
) -> dict[str, Any]:
    """The benchmark's validation request: files, splits, its oracle (retrained, cached)."""
    validation = bench_validation(bench, split)
    forget, retain = run.path("validation/forget.jsonl"), run.path("validation/retain.jsonl")
    forget.parent.mkdir(parents=True, exist_ok=True)
    save_records(forget, validation.records["forget"])
    save_records(retain, validation.records["retain"])
    splits = bench_splits(bench, split, limit)  # the evaluation's other splits (world …)
    for role in ("forget", "retain", "neighbors", "holdout"):
        splits.pop(role, None)
    for role, records in validation.records.items():
        if records:
            splits[role] = evenly_spaced(records, limit)
    made = None
    if oracle is None:
        if not (Path(model).expanduser() / "manifest.json").is_file():
            raise ObliviateError(
                f"--model {model} is not a fine-tune's run directory, so there is no recipe to "
                f"retrain the validation oracle with; give --oracle (a model fine-tuned without "
                f"the people of {bench / validation.name}.jsonl)"
            )
        recipe = target_recipe(model)
        missing = set(validation.people) - {r.person for r in load_records(recipe.data)}
        if missing:
            raise ObliviateError(
                f"the target was not fine-tuned on the validation people ({recipe.data} lacks "
                f"{len(missing)}); give the target fine-tuned on this benchmark"
            )
        say(f"validation oracle: the target's fine-tune without {validation.name}'s people")
        made = retrained_oracle(recipe, frozenset(validation.people), run.path("validation/oracle"))
        oracle = str(made.out)
    return {
        "name": validation.name,
        "forget": forget,
        "retain": retain,
        "splits": splits,
        "oracle": oracle,
        "record": {
            "bench": str(bench),
            "split": split,
            "request": validation.name,
            "people": list(validation.people),
            "clear_of_neighbours": validation.clear_of_neighbours,
            "oracle": oracle,
            "oracle_retrained": made is not None,
        },
    }


def _own_request(
    run: RunDir, forget: Path, retain: Path | None, share: float, limit: int | None
) -> dict[str, Any]:
    """The held-out part of the user's forget file, scored oracle-free."""
    records = load_records(forget)
    if any(r.is_text for r in records):
        raise ObliviateError(
            f"{forget} holds passages; obliviate tune scores question-answer records (prompt "
            "and answer) and does not tune the text scenario yet"
        )
    tuned, untouched = held_out_part(records, share)
    part = run.path("validation/forget.jsonl")
    part.parent.mkdir(parents=True, exist_ok=True)
    save_records(part, tuned)
    splits = evaluation_splits(None, SPLIT.default, forget=part, retain=retain, max_per_split=limit)
    return {
        "name": "held-out",
        "forget": part,
        "retain": retain,
        "splits": splits,
        "oracle": None,
        "record": {
            "forget_file": str(forget),
            "retain_file": str(retain) if retain else None,
            "held_out_share": share,
            "records_tuned_on": len(tuned),
            "records_never_seen": len(untouched),
            "ids_tuned_on": [r.id for r in tuned],
        },
    }


def _methods(methods: str | Sequence[str]) -> list[str]:
    names = methods.split(",") if isinstance(methods, str) else list(methods)
    return [m.strip() for m in names if m.strip()]


# -- the run --------------------------------------------------------------------------------


@in_memory(models=("model", "oracle"), records=("forget", "retain"))
def tune(
    model: str,
    out: str | Path,
    *,
    bench: str | Path | None = None,
    split: str = SPLIT.default,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    oracle: str | None = None,
    method: str | Sequence[str] = TUNE_METHODS.default,
    trials: int = TUNE_TRIALS.default,
    utility_floor: float = UTILITY_FLOOR.default,
    max_per_split: int | None = TUNE_MAX_PER_SPLIT.default,
    storage: str | None = None,
    study: str | None = None,
    jobs: int = TUNE_JOBS.default,
    seed: int = TUNE_SEED.default,
    lr_range: str | tuple[float, float] | None = None,
    epochs_range: str | tuple[float, float] | None = None,
    steps_range: str | tuple[float, float] | None = None,
    search: str | Sequence[str] | None = None,
    held_out: float = HELD_OUT_SHARE.default,
    precision: str = EVAL_PRECISION.default,
    overwrite: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Search recipes of ``method`` (one or several) for unlearning from ``model``; see the
    module's docstring. Give ``bench`` (with ``split``, the request the recipe is for, which
    tuning never reads) or the user's own ``forget`` (and ``retain``) files. Returns the
    results document, with ``out``."""
    started = time.perf_counter()
    if (bench is None) == (forget is None):
        raise ObliviateError("give a benchmark (--bench DIR) or your own records (--forget FILE)")
    if trials < 1 or jobs < 1:
        raise ObliviateError("--trials and --jobs must be at least 1")
    if not 0 < utility_floor <= 2:
        raise ObliviateError("--utility-floor must be above 0 (0.95: keep 95 % of the utility)")
    check_precision(precision)
    extras = tuple(_methods(search or ()))
    methods = _methods(method)
    needs_retain = [m for m in methods if m in METHODS and METHODS[m].uses_retain]
    if forget is not None and retain is None and needs_retain:
        raise ObliviateError(
            f"{', '.join(needs_retain)} need retain data; pass --retain FILE (or tune ga only)"
        )
    out_path = Path(out).expanduser().resolve()
    staging = out_path.parent / f".{out_path.name}.partial"
    if resume and out_path.is_dir() and not staging.exists():  # extend a finished study
        shutil.copytree(out_path, staging)
        overwrite = True
    run = RunDir(out_path, overwrite=overwrite, resume=resume)

    if bench is not None:
        request = _bench_request(run, model, Path(bench).expanduser(), split, oracle, max_per_split)
        scenario = "bench"
    else:
        retain_path = Path(retain).expanduser() if retain else None
        request = _own_request(run, Path(forget).expanduser(), retain_path, held_out, max_per_split)
        scenario = "own"
    references = {"target": model} | ({"oracle": request["oracle"]} if request["oracle"] else {})
    say("evaluating the starting model" + (" and the oracle" if request["oracle"] else ""))
    evaluations = evaluate_models(
        references, request["splits"], precision=precision, cache=cache_root()
    )
    start_doc = results_document(evaluations, main="target", split=request["name"])
    utility_key = "model_utility" if start_doc.get("model_utility") else "model_utility_neighbors"
    offered = start_doc.get(f"{utility_key}_inputs") or []
    inputs = tuple(n for n in offered if (utility_of(start_doc, [n]) or 0) > 0)
    forget_figures = (start_doc.get("splits") or {}).get("forget") or {}
    start = {
        "utility": utility_of(start_doc, inputs) if inputs else None,
        "utility_dropped": [n for n in offered if n not in inputs],
        "forget_quality": start_doc.get("forget_quality"),
        "forget_accuracy": forget_figures.get("accuracy"),
        "forget_prob": forget_figures.get("prob"),
    }
    if not start["utility"]:
        raise ObliviateError("the starting model has no model utility on these splits to keep")
    oracle_doc = (start_doc.get("reference") or {}).get("oracle") or {}

    recipe, choice = recipe_for(model)
    space = search_space(
        methods,
        {m: recipe.unlearn_config(m) for m in methods},
        {m: recipe.method_params(m) for m in methods},
        lr_range=parse_range(lr_range, "--lr-range"),
        epochs_range=parse_range(epochs_range, "--epochs-range"),
        steps_range=parse_range(steps_range, "--steps-range"),
        extras=extras,
    )
    url = storage_url(storage, run.path(STUDY_FILE))
    setup = Setup(
        model=str(model),
        scenario=scenario,
        validation=request["name"],
        forget=request["forget"],
        retain=request["retain"],
        splits=request["splits"],
        references={"target": evaluations["target"]}
        | ({"oracle": evaluations["oracle"]} if "oracle" in evaluations else {}),
        start=start,
        utility_key=utility_key,
        utility_inputs=inputs,
        utility_bound=utility_floor * start["utility"],
        space=space,
        storage=url,
        study_name=study or out_path.name,
        trials=trials,
        jobs=jobs,
        seed=seed,
        precision=precision,
        work=run.path("trials"),
    )
    signature = {
        "scenario": scenario,
        "validation": request["name"],
        "forget_sha256": sha256_path(request["forget"]),
        "space": space.describe(),
        "utility_floor": utility_floor,
        "max_per_split": max_per_split,
        "precision": precision,
    }
    create_study(setup, signature)
    say(
        f"tuning {', '.join(methods)} on {request['name']}: {trials} trials, utility floor "
        f"{setup.utility_bound:.3f} ({utility_floor:g} × the starting model's "
        f"{start['utility']:.3f})"
    )
    run_workers(setup, run.staging)

    study_trials = load_study(setup, 0).get_trials(deepcopy=False)
    rows = named(rows_of(study_trials, setup))  # a trial's error names in-memory inputs
    found = summarise(rows, setup)
    chosen = found["chosen"]
    if chosen is None:
        raise ObliviateError(
            "no trial finished, so there is no recipe to choose; see the errors above"
        )
    _write_trials(run.path("trials.csv"), rows)
    run.path("recipe.yaml").write_text(
        _recipe_text(chosen, setup, found["reason"]), encoding="utf-8"
    )
    shutil.rmtree(run.path("trials"), ignore_errors=True)
    if request["record"].get("oracle_retrained"):
        shutil.rmtree(run.path("validation/oracle"), ignore_errors=True)  # the cache keeps it
    seconds = round(time.perf_counter() - started, 2)
    results = {
        "command": "tune",
        "model": str(model),
        "tune": {
            "scenario": scenario,
            "validation": request["record"] | {"name": request["name"]},
            "methods": methods,
            "search_space": space.describe(),
            "recipe": choice.record(),
            "objectives": {
                "forget": "forget_quality" if scenario == "bench" else "forgetting",
                "utility": utility_key,
                "utility_inputs": list(inputs),
            },
            "utility_floor": utility_floor,
            "utility_bound": setup.utility_bound,
            "start": start,
            "oracle": {
                "forget_quality": oracle_doc.get("forget_quality"),
                "utility": utility_of(oracle_doc, inputs) if oracle_doc else None,
            },
            "trials_requested": trials,
            "trials": rows,
            "pareto_front": found["pareto_front"],
            "chosen": chosen["number"],
            "chosen_reason": found["reason"],
            "chosen_recipe": chosen["recipe"],
            "storage": url if storage else STUDY_FILE,
            "study": setup.study_name,
            "max_per_split": max_per_split,
            "precision": precision,
            "seconds": seconds,
        },
    }
    config = {
        "command": "tune",
        "model": str(model),
        "bench": str(bench) if bench is not None else None,
        "split": split if bench is not None else None,
        "forget": str(forget) if forget is not None else None,
        "retain": str(retain) if retain is not None else None,
        "method": methods,
        "trials": trials,
        "utility_floor": utility_floor,
        "max_per_split": max_per_split,
        "storage": storage,
        "study": setup.study_name,
        "jobs": jobs,
        "seed": seed,
        "search": list(extras),
        "held_out": held_out if forget is not None else None,
        "precision": precision,
    }
    manifest = {
        "command": "tune",
        "model": {"spec": str(model)},
        "inputs": {
            "validation_forget": {
                "path": str(request["forget"]),
                "sha256": sha256_path(request["forget"]),
            }
        },
        "storage": url if storage else STUDY_FILE,
        "study": setup.study_name,
        "timings": {"total_seconds": seconds},
    }
    results, config, manifest = named(results), named(config), named(manifest)
    published = run.finish(results, config, manifest, report=write_report, relocate=True)
    results["out"] = str(published)
    return results
