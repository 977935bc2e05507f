"""``obliviate tune``: a study on a validation request, never the request it is tuned for.

Every run here is the tiny model on the 20-person benchmark, a few trials of 2 to 4 steps,
evaluated on at most 8 records per split: seconds a trial.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from conftest import cli_ok

from obliviate import api
from obliviate.data.bench import make_benchmark
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.data.validation import bench_validation, held_out_part, validation_request
from obliviate.methods import METHODS, build_method
from obliviate.train.config import TrainConfig
from obliviate.train.search_space import (
    candidate,
    recipe_settings,
    search_space,
    starting_points,
    suggest,
)
from obliviate.workflows import tune_trials

#: Short trials: the study's machinery is under test here, not the recipes it finds.
FAST: dict[str, Any] = {"method": "npo,grad_diff", "steps_range": "2,4", "max_per_split": 8}


def _people(records: list[Record]) -> set[str]:
    return {r.person for r in records}


def _study(storage: str, name: str) -> optuna.Study:
    if "://" not in storage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return optuna.load_study(
            study_name=name, storage=JournalStorage(JournalFileBackend(storage))
        )
    return optuna.load_study(study_name=name, storage=storage)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


# -- the validation request ----------------------------------------------------------------


@pytest.mark.parametrize(("seed", "people"), [(0, 20), (0, 40), (1, 40), (3, 100)])
def test_validation_people_are_neither_forget10_nor_its_neighbours(
    tmp_path: Path, seed: int, people: int
) -> None:
    bench = tmp_path / "bench"
    make_benchmark(bench, seed=seed, people=people)
    validation = bench_validation(bench, "forget10")
    forget10 = _people(load_records(bench / "forget10.jsonl"))
    neighbours = _people(load_records(bench / "neighbors.jsonl"))
    chosen = _people(validation.records["forget"])
    assert len(chosen) == len(forget10) and validation.clear_of_neighbours
    assert not chosen & (forget10 | neighbours)
    retained = _people(validation.records["retain"])
    assert not retained & (forget10 | chosen)
    assert retained | chosen | forget10 == _people(load_records(bench / "full.jsonl"))
    assert _people(validation.records["neighbors"]) <= retained
    # bench make wrote validate10*.jsonl; the same records derive from facts.json + full.jsonl
    kb = json.loads((bench / "facts.json").read_text())
    derived = validation_request(kb, load_records(bench / "full.jsonl"), "forget10")
    for role, name in (("forget", "validate10"), ("retain", "validate10_retain")):
        written = load_records(bench / f"{name}.jsonl")
        assert [r.id for r in written] == [r.id for r in derived.records[role]]


def test_a_benchmark_without_the_files_derives_its_validation_request(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    make_benchmark(bench, seed=2, people=30)
    written = bench_validation(bench, "forget10")
    for path in bench.glob("validate10*.jsonl"):
        path.unlink()
    derived = bench_validation(bench, "forget10")
    assert derived.people == written.people
    assert [r.id for r in derived.records["retain"]] == [r.id for r in written.records["retain"]]
    other = bench_validation(bench, "forget05")  # any forget split has one
    assert not _people(other.records["forget"]) & _people(load_records(bench / "forget05.jsonl"))


def test_held_out_part_takes_whole_people_in_turn() -> None:
    records = [
        Record(id=f"{p}-{k}", prompt=f"Q{p}{k}?", answer="A", meta={"person": p})
        for p in ("ann", "bob", "cy", "dee", "eve")
        for k in range(3)
    ]
    tuned, untouched = held_out_part(records, 0.5)
    assert held_out_part(records, 0.5) == (tuned, untouched)
    assert not _people(tuned) & _people(untouched)
    assert len(_people(tuned)) in (2, 3) and len(tuned) + len(untouched) == len(records)
    plain = [Record(id=f"r{i}", prompt=f"Q{i}?", answer="A") for i in range(10)]
    tuned, untouched = held_out_part(plain, 0.5)
    assert [r.id for r in tuned] == ["r0", "r2", "r4", "r6", "r8"]


# -- the search space -----------------------------------------------------------------------


class MidpointTrial:
    """A trial that picks the first choice and the middle of every range."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.params[name] = choices[0]
        return choices[0]

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        self.params[name] = (low * high) ** 0.5 if log else (low + high) / 2
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        self.params[name] = (low + high) // 2
        return self.params[name]


