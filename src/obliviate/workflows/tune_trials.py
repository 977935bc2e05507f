"""The trials of ``obliviate tune``: what one trial does, and the processes that run them.

A trial samples a recipe from the search space (``train/search_space.py``), unlearns the
validation request from the target with it into a temporary run directory (deleted once
scored), evaluates the result and returns its two objectives, forget score and utility,
with the utility floor as a constraint the sampler learns (``_constraint``). Trials run in
an Optuna study kept in a storage (a journal file, or a database several machines share);
each process of this machine (``--jobs``) loops until the study holds the trials asked
for, counting those of every process and machine (``_work``), and prints a line per trial.
See ``workflows/tune.py`` for the run around them.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.evaluation import statistics
from obliviate.evaluation.suite import ModelEvaluation, evaluate_models, results_document
from obliviate.progress import say
from obliviate.train.search_space import SearchSpace, recipe_settings, starting_points, suggest
from obliviate.workflows.training import unlearn

#: Trials failing one after another, with none finished, before the run gives up.
FAILURES_BEFORE_STOP = 3


@dataclass(frozen=True)
class Setup:
    """Everything a trial needs, in any process of this machine (pickled for the workers)."""

    model: str
    scenario: str
    """``bench`` (forget quality against a validation oracle) or ``own`` (oracle-free)."""
    validation: str
    forget: Path
    retain: Path | None
    splits: dict[str, list[Record]]
    references: dict[str, ModelEvaluation]
    start: dict[str, Any]
    utility_key: str
    """The utility figure the trials keep (``model_utility``, else ``model_utility_neighbors``)."""
    utility_inputs: tuple[str, ...]
    """Its inputs (``retain.prob`` …) where the starting model's are above 0: the harmonic
    mean over the abilities it has (all of them, unless it knows nothing of one)."""
    utility_bound: float
    space: SearchSpace
    storage: str
    study_name: str
    trials: int
    jobs: int
    seed: int
    precision: str
    work: Path


# -- the trial ------------------------------------------------------------------------------


@contextmanager
def _quietly() -> Iterator[None]:
    """Silence the bars of a trial's unlearning and evaluation: a tune prints a line a trial."""
    before = os.environ.get("OBLIVIATE_QUIET")
    os.environ["OBLIVIATE_QUIET"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["OBLIVIATE_QUIET"]
        else:
            os.environ["OBLIVIATE_QUIET"] = before


def utility_of(document: dict[str, Any], inputs: Sequence[str]) -> float | None:
    """The harmonic mean of ``inputs`` (``split.metric`` names) in a results document."""
    splits = document.get("splits") or {}
    values = [(splits.get(name.split(".")[0]) or {}).get(name.split(".")[1]) for name in inputs]
    if not values or any(v is None for v in values):
        return None
    return statistics.model_utility(values)


def _figures(document: dict[str, Any], setup: Setup) -> dict[str, Any]:
    """A trial's figures from its results document: the forget score and the utility."""
    forget = (document.get("splits") or {}).get("forget") or {}
    utility = utility_of(document, setup.utility_inputs)
    figures = {
        "forget_accuracy": forget.get("accuracy"),
        "forget_prob": forget.get("prob"),
        "retain_accuracy": ((document.get("splits") or {}).get("retain") or {}).get("accuracy"),
        "forget_quality": document.get("forget_quality"),
        "utility": utility,
        "utility_ratio": utility / setup.start["utility"] if utility is not None else None,
    }
    if setup.scenario == "bench":
        figures["forget_score"] = figures["forget_quality"]
    else:
        figures["forget_score"] = forgetting(
            figures["forget_accuracy"], figures["forget_prob"], setup.start
        )
    return figures


def forgetting(accuracy: float | None, prob: float | None, start: dict[str, Any]) -> float | None:
    """1 − ½ (acc / acc₀ + p / p₀): how much of what the starting model answered is gone
    (p / p₀ alone where acc₀ is 0); see the module's docstring."""
    if accuracy is None or prob is None or not start.get("forget_prob"):
        return None
    kept = prob / start["forget_prob"]
    if start.get("forget_accuracy"):
        kept = (kept + accuracy / start["forget_accuracy"]) / 2
    return 1.0 - kept


def _objective(setup: Setup, trial: Any) -> tuple[float, float]:
    """One trial: unlearn the validation request with the sampled recipe, score, clean up."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    candidate = suggest(setup.space, trial)
    trial.set_user_attr("recipe", recipe_settings(candidate))
    directory = setup.work / f"trial-{trial.number:04d}"
    started = time.perf_counter()
    try:
        with _quietly():
            unlearned = unlearn(
                setup.model,
                setup.forget,
                setup.retain,
                candidate.method,
                directory,
                candidate.config,
                method_params=candidate.method_params,
                overwrite=True,
                allow_weak=True,  # a trial that barely forgets is scored (low), not dropped
            )
            trained = time.perf_counter()
            evaluation = evaluate_models(
                {"model": directory}, setup.splits, precision=setup.precision
            )
        document = results_document(
            evaluation | setup.references, main="model", split=setup.validation
        )
    except ObliviateError as error:
        trial.set_user_attr("error", " ".join(str(error).split()))
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("interrupted", True)
        raise
    finally:
        for leftover in (directory, directory.parent / f".{directory.name}.partial"):
            shutil.rmtree(leftover, ignore_errors=True)
        (directory.parent / f".{directory.name}.lock").unlink(missing_ok=True)
    figures = _figures(document, setup)
    logprob = (unlearned.results or {}).get("primary_answer_logprob") or {}
    figures["forget_logprob"] = {"before": logprob.get("before"), "after": logprob.get("after")}
    figures["unlearn_verdict"] = ((unlearned.results or {}).get("checks") or {}).get("verdict")
    figures["seconds"] = {
        "unlearn": round(trained - started, 1),
        "eval": round(time.perf_counter() - trained, 1),
    }
    trial.set_user_attr("figures", figures)
    if figures["forget_score"] is None or figures["utility"] is None:
        trial.set_user_attr("error", "the evaluation gave no forget score or no utility")
        raise ObliviateError(f"trial {trial.number}: the evaluation gave no figures to score")
    violation = setup.utility_bound - figures["utility"]
    trial.set_user_attr("constraint", [violation])
    if hasattr(trial, "set_constraint"):  # Optuna ≥ 5; 4.x reads it through _constraint
        trial.set_constraint("utility_floor", violation)
    return figures["forget_score"], figures["utility"]


def _constraint(trial: Any) -> list[float]:
    """≤ 0 when the trial's utility reaches the floor (Optuna's sign convention)."""
    return trial.user_attrs.get("constraint", [1.0])


# -- the study ------------------------------------------------------------------------------


def storage_url(storage: str | None, default: Path) -> str:
    """``storage`` as the URL-or-path a study is opened with: a database URL as it is, a
    ``.db``/``.sqlite`` file as SQLite, any other path as a journal file."""
    if storage is None:
        return str(default)
    if "://" in storage:
        return storage
    path = Path(storage).expanduser().resolve()
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path}"
    return str(path)


def _open_storage(url: str) -> Any:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial's line is ours
    if "://" in url:
        try:
            # A machine that dies mid-trial stops beating; its trial is failed, not waited on.
            with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, heartbeat_interval=60, grace_period=300)
        except Exception as error:  # SQLAlchemy's many errors: one line for the user
            raise ObliviateError(f"cannot open the storage {url}: {error}") from None
    Path(url).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(url))


def load_study(setup: Setup, worker: int) -> Any:
    import optuna

    with warnings.catch_warnings():  # Optuna 4's constraints are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=setup.seed + worker,
            constraints_func=None if hasattr(optuna.trial.Trial, "set_constraint") else _constraint,
            n_startup_trials=max(len(setup.space.methods) + 2, min(10, setup.trials // 3)),
        )
    return optuna.load_study(
        study_name=setup.study_name, storage=_open_storage(setup.storage), sampler=sampler
    )


def create_study(setup: Setup, signature: dict[str, Any]) -> Any:
    """Create the study, or join the one of that name, refusing one made for another search."""
    import optuna

    study = optuna.create_study(
        study_name=setup.study_name,
        storage=_open_storage(setup.storage),
        directions=["maximize", "maximize"],
        load_if_exists=True,
    )
    found = study.user_attrs.get("signature")
    if found is None:
        study.set_user_attr("signature", signature)
        for point in starting_points(setup.space):
            study.enqueue_trial(point, user_attrs={"start": True})
    elif found != json.loads(json.dumps(signature)):
        raise ObliviateError(
            f"the study {setup.study_name!r} in {setup.storage} was made for another search "
            "(methods, ranges or validation request); give another --study or --storage"
        )
    return study


def _counted(trial: Any) -> bool:
    """A trial that counts toward ``trials``: finished, or failed by its recipe (not one cut
    short by an interrupt or a killed process)."""
    from optuna.trial import TrialState

    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def _fail_stale(study: Any) -> None:
    """Fail the trials this machine's dead processes left running (a killed run's)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") == host and pid is not None and not _alive(pid):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: How long a ``--jobs`` worker waits for the others to start before it begins alone.
