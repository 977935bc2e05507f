"""Requests that keep coming: deletion requests unlearned one after another.

MUSE (Shi et al., 2024) asks of an unlearning method that it hold up when removal
requests arrive one after another: request k is unlearned from the model request k − 1
left behind, and after every request the model should look like one retrained without
everyone removed so far, while what it should keep stays. The built-in benchmark's forget
splits are nested (forget01 ⊂ forget05 ⊂ forget10 ⊂ forget25, the last with ``bench make
--forget25``), so a list of them, smallest first, is a sequence of requests: request k
removes the people of split k whom no earlier request removed (its *slice*), and keeps
split k's complement (``retain95`` for ``forget05``) as its retain data.

After each step the model is evaluated as ``obliviate eval`` evaluates it, against the
oracle of that step (the target's fine-tune redone without the people of split k) and
the target, with the slice of every request so far as a split of its own (``request-1``,
``request-2``...), so each earlier request's figures can be followed along the sequence.
:func:`run_sequence` writes one run directory per step (``RUN/step-k``, its manifest
naming the model it started from and the request) and a summary (``RUN/results.json``,
``RUN/summary.md``, ``RUN/sequence.png``, and ``RUN/report.html`` with ``report.md``).
Definitions: ``docs/evaluation.md``, "Requests that keep coming".
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from obliviate.data.loaders import load_records, save_records
from obliviate.data.requests import Request, request_slices
from obliviate.data.scenario import bench_passages, bench_splits, evenly_spaced
from obliviate.data.text import CHUNK_TOKENS
from obliviate.errors import ObliviateError
from obliviate.evaluation.suite import evaluate_models, results_document
from obliviate.evaluation.text import TextSettings
from obliviate.models.loader import remote_code_option
from obliviate.models.precision import check_precision
from obliviate.options import ALLOW_WEAK, EVAL_PRECISION, KEEP_ADAPTER, TRUST_REMOTE_CODE
from obliviate.progress import say
from obliviate.report import write_report
from obliviate.report.sequence import sequence_plot, summary_markdown
from obliviate.rundir import RunDir, sha256_path
from obliviate.train.config import TrainConfig
from obliviate.train.distributed import processes
from obliviate.workflows.inputs import in_memory, named
from obliviate.workflows.training import RunResult, finetune, unlearn, unlearning_plan

# -- the oracle of each step ---------------------------------------------------------------


@dataclass(frozen=True)
class TargetRecipe:
    """How a target was fine-tuned, read from its run directory: what an oracle repeats."""

    base_model: str
    data: Path
    config: TrainConfig
    chunk_tokens: int


def _published(path: Path) -> Path:
    """``path`` as it is once the run directory it was written in is published: a file
    written while its run was staged (``.NAME.partial/...``) now lives under ``NAME/``."""
    parts = [
        part.removeprefix(".").removesuffix(".partial")
        if part.startswith(".") and part.endswith(".partial")
        else part
        for part in path.parts
    ]
    return Path(*parts)


def target_recipe(target: str | Path) -> TargetRecipe:
    """The base model, training data and settings of the fine-tune that made ``target``."""
    directory = Path(target).expanduser()
    manifest_path = directory / "manifest.json"
    instead = "; pass --oracles (one model retrained without the people, per request)"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    if "command" not in manifest:  # a model folder (a loaded model's too), not a run
        raise ObliviateError(f"{directory} is not a fine-tune's run directory{instead}")
    if manifest.get("command") != "finetune" or "primary" not in manifest.get("inputs", {}):
        raise ObliviateError(
            f"{directory} was made by {manifest.get('command')!r}, not a fine-tune, so there is "
            f"no recipe to retrain an oracle with{instead}"
        )
    data = manifest["inputs"]["primary"]
    candidates = [Path(data["path"]), _published(Path(data["path"]))]
    found = [p for p in candidates if p.is_file() and sha256_path(p) == data["sha256"]]
    if not found:
        raise ObliviateError(
            f"the data {directory} was fine-tuned on ({data['path']}) is gone or has changed"
            f"{instead}"
        )
    names = {f.name for f in fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in manifest["train"].items() if k in names})
    chunk_tokens = CHUNK_TOKENS
    config_path = directory / "config.yaml"
    if config_path.is_file():
        settings = yaml.safe_load(config_path.read_text()) or {}
        chunk_tokens = settings.get("data", {}).get("chunk_tokens", CHUNK_TOKENS)
    return TargetRecipe(manifest["model"]["spec"], found[0], config, chunk_tokens)


def retrained_oracle(
    recipe: TargetRecipe,
    removed: frozenset[str],
    out: str | Path,
    config: TrainConfig | None = None,
) -> RunResult:
    """The oracle for ``removed``: the target's fine-tune redone on its own data without
    those people's records (a record without a person, such as a replayed answer, stays),
    with the target's settings unless ``config`` is given. Cached as every fine-tune is
    (``finetune``), so the same people removed from the same target train once."""
    out = Path(out)
    records = load_records(recipe.data)
    kept = [r for r in records if r.person not in removed]
    if len(kept) == len(records):
        raise ObliviateError(
            f"the target's data ({recipe.data}) holds none of the people to remove; give the "
            "target fine-tuned on this benchmark, or --oracles"
        )
    data = out.parent / f"{out.name}.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    save_records(data, kept)
    return finetune(
        recipe.base_model,
        data,
        out,
        config or recipe.config,
        overwrite=True,
        chunk_tokens=recipe.chunk_tokens,
    )


def _check_target(recipe: TargetRecipe, removed: frozenset[str], text: bool) -> None:
    """Refuse, before anything is trained, a target that never learned the people to remove
    or learned them in the other scenario's form (facts for ``text``, or passages only)."""
    records = load_records(recipe.data)
    missing = removed - {r.person for r in records}
    if missing:
        raise ObliviateError(
            f"the target was not fine-tuned on {len(missing)} of the people to remove (its data "
            f"is {recipe.data}); give the target fine-tuned on this benchmark, or --oracles"
        )
    has_text = any(r.is_text for r in records if r.person in removed)
    if text and not has_text:
        raise ObliviateError(
            "--text unlearns passages, but the target learned these people from facts; give "
            "a target fine-tuned on passages (obliviate finetune --text, demo --text)"
        )
    if not text and has_text and all(r.is_text for r in records if r.person in removed):
        raise ObliviateError(
            "the target learned these people from passages only; add --text to unlearn them"
        )