def test_every_method_declares_ranges_its_defaults_lie_in() -> None:
    for name, cls in METHODS.items():
        objective = build_method(name)
        for key, span in cls.tunable.items():
            assert span.low <= getattr(objective, key) <= span.high, (name, key)
        space = search_space([name], {name: TrainConfig(epochs=4, lr=1e-4)}, {})
        picked = suggest(space, MidpointTrial())
        assert picked.method == name and 2e-5 <= picked.config.lr <= 5e-4
        assert 2 <= picked.config.epochs <= 8 and picked.config.max_steps is None
        build_method(name, picked.method_params)  # the sampled values are valid parameters
        (start,) = starting_points(space)
        assert start[f"{name}.lr"] == pytest.approx(1e-4) and start[f"{name}.epochs"] == 4


def test_a_recipe_states_every_setting_it_was_tuned_with() -> None:
    space = search_space(
        ["npo"], {"npo": TrainConfig(lr=2e-5, epochs=8, scheduler="constant")},
        {"npo": {"retain": "kl"}}, steps_range=(10, 40), extras=("lora",),
    )  # fmt: skip
    values = {"lr": 3e-4, "max_steps": 20, "lora_rank": 8, "beta": 0.2, "retain_weight": 2.0}
    picked = candidate(space.methods[0], values)
    settings = recipe_settings(picked)
    assert list(settings)[:4] == ["method", "method_params", "lr", "max_steps"]
    assert settings["method_params"] == {"beta": 0.2, "retain": "kl", "retain_weight": 2.0}
    assert settings["lora"] and settings["lora_rank"] == 8 and settings["scheduler"] == "constant"
    train = {k: v for k, v in settings.items() if k not in ("method", "method_params")}
    assert TrainConfig(**train) == picked.config


# -- a study --------------------------------------------------------------------------------


def test_tune_writes_trials_a_front_and_a_recipe_unlearn_takes(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "tune"
    cli_ok(
        ["tune", "--model", str(tiny_target), "--bench", str(bench_dir), "--method",
         "npo,grad_diff", "--trials", "3", "--steps-range", "2,4", "--max-per-split", "8",
         "--out", str(out)],
        monkeypatch,
    )  # fmt: skip
    with (out / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["number"]) for r in rows] == [0, 1, 2]
    assert {r["method"] for r in rows} == {"npo", "grad_diff"}  # each method's recipe first
    found = json.loads((out / "results.json").read_text())["tune"]
    numbers = {t["number"] for t in found["trials"] if t["state"] == "complete"}
    assert found["pareto_front"] and set(found["pareto_front"]) <= numbers
    chosen = next(t for t in found["trials"] if t["number"] == found["chosen"])
    if any(t["feasible"] for t in found["trials"]):
        feasible = [t["forget_score"] for t in found["trials"] if t["feasible"]]
        assert chosen["feasible"] and chosen["forget_score"] == max(feasible)
    assert found["utility_bound"] == pytest.approx(0.95 * found["start"]["utility"])
    assert found["validation"]["name"] == "validate10"
    assert not list(out.glob("trials/*")) and not (out / "validation" / "oracle").exists()
    page = (out / "report.html").read_text()
    assert "Tuning" in page and "data:image/png" in page and "Pareto" in page

    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe == {k: v for k, v in chosen["recipe"].items()}
    applied = tmp_path / "applied"
    cli_ok(
        ["unlearn", "--model", str(tiny_target), "--forget", str(bench_dir / "forget10.jsonl"),
         "--retain", str(bench_dir / "retain90.jsonl"), "--out", str(applied),
         "--config", str(out / "recipe.yaml"), "--allow-weak"],
        monkeypatch,
    )  # fmt: skip
    manifest = json.loads((applied / "manifest.json").read_text())
    assert manifest["method"] == recipe["method"]
    assert manifest["method_params"] == recipe["method_params"]
    for key in ("lr", "max_steps", "min_steps", "batch_size", "precision"):
        assert manifest["train"][key] == recipe[key], key