START_TIMEOUT = 180.0


def _all_ready(setup: Setup, worker: int) -> None:
    """Wait until every worker of this machine has started (loading torch takes a while),
    so that all of them share the trials rather than the first one taking them all."""
    ready = setup.work.parent / ".workers-ready"
    ready.mkdir(parents=True, exist_ok=True)
    (ready / str(worker)).touch()
    deadline = time.monotonic() + START_TIMEOUT
    while len(list(ready.iterdir())) < setup.jobs and time.monotonic() < deadline:
        time.sleep(0.2)


def _work(setup: Setup, worker: int) -> None:
    """Run trials until the study holds ``setup.trials`` of them (this process's share)."""
    from optuna.trial import TrialState

    study = load_study(setup, worker)
    _fail_stale(study)
    if setup.jobs > 1:
        _all_ready(setup, worker)
    started, mine, failures = time.perf_counter(), 0, 0
    while True:
        trials = study.get_trials(deepcopy=False)
        done = sum(map(_counted, trials))
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if done + running >= setup.trials:
            return
        ran: list[Any] = []
        study.optimize(
            lambda trial: _objective(setup, trial),
            n_trials=1,
            catch=(ObliviateError,),
            callbacks=[lambda _, frozen, ran=ran: ran.append(frozen)],
        )
        mine += 1
        last = ran[-1] if ran else None
        failures = failures + 1 if last is None or last.state != TrialState.COMPLETE else 0
        _progress(study, setup, last, started, mine)
        finished = any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
        if failures >= FAILURES_BEFORE_STOP and not finished:
            error = last.user_attrs.get("error", "see above") if last else "see above"
            raise ObliviateError(f"the first {failures} trials failed: {error}")


