"""``obliviate eval`` on a behaviour benchmark (SKU's setting): harmful rates, over-refusal
and utility of the model, and of the target beside it, into one run directory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from obliviate.attacks.behaviour import run_behaviour_attacks
from obliviate.data.behaviour import is_behaviour_bench
from obliviate.data.loaders import load_records
from obliviate.data.scenario import evenly_spaced
from obliviate.errors import ObliviateError
from obliviate.evaluation.behaviour import HARMFUL_SPLITS, SPLITS, behaviour_figures, run_behaviour
from obliviate.evaluation.judge import load_judge
from obliviate.evaluation.suite import run_cost
from obliviate.models.loader import load_model, remote_code_option
from obliviate.models.precision import check_precision
from obliviate.options import BEHAVIOUR_NEW_TOKENS, EVAL_PRECISION, JUDGE_LABEL, TRUST_REMOTE_CODE
from obliviate.progress import say
from obliviate.report import write_report
from obliviate.rundir import RunDir, sha256_path
from obliviate.workflows.inputs import in_memory, named


@in_memory(models=("model", "target", "judge"), splits=("bench",))
@remote_code_option
def evaluate_behaviour(
    model: str,
    out: str | Path,
    *,
    bench: str | Path,
    target: str | None = None,
    judge: str | Path | None = None,
    judge_label: str = JUDGE_LABEL.default,
    max_per_split: int | None = None,
    max_new_tokens: int = BEHAVIOUR_NEW_TOKENS.default,
    precision: str = EVAL_PRECISION.default,
    overwrite: bool = False,
    attacks: bool = False,
    trust_remote_code: bool = TRUST_REMOTE_CODE.default,
) -> dict[str, Any]:
    """Harmful rates, over-refusal and utility of ``model`` on a behaviour benchmark (SKU's
    setting, ``obliviate bench make --kind behaviour``: its folder, or a dict of split name →
    records), into run dir ``out``.

    ``target`` is the model before unlearning: the utility ratios compare with it, and its
    own harmful rates are kept beside. ``judge`` is a local sequence-classification model
    to judge responses in place of the marker rule, ``judge_label`` its harmful label.
    ``attacks`` also asks the harmful requests under the in-context and jailbreak attacks
    (``obliviate.attacks.behaviour``; ``behaviour.attacks``, the target's under
    ``behaviour.original.attacks``). Writes ``results.json`` (``behaviour``, see
    ``docs/behaviour.md``), ``behaviour_answers.jsonl`` (every response judged),
    ``report.html``, ``report.md``, ``config.yaml`` and ``manifest.json``.
    """
    check_precision(precision)
    started = time.perf_counter()
    bench = Path(bench).expanduser()
    if not is_behaviour_bench(bench):
        raise ObliviateError(
            f"{bench} is not a behaviour benchmark (no harmful_train.jsonl); make one with "
            "`obliviate bench make --kind behaviour`"
        )
    splits = {
        name: evenly_spaced(load_records(bench / f"{name}.jsonl"), max_per_split)
        for name in SPLITS
        if (bench / f"{name}.jsonl").is_file()
    }
    built = load_judge(judge, judge_label)
    built.check([r for name in HARMFUL_SPLITS.values() for r in splits.get(name, [])])
    run = RunDir(out, overwrite=overwrite)
    models = {"model": model, "target": target}
    models = {role: spec for role, spec in models.items() if spec is not None}
    outputs, attacked = {}, {}
    for role, spec in models.items():
        say(f"evaluating {role}")
        loaded = load_model(spec)
        outputs[role] = run_behaviour(loaded, splits, max_new_tokens, precision)
        if attacks:
            say(f"attacking {role}")
            attacked[role] = run_behaviour_attacks(loaded, splits, built, precision, max_new_tokens)
    figures, rows = behaviour_figures(splits, outputs["model"], built, outputs.get("target"))
    if attacks:
        figures["attacks"], attack_rows = attacked["model"]
        rows += attack_rows
        if "original" in figures:
            figures["original"]["attacks"] = attacked["target"][0]
    provenance = run_cost(model)
    seconds = round(time.perf_counter() - started, 2)
    document: dict[str, Any] = {
        "command": "eval",
        "kind": "behaviour",
        "model": model,
        "target": target,
        "method": provenance["method"],
        "cost": provenance["cost"] | {"eval_seconds": seconds},
        "behaviour": figures,
    }
    run.path("behaviour_answers.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    settings = {
        "attacks": attacks,
        "judge": None if judge is None else str(judge),
        "judge_label": judge_label,
        "max_per_split": max_per_split,
        "max_new_tokens": max_new_tokens,
        "precision": precision,
    }
    config = {"command": "eval", "models": models, "bench": str(bench), **settings}
    manifest = {
        "command": "eval",
        "models": models,
        "inputs": {"bench": {"path": str(bench), "sha256": sha256_path(bench)}},
        "records": {name: len(records) for name, records in splits.items()},
        "timings": {"total_seconds": seconds},
    }
    document, config, manifest = named(document), named(config), named(manifest)
    document["out"] = str(run.finish(document, config, manifest, report=write_report))
    return document