def test_an_interrupted_study_resumes_without_rerunning_its_trials(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "tune"
    real = tune_trials._objective
    calls: list[int] = []

    def interrupted_at_the_third(setup: Any, trial: Any) -> Any:
        calls.append(trial.number)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(setup, trial)

    monkeypatch.setattr(tune_trials, "_objective", interrupted_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        api.tune(str(tiny_target), out, bench=bench_dir, trials=4, **FAST)
    journal = tmp_path / ".tune.partial" / "study.journal"
    assert not out.exists() and journal.is_file()
    interrupted = _complete(_study(str(journal), "tune"))
    before = {t.number: (t.params, t.datetime_start) for t in interrupted}
    assert len(before) == 2

    monkeypatch.setattr(tune_trials, "_objective", real)
    result = api.tune(str(tiny_target), out, bench=bench_dir, trials=4, resume=True, **FAST)
    after = _complete(_study(str(out / "study.journal"), "tune"))
    assert len(after) == 4
    for trial in after:
        if trial.number in before:  # the first two were read back, not run again
            assert (trial.params, trial.datetime_start) == before[trial.number]
    assert len(result["tune"]["trials"]) == 4  # the interrupted trial does not count

    # A finished study grows with --resume and a larger --trials.
    more = api.tune(str(tiny_target), out, bench=bench_dir, trials=5, resume=True, **FAST)
    assert len(more["tune"]["trials"]) == 5
    assert len(_complete(_study(str(out / "study.journal"), "tune"))) == 5


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_machines_share_one_study_through_a_storage(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, kind: str
) -> None:
    storage = (
        f"sqlite:///{tmp_path / 'shared.db'}" if kind == "sqlite" else str(tmp_path / "shared.log")
    )
    first = api.tune(
        str(tiny_target), tmp_path / "a", bench=bench_dir, trials=2, storage=storage,
        study="shared", **FAST,
    )  # fmt: skip
    second = api.tune(
        str(tiny_target), tmp_path / "b", bench=bench_dir, trials=3, storage=storage,
        study="shared", **FAST,
    )  # fmt: skip
    assert len(_complete(_study(storage, "shared"))) == 3
    recipes = [t["recipe"] for t in second["tune"]["trials"]]
    assert recipes[:2] == [t["recipe"] for t in first["tune"]["trials"]]
    assert not (tmp_path / "b" / "study.journal").exists()
    with pytest.raises(Exception, match="another search"):
        api.tune(
            str(tiny_target), tmp_path / "c", bench=bench_dir, trials=4, storage=storage,
            study="shared", **(FAST | {"method": "ga"}),
        )  # fmt: skip


def test_jobs_run_trials_in_several_processes(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tune"
    result = api.tune(str(tiny_target), out, bench=bench_dir, trials=4, jobs=2, **FAST)
    trials = result["tune"]["trials"]
    assert len(trials) == 4
    study = _study(str(tmp_path / "tune" / "study.journal"), "tune")
    assert len({t.user_attrs["pid"] for t in _complete(study)}) == 2


def test_tuning_on_your_own_files_reads_only_the_held_out_part(
    tiny_target: Path, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forget = bench_dir / "forget10.jsonl"  # the user's file: two people
    trained: list[set[str]] = []
    evaluated: list[set[str]] = []
    real_unlearn, real_evaluate = tune_trials.unlearn, tune_trials.evaluate_models

    def unlearn(model: str, forget_file: Path, *args: Any, **kwargs: Any) -> Any:
        trained.append({r.id for r in load_records(forget_file)})
        return real_unlearn(model, forget_file, *args, **kwargs)

    def evaluate(models: Any, splits: Any, **kwargs: Any) -> Any:
        evaluated.append({r.id for r in splits["forget"]})
        return real_evaluate(models, splits, **kwargs)

    monkeypatch.setattr(tune_trials, "unlearn", unlearn)
    monkeypatch.setattr(tune_trials, "evaluate_models", evaluate)
    result = api.tune(
        str(tiny_target), tmp_path / "own", forget=forget, retain=bench_dir / "retain90.jsonl",
        trials=2, **FAST,
    )  # fmt: skip
    found = result["tune"]
    part = set(found["validation"]["ids_tuned_on"])
    everyone = load_records(forget)
    rest = {r.id for r in everyone} - part
    assert part and rest
    assert not {r.person for r in everyone if r.id in part} & {
        r.person for r in everyone if r.id in rest
    }
    assert trained and all(ids == part for ids in trained)
    assert evaluated and all(ids <= part for ids in evaluated)
    assert found["objectives"]["forget"] == "forgetting" and found["oracle"]["utility"] is None
    for trial in found["trials"]:
        if trial["state"] == "complete":
            assert trial["forget_score"] <= 1.0
    assert yaml.safe_load((tmp_path / "own" / "recipe.yaml").read_text())["method"]