def _progress(study: Any, setup: Setup, last: Any, started: float, mine: int) -> None:
    """``trial k of N (method): figures · ETA · best so far`` after each trial."""
    trials = study.get_trials(deepcopy=False)
    done = sum(map(_counted, trials))
    each = (time.perf_counter() - started) / max(mine, 1)
    left = max(setup.trials - done, 0) * each / setup.jobs
    label = "FQ" if setup.scenario == "bench" else "forgetting"
    if last is None:
        outcome = "interrupted"
    elif "figures" in last.user_attrs and "error" not in last.user_attrs:
        f = last.user_attrs["figures"]
        outcome = f"{label} {f['forget_score']:.3g} at utility {f['utility']:.3f}" + (
            f" ({f['utility_ratio']:.2f}×)" if f["utility_ratio"] is not None else ""
        )
    else:
        outcome = f"failed: {last.user_attrs.get('error', 'see above')}"
    method = last.params.get("method", "?") if last is not None else "?"
    best = best_row(rows_of(trials, setup))
    best_text = (
        f"best so far: {label} {best['forget_score']:.3g} at utility {best['utility']:.3f} "
        f"(trial {best['number']}{'' if best['feasible'] else ', below the floor'})"
        if best
        else "no trial finished yet"
    )
    say(
        f"trial {done} of {setup.trials} ({method}): {outcome} · ETA {_duration(left)} · "
        f"{best_text}"
    )


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 90 else f"{minutes:.0f} min"