# -- figures ----------------------------------------------------------------------------------


def _get(entry: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    return entry


def headline(entry: dict[str, Any]) -> dict[str, Any]:
    """The figures a sequence or scale table shows, from one model's results entry.

    ``knowmem_forget``/``knowmem_retain`` are MUSE's KnowMem (ROUGE-L F1) of the answers on
    forget and retain (the text part's, which on the benchmark equals the split's
    ``knowmem``); ``privleak`` is the passages' (the text part) or else the answers'.
    """
    text = entry.get("text") or {}
    return {
        "forget_accuracy": _get(entry, "splits", "forget", "accuracy"),
        "knowmem_forget": text.get("knowmem_forget", _get(entry, "splits", "forget", "knowmem")),
        "knowmem_retain": text.get("knowmem_retain", _get(entry, "splits", "retain", "knowmem")),
        "model_utility_neighbors": entry.get("model_utility_neighbors"),
        "forget_quality": entry.get("forget_quality"),
        "verbmem": text.get("verbmem"),
        "privleak": text.get("privleak", entry.get("privleak")),
        "verdicts": text.get("verdicts"),
    }


def _verbmem_of(entry: dict[str, Any], ids: set[str]) -> float | None:
    scores = [e["rouge_l_f1"] for e in _get(entry, "text", "examples") or [] if e.get("id") in ids]
    return sum(scores) / len(scores) if scores else None


def _at_most(value: float | None, bound: float | None) -> bool | None:
    return None if value is None or bound is None else value <= bound


def slice_figures(document: dict[str, Any], requests: list[Request]) -> dict[str, dict[str, Any]]:
    """Each request's slice in one step's evaluation, beside the step's oracle: accuracy,
    KnowMem (MUSE's ROUGE-L F1 of the answers), VerbMem of its passages (text scenario), and
    MUSE's ``no_knowmem``/``no_verbmem`` rules applied to the slice alone."""
    oracle = _get(document, "reference", "oracle") or {}
    out = {}
    for request in requests:
        ids = {r.id for r in request.passages}
        mine = {
            "accuracy": _get(document, "splits", request.name, "accuracy"),
            "knowmem": _get(document, "splits", request.name, "knowmem"),
            "verbmem": _verbmem_of(document, ids),
        }
        theirs = {
            "accuracy": _get(oracle, "splits", request.name, "accuracy"),
            "knowmem": _get(oracle, "splits", request.name, "knowmem"),
            "verbmem": _verbmem_of(oracle, ids),
        }
        out[request.name] = {
            "request": request.split,
            **mine,
            "oracle": theirs,
            "no_knowmem": _at_most(mine["knowmem"], theirs["knowmem"]),
            "no_verbmem": _at_most(mine["verbmem"], theirs["verbmem"]),
        }
    return out


def summarise(
    steps: list[dict[str, Any]], requests: list[Request], settings: dict[str, Any]
) -> dict[str, Any]:
    """RUN/results.json: per step the headline figures of the model, its oracle and the
    target, and every slice so far; per request whether its slice stays forgotten."""
    rows = []
    for request, document in zip(requests, steps, strict=True):
        reference = document.get("reference", {})
        rows.append(
            {
                "step": request.index,
                "request": request.split,
                "run": document["sequence"]["run"],
                "people_removed": len(request.removed),
                "figures": headline(document),
                "oracle": headline(reference["oracle"]) if "oracle" in reference else None,
                "target": headline(reference["target"]) if "target" in reference else None,
                "slices": slice_figures(document, requests[: request.index]),
                "seconds": document["sequence"]["seconds"],
            }
        )
    stays = {}
    for request in requests:
        marks = [row["slices"][request.name]["no_knowmem"] for row in rows[request.index - 1 :]]
        stays[request.name] = None if None in marks else all(marks)
    verdicts = {}
    if settings.get("text"):
        names = [n for row in rows for n in (row["figures"]["verdicts"] or {})]
        for name in dict.fromkeys(names):
            marks = [(row["figures"]["verdicts"] or {}).get(name) for row in rows]
            verdicts[name] = None if None in marks else all(marks)
    return settings | {
        "requests": [
            {"step": r.index, "split": r.split, "people": list(r.people), "records": _count(r)}
            for r in requests
        ],
        "steps": rows,
        "stays_forgotten": stays,
        "verdicts_hold": verdicts or None,
    }


def _count(request: Request) -> int:
    return len(request.passages) if request.passages else len(request.facts)


# -- the run ---------------------------------------------------------------------------------


def _finished(directory: Path) -> dict[str, Any] | None:
    results = directory / "results.json"
    if not results.is_file():
        return None
    document = json.loads(results.read_text())
    return document if "sequence" in document else None


@in_memory(models=("model",), model_lists=("oracles",), path_only=("keep_adapter",))
@remote_code_option
def run_sequence(
    model: str,
    bench: str | Path,
    method: str | None,
    requests: str | Sequence[str],
    out: str | Path,
    *,
    text: bool = False,
    oracles: Sequence[str] | None = None,
    config: TrainConfig | Mapping[str, Any] | None = None,
    method_params: dict[str, Any] | None = None,
    oracle_config: TrainConfig | None = None,
    max_per_split: int | None = None,
    precision: str = EVAL_PRECISION.default,
    text_settings: TextSettings | None = None,
    chunk_tokens: int = CHUNK_TOKENS,
    overwrite: bool = False,
    resume: bool = False,
    allow_weak: bool = ALLOW_WEAK.default,
    trust_remote_code: bool = TRUST_REMOTE_CODE.default,
    keep_adapter: bool = KEEP_ADAPTER.default,
) -> dict[str, Any]:
    """Unlearn ``requests`` (nested forget splits of ``bench``, smallest first) one after
    another from ``model`` with ``method``, evaluating after each; see the module's doc.

    ``oracles`` (one per request) are models retrained without the people of each request's
    split; without them each is fine-tuned from ``model``'s own recipe (its run directory's
    manifest: base model, data, settings, or ``oracle_config``), and cached. ``method``,
    ``config`` and ``method_params`` are every step's unlearning settings, as ``unlearn``
    takes them (None: the recipe of ``model``'s base); a step that does not forget stops
    the sequence unless ``allow_weak`` (as ``unlearn``). ``resume`` continues an
    interrupted sequence after its last finished step. ``keep_adapter`` (with LoRA): each
    step's ``model/`` is its LoRA adapter alone, over the previous step's model (a chain of
    adapters down to ``model``).
    """
    if processes().num_processes > 1:
        raise ObliviateError("obliviate sequence runs in one process; launch it without torchrun")
    check_precision(precision)
    started = time.perf_counter()
    bench = Path(bench).expanduser()
    slices = request_slices(bench, requests, text)
    # An unknown method, parameter or setting, or --keep-adapter where no adapter results,
    # fails before training.
    objective = unlearning_plan(str(model), method, config, method_params, keep_adapter)[0]
    method = objective.name
    if oracles is not None:
        oracles = [str(o) for o in oracles]
        if len(oracles) != len(slices):
            raise ObliviateError(
                f"{len(oracles)} oracles for {len(slices)} requests; give one per request, in order"
            )
        recipe = None
    else:
        recipe = target_recipe(model)
        _check_target(recipe, slices[-1].removed, text)
    text_settings = text_settings or TextSettings()
    run = RunDir(out, overwrite=overwrite, resume=resume)
    documents: list[dict[str, Any]] = []
    previous = str(model)
    for request in slices:
        directory = run.path(f"step-{request.index}")
        done = _finished(directory) if resume else None
        if done is not None:
            say(f"request {request.index}: {request.split} already done, continuing")
            documents.append(done)
            previous = str(directory)
            continue
        say(
            f"[bold]request {request.index}/{len(slices)}[/bold] {request.split}: "
            f"unlearn {len(request.people)} more people with {method}"
        )
        step_started = time.perf_counter()
        forget_file = run.path(f"requests/step-{request.index}.forget.jsonl")
        forget_file.parent.mkdir(parents=True, exist_ok=True)
        save_records(forget_file, request.passages if text else request.facts)
        unlearned = unlearn(
            previous,
            forget_file,
            request.retain,
            method,
            directory,
            config,
            method_params=method_params,
            overwrite=True,
            allow_weak=allow_weak,
            chunk_tokens=chunk_tokens,
            keep_adapter=keep_adapter,
        )
        oracle_started = time.perf_counter()
        oracle_cached = None
        if oracles is not None:
            oracle = oracles[request.index - 1]
        else:
            say(f"oracle {request.index}: the target's fine-tune without {request.split}")
            made = retrained_oracle(
                recipe, request.removed, run.path(f"oracles/step-{request.index}"), oracle_config
            )
            oracle, oracle_cached = str(made.out), made.cached
        eval_started = time.perf_counter()
        splits = bench_splits(bench, request.split, max_per_split)
        for earlier in slices[: request.index]:
            splits[earlier.name] = evenly_spaced(earlier.facts, max_per_split)
        passages = bench_passages(bench, request.split, max_per_split) if text else {}
        evaluations = evaluate_models(
            {"model": directory, "target": model, "oracle": oracle},
            splits,
            on_model=lambda name: say(f"evaluating {name}"),
            precision=precision,
            passages=passages,
            text_settings=text_settings,
        )
        document = results_document(evaluations, main="model", split=request.split)
        block = {
            "step": request.index,
            "steps": len(slices),
            "run": str(directory),
            "request": request.split,
            "previous_request": request.previous,
            "previous_model": previous,
            "target": str(model),
            "people": list(request.people),
            "people_removed": len(request.removed),
            "forget": {
                "path": str(forget_file),
                "sha256": sha256_path(forget_file),
                "records": _count(request),
            },
            "retain": {"path": str(request.retain), "sha256": sha256_path(request.retain)},
            "oracle": oracle,
            "oracle_retrained": oracles is None,
            "oracle_cached": oracle_cached,
            "text": text,
            "seconds": {
                "unlearn": round(unlearned.seconds, 2),
                "oracle": round(eval_started - oracle_started, 2),
                "eval": round(time.perf_counter() - eval_started, 2),
                "step": round(time.perf_counter() - step_started, 2),
            },
        }
        document["sequence"] = block
        document["unlearn"] = {k: v for k, v in unlearned.results.items() if k != "model"}
        block, document = named(block), named(document)  # in-memory inputs by their names
        manifest = json.loads((directory / "manifest.json").read_text())
        run.write_json(f"step-{request.index}/manifest.json", manifest | {"sequence": block})
        run.write_json(f"step-{request.index}/results.json", document)
        write_report([directory], directory / "report.html")
        documents.append(document)
        previous = str(directory)

    settings = {
        "command": "sequence",
        "model": str(model),
        "method": method,
        "method_params": method_params or {},
        "bench": str(bench),
        "text": text,
        "oracles": oracles,
    }
    summary = named(summarise(documents, slices, settings))  # in-memory inputs by their names
    summary["seconds"] = round(time.perf_counter() - started, 2)
    run.path("summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    run.path("sequence.png").write_bytes(sequence_plot(summary).png)
    config = settings | {
        "requests": [r.split for r in slices],
        # every step's schedule, as the first step's manifest records it
        "train": json.loads(run.path("step-1/manifest.json").read_text())["train"],
        "oracle_train": None if oracle_config is None else asdict(oracle_config),
        "max_per_split": max_per_split,
        "eval_precision": precision,
        "chunk_tokens": chunk_tokens,
        "text_settings": asdict(text_settings) if text else None,
    }
    if keep_adapter:  # as unlearn records it: only when given
        config["keep_adapter"] = True
    manifest = {
        "command": "sequence",
        "model": str(model),
        "method": method,
        "chain": [str(model), *(d["sequence"]["run"] for d in documents)],
        "requests": [{"step": r.index, "split": r.split, "people": list(r.people)} for r in slices],
        "oracles": [d["sequence"]["oracle"] for d in documents],
        "inputs": {"bench": {"path": str(bench), "sha256": sha256_path(bench)}},
        "timings": {
            "total_seconds": summary["seconds"],
            "steps": [d["sequence"]["seconds"] for d in documents],
        },
    }
    config, manifest = named(config), named(manifest)
    out = run.finish(summary, config, manifest, report=write_report, relocate=True)
    summary = json.loads((out / "results.json").read_text())
    summary["out"] = str(out)
    return summary
