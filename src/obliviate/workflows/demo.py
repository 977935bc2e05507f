"""``obliviate demo``: the whole story on one model — benchmark, target and oracle
fine-tunes, unlearning, evaluation — with the model's recipe (``obliviate/recipes``); with
``--quick``, a topic the model already knows, unlearned and judged in a few minutes."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from obliviate.cache import cache_root
from obliviate.data.bench import make_benchmark
from obliviate.data.loaders import load_records, save_records
from obliviate.data.replay_questions import REPLAY_QUESTIONS
from obliviate.data.scenario import (
    bench_passages,
    bench_splits,
    mia_applicability,
    scenario_files,
)
from obliviate.evaluation.overlap import dropped_warnings, without_overlap
from obliviate.evaluation.suite import evaluate_models, results_document
from obliviate.options import (
    BASE_MODEL,
    DEMO_METHOD,
    DEMO_OUT,
    DEMO_SEED,
    KNOWN_SCREEN,
    KNOWN_TOPIC,
    PEOPLE,
    SPLIT,
)
from obliviate.progress import say, warn
from obliviate.report import write_report
from obliviate.rundir import RunDir, sha256_path
from obliviate.train.config import TrainConfig
from obliviate.train.recipes import load_recipe, recipe_for
from obliviate.workflows.known import make_known_bench
from obliviate.workflows.training import finetune, self_replay_records, unlearn


def demo(
    out: str | Path = DEMO_OUT.default,
    model: str = BASE_MODEL.default,
    method: str | None = DEMO_METHOD.default,
    seed: int = DEMO_SEED.default,
    people: int = PEOPLE.default,
    split: str = SPLIT.default,
    finetune_config: TrainConfig | None = None,
    unlearn_config: TrainConfig | None = None,
    max_eval_per_split: int = 100,
    text: bool = False,
) -> dict[str, Any]:
    """The whole story on one model: benchmark → target and oracle → unlearn → evaluate.

    Target and oracle fine-tunes are cached, so a second run only unlearns and evaluates.
    With ``text``, target and oracle are fine-tuned on the people's passages and the
    forget split's passages are unlearned (``scenario_files``); the same recipe serves.
    ``out`` is replaced by each demo run (atomically).
    """
    started = time.perf_counter()
    run = RunDir(out, overwrite=True)
    bench = run.path("bench")
    make_benchmark(bench, seed=seed, people=people)
    files = scenario_files(bench, split, text)
    recipe = load_recipe(model)
    method = method or recipe.default_method
    finetune_config = finetune_config or recipe.finetune
    # The schedule the demo's figures were measured with: the recipe's epochs alone, for
    # every method (min_steps and the methods' own train entries are unlearn's defaults).
    unlearn_config = unlearn_config or replace(recipe.unlearn, min_steps=0)
    replay = []
    if recipe.replay:
        say("replaying the base model's own answers to general questions during fine-tuning")
        replay = self_replay_records(model, REPLAY_QUESTIONS)
    target_data, oracle_data = run.path("train/target.jsonl"), run.path("train/oracle.jsonl")
    save_records(target_data, load_records(files["full"]) + replay)
    save_records(oracle_data, load_records(files["retain"]) + replay)
    say("[bold]1/4[/bold] target: fine-tune on every fictitious person")
    target = finetune(model, target_data, run.path("target"), finetune_config)
    say("[bold]2/4[/bold] oracle: fine-tune on the retained people only (retrain gold standard)")
    oracle = finetune(model, oracle_data, run.path("oracle"), finetune_config)
    say(f"[bold]3/4[/bold] unlearn {split} from the target with {method}")
    unlearned = unlearn(
        str(target.out),
        files["forget"],
        files["retain"],
        method,
        run.path("unlearned"),
        unlearn_config,
        method_params=recipe.method_params(method),
    )
    say("[bold]4/4[/bold] evaluate target, unlearned model and oracle")
    splits = bench_splits(bench, split, max_eval_per_split)
    # The text scenario is judged by MUSE's figures on the passages as well.
    passages = bench_passages(bench, split, max_eval_per_split) if text else None
    evaluations = evaluate_models(
        {"unlearned": unlearned.out, "target": target.out, "oracle": oracle.out},
        splits,
        passages=passages,
        cache=cache_root(),
    )
    results = results_document(evaluations, main="unlearned", split=split)
    results |= {"base_model": model, "total_seconds": round(time.perf_counter() - started, 2)}
    config = {
        "command": "demo",
        "model": model,
        "method": method,
        "seed": seed,
        "people": people,
        "split": split,
        "text": text,
        "finetune": asdict(finetune_config),
        "unlearn": asdict(unlearn_config),
        "method_params": recipe.method_params(method),
        "max_eval_per_split": max_eval_per_split,
    }
    manifest = {
        "command": "demo",
        "seed": seed,
        "timings": {
            "total_seconds": round(time.perf_counter() - started, 2),
            "target_seconds": round(target.seconds, 2),
            "target_cached": target.cached,
            "oracle_seconds": round(oracle.seconds, 2),
            "oracle_cached": oracle.cached,
            "unlearn_seconds": round(unlearned.seconds, 2),
            "eval_seconds": {k: round(v.eval_seconds, 2) for k, v in evaluations.items()},
        },
        "inputs": {"bench": sha256_path(bench)},
    }
    results["out"] = str(run.finish(results, config, manifest, report=write_report))
    results["report"] = str(Path(results["out"]) / "report.html")
    results["cached"] = {"target": target.cached, "oracle": oracle.cached}
    return results


#: Records per split the quick demo evaluates at most (evenly spaced): every forget fact
#: and neighbour of a topic (15 and 13 on the default model), 20 of the retain and world
#: questions (39 and 60), to stay within a few minutes on two cores.
QUICK_MAX_PER_SPLIT = 20


def quick_demo(
    out: str | Path = DEMO_OUT.default,
    model: str = BASE_MODEL.default,
    method: str | None = DEMO_METHOD.default,
    topic: str | None = KNOWN_TOPIC.default,
    screen: bool = KNOWN_SCREEN.default,
) -> dict[str, Any]:
    """Forgetting shown in a few minutes: no fine-tune, a topic the model already knows.

    The known-knowledge benchmark (``bench make --kind known``: facts of one topic the
    model answers, screened once and cached), the topic unlearned from the model itself
    with the recipe of its base (``method`` None: the recipe's ``known_method``, tuned for
    knowledge from pretraining; published even where the run's own check finds it weak,
    so the verdict can say so), then both evaluated side by side against the starting
    model: the verdict, forget and paraphrase accuracy, neighbours, retain and general
    questions (at most ``QUICK_MAX_PER_SPLIT`` of each; the starting model's evaluation is
    cached). ``screen`` False keeps every candidate fact (a model that knows none, such
    as the tests' tiny one). ``out`` is replaced by each run (atomically).
    """
    started = time.perf_counter()
    method = method or recipe_for(model)[0].method_for_known  # as unlearn finds the recipe
    run = RunDir(out, overwrite=True)
    bench = run.path("bench")
    say("[bold]1/3[/bold] benchmark: facts of one topic the model answers (screened, cached)")
    known = make_known_bench(bench, topic=topic, model=model, screen=screen)
    say(f"[bold]2/3[/bold] unlearn {known.document['topic']} from {model} with {method}")
    unlearned = unlearn(
        model,
        bench / "forget.jsonl",
        bench / "retain.jsonl",
        method,
        run.path("unlearned"),
        allow_weak=True,
    )
    say("[bold]3/3[/bold] evaluate the unlearned model against the starting model")
    chosen = bench_splits(bench, known.document["split"], QUICK_MAX_PER_SPLIT)
    splits, overlap = without_overlap(chosen)
    for line in dropped_warnings(overlap, splits):
        warn(line)
    evaluations = evaluate_models(
        {"unlearned": unlearned.out, "target": model}, splits, cache=cache_root()
    )
    results = results_document(
        evaluations,
        main="unlearned",
        split=known.document["split"],
        mia_note=mia_applicability(bench),  # invented holdout facts: no membership inference
    )
    results |= {"base_model": model, "topic": known.document["topic"], "overlap": overlap}
    config = {"command": "demo", "quick": True, "model": model, "method": method}
    config["topic"] = known.document["topic"]
    manifest = {
        "command": "demo",
        "quick": True,
        "timings": {
            "total_seconds": round(time.perf_counter() - started, 2),
            "unlearn_seconds": round(unlearned.seconds, 2),
            "eval_seconds": {k: round(v.eval_seconds, 2) for k, v in evaluations.items()},
        },
        "inputs": {"bench": sha256_path(bench)},
    }
    results["out"] = str(run.finish(results, config, manifest, report=write_report))
    results["report"] = str(Path(results["out"]) / "report.html")
    return results