def run_worker(setup_file: str, worker: int) -> None:
    """A ``--jobs`` worker process: read the pickled setup and run trials."""
    with open(setup_file, "rb") as stored:
        setup = pickle.load(stored)
    _work(setup, worker)


def run_workers(setup: Setup, staging: Path) -> None:
    """This process and ``jobs − 1`` others, all on the same study, sharing this process's
    CPU threads (``--threads``, or torch's choice): each computes with threads ÷ jobs."""
    if setup.jobs == 1:
        _work(setup, 0)
        return
    import torch

    threads = torch.get_num_threads()
    share = max(1, threads // setup.jobs)
    setup_file = staging / "workers.pkl"
    setup_file.write_bytes(pickle.dumps(setup))
    shutil.rmtree(setup.work.parent / ".workers-ready", ignore_errors=True)
    code = "import sys; from obliviate.workflows.tune_trials import run_worker; "
    code += "run_worker(sys.argv[1], int(sys.argv[2]))"
    env = os.environ | {"OMP_NUM_THREADS": str(share)}  # torch reads it when imported
    others = [
        subprocess.Popen([sys.executable, "-c", code, str(setup_file), str(k)], env=env)
        for k in range(1, setup.jobs)
    ]
    torch.set_num_threads(share)
    try:
        _work(setup, 0)
    finally:
        torch.set_num_threads(threads)
        for k, process in enumerate(others, 1):
            if sys.exc_info()[0] is not None:
                process.terminate()
            if process.wait() != 0:
                say(f"[yellow]worker {k} exited with status {process.returncode}[/yellow]")
        setup_file.unlink(missing_ok=True)
        shutil.rmtree(setup.work.parent / ".workers-ready", ignore_errors=True)


# -- what the study found ------------------------------------------------------------------


def rows_of(trials: Sequence[Any], setup: Setup) -> list[dict[str, Any]]:
    """One row per counted trial: its recipe, figures, feasibility (and error)."""
    from optuna.trial import TrialState

    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        if not _counted(trial):
            continue
        figures = trial.user_attrs.get("figures") or {}
        complete = trial.state == TrialState.COMPLETE
        utility = figures.get("utility")
        rows.append(
            {
                "number": trial.number,
                "state": "complete" if complete else "failed",
                "start": bool(trial.user_attrs.get("start")),
                "recipe": trial.user_attrs.get("recipe") or {},
                "forget_score": figures.get("forget_score") if complete else None,
                "utility": utility if complete else None,
                "feasible": complete and utility is not None and utility >= setup.utility_bound,
                "figures": figures,
                "error": trial.user_attrs.get("error"),
                "host": trial.user_attrs.get("host"),
            }
        )
    return rows


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The chosen trial: the feasible one of highest forget score (then utility), else the
    one of highest utility."""
    complete = [r for r in rows if r["state"] == "complete"]
    feasible = [r for r in complete if r["feasible"]]
    if feasible:
        return max(feasible, key=lambda r: (r["forget_score"], r["utility"]))
    return max(complete, key=lambda r: (r["utility"], r["forget_score"]), default=None)
