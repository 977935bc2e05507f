"""The Python API: one function per command (the CLI is a thin layer over these)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from accelerate.utils import broadcast_object_list

from obliviate.data.loaders import load_records, save_records
from obliviate.data.records import Record
from obliviate.data.text import CHUNK_TOKENS, chunk_passages
from obliviate.errors import ObliviateError
from obliviate.evaluate.model_outputs import answer_logprobs
from obliviate.methods import FineTune, Objective, build_method
from obliviate.methods.base import TrainingContext, mean_answer_logprob, per_example
from obliviate.models.encoding import Encoded, encode_fact, encode_text
from obliviate.models.loader import LoadedModel, load_model, model_fingerprint, save_model
from obliviate.progress import progress_bar, say
from obliviate.rundir import RunDir, package_versions, peak_rss_mb, sha256_path
from obliviate.train.loop import (
    TrainConfig,
    TrainSummary,
    apply_lora,
    check_precision,
    processes,
    resolve_precision,
    total_steps,
    train,
)

if TYPE_CHECKING:
    from obliviate.evaluate.text import TextSettings
    from obliviate.guard.guard import Guard

CACHE_VERSION = "1"
#: Training settings that always enter a fine-tune's cache key. Settings added later enter
#: it only when they differ from their default, so adding an option to the training loop
#: does not throw away every cached target and oracle.
CACHE_KEYED_FIELDS = frozenset(
    {
        "epochs", "max_steps", "lr", "batch_size", "grad_accum", "seed", "lora", "lora_rank",
        "lora_alpha", "weight_decay", "warmup_ratio", "scheduler", "max_grad_norm",
        "precision", "checkpoint_every",
    }
)  # fmt: skip


def cache_root() -> Path:
    """Where fine-tunes and converted models are cached (``$OBLIVIATE_CACHE``)."""
    return Path(os.environ.get("OBLIVIATE_CACHE", Path.home() / ".cache" / "obliviate"))


@dataclass
class RunResult:
    """What a training command produced: its run directory and figures."""

    out: Path
    seconds: float
    steps: int
    tokens: int
    cached: bool = False
    results: dict[str, Any] | None = None


def resolve_data(data: str | Path, text: bool = False) -> Path:
    """A records file or folder, or a benchmark directory: its ``full.jsonl`` (every
    person's facts) or, with ``text``, its ``full.text.jsonl`` (every person's passage)."""
    path = Path(data).expanduser()
    full = path / ("full.text.jsonl" if text else "full.jsonl")
    if path.is_dir() and full.is_file():
        return full
    if text and (path / "full.jsonl").is_file():
        raise ObliviateError(
            f"{path} has no full.text.jsonl (made before benchmarks had passages); "
            "make it again with `obliviate bench make`"
        )
    return path


def encode_records(
    loaded: LoadedModel, records: list[Record], max_text_tokens: int = 512
) -> list[Encoded]:
    """Tokenise once: facts mask the prompt, passages are all label (cut at
    ``max_text_tokens``, special tokens included: chunk long passages first)."""
    return [
        encode_text(loaded.tokenizer, r.text, max_text_tokens)
        if r.is_text
        else encode_fact(loaded.tokenizer, r.prompt, r.answer)
        for r in records
    ]


def _passage_logprob(loaded: LoadedModel, passages: list[Encoded]) -> float | None:
    """Mean over passages of their mean per-token log-probability (None without passages)."""
    if not passages:
        return None
    values = per_example(loaded.model, passages, loaded.tokenizer.pad_token_id, mean_answer_logprob)
    return float(values.mean())


def _from_main(value: Any) -> Any:
    """``value`` as the main process has it, on every process: a decision read from the
    main machine's disk (the fine-tune cache) must be the same on every machine."""
    (value,) = broadcast_object_list([value])
    return value


def _weight_norms(model: torch.nn.Module) -> list[float]:
    return [float(p.detach().float().norm()) for p in model.parameters()]


def _train_run(
    *,
    command: str,
    model: str,
    objective: Objective,
    primary_path: Path,
    retain_path: Path | None,
    out: str | Path,
    config: TrainConfig,
    overwrite: bool,
    resume: bool,
    chunk_tokens: int,
) -> RunResult:
    """Shared body of finetune and unlearn: load, train, check, save, publish.

    Passages longer than ``chunk_tokens`` tokens are cut into chunks once the tokenizer
    is known; every token of a passage (chunk) carries the loss.
    """
    started = time.perf_counter()
    # In a distributed launch every process loads and trains; the main one alone writes
    # the run directory, so it may live on the main machine only.
    main = processes().is_main_process
    primary_records = load_records(primary_path)
    retain_records = load_records(retain_path) if retain_path else None
    run = RunDir(out, overwrite=overwrite, resume=resume, writer=main)
    say(f"loading model [bold]{model}[/bold]")
    loaded = load_model(model)
    loaded_seconds = time.perf_counter() - started
    primary_records = chunk_passages(primary_records, loaded.tokenizer, chunk_tokens)
    if retain_records:
        retain_records = chunk_passages(retain_records, loaded.tokenizer, chunk_tokens)
    # chunk_tokens, plus room for a BOS and the EOS
    primary = encode_records(loaded, primary_records, chunk_tokens + 2)
    retain = encode_records(loaded, retain_records, chunk_tokens + 2) if retain_records else None
    facts = [r for r in primary_records if not r.is_text]
    passages = [e for r, e in zip(primary_records, primary, strict=True) if r.is_text]
    forget_before = _mean(answer_logprobs(loaded.model, loaded.tokenizer, _pairs(facts)))
    text_before = _passage_logprob(loaded, passages)
    objective.prepare(
        TrainingContext(
            loaded.model, loaded.tokenizer, primary, retain, primary_records, retain_records
        )
    )
    if config.lora:
        loaded.model = apply_lora(loaded.model, config)
    norms_before = _weight_norms(loaded.model)
    inputs = {"primary": primary_path, "retain": retain_path}
    run.write_yaml(
        "config.yaml",
        {
            "command": command,
            "model": model,
            "method": objective.name,
            "method_params": objective.params(),
            "data": {k: str(v) for k, v in inputs.items() if v} | {"chunk_tokens": chunk_tokens},
            "train": asdict(config),
        },
    )
    steps = total_steps(len(primary), config, processes().num_processes)
    with progress_bar(f"{command} ({objective.name})", steps) as advance:
        summary = train(
            loaded.model,
            objective,
            primary,
            retain,
            config,
            loaded.tokenizer.pad_token_id,
            run.staging,
            resume=resume,
            on_step=lambda step, _, logs: advance(step, f"loss {logs['loss']:.3f}"),
        )
    if not main:  # the main process checks, saves and publishes the result
        return RunResult(
            out=run.out,
            seconds=time.perf_counter() - started,
            steps=summary.steps,
            tokens=summary.tokens,
        )
    if _weight_norms(loaded.model) == norms_before:
        raise ObliviateError(
            "training finished but no weight changed; raise --lr or --max-steps "
            "(the run was not saved)"
        )
    if config.lora:
        loaded.model = loaded.model.merge_and_unload()
    objective.finalize(loaded.model)
    forget_after = _mean(answer_logprobs(loaded.model, loaded.tokenizer, _pairs(facts)))
    text_after = _passage_logprob(loaded, passages)
    figures = [(forget_before, forget_after), (text_before, text_after)]
    measured = [(b, a) for b, a in figures if b is not None]
    if measured and all(abs(a - b) < 1e-6 for b, a in measured):
        raise ObliviateError(
            "training finished but the records' log-probability did not move; raise --lr or "
            "--max-steps (the run was not saved)"
        )
    save_model(loaded, run.path("model"))
    seconds = time.perf_counter() - started
    results = {
        "model": str(run.out),
        "method": objective.name,
        "primary_answer_logprob": {"before": forget_before, "after": forget_after},
        "primary_text_logprob": {"before": text_before, "after": text_after},
        "cost": _cost(summary, seconds),
    }
    run.write_json("results.json", results)
    run.write_json(
        "manifest.json",
        _manifest(command, loaded, objective, config, inputs, summary, seconds, loaded_seconds),
    )
    published = run.publish()
    return RunResult(
        out=published, seconds=seconds, steps=summary.steps, tokens=summary.tokens, results=results
    )


def _pairs(records: list[Record]) -> list[tuple[str, str]]:
    return [(r.prompt, r.answer) for r in records]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _cost(summary: TrainSummary, seconds: float) -> dict[str, float]:
    return {
        "seconds": round(seconds, 2),
        "train_seconds": round(summary.seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "steps": summary.steps,
        "tokens": summary.tokens,
    }


def _manifest(
    command: str,
    loaded: LoadedModel,
    objective: Objective,
    config: TrainConfig,
    inputs: dict[str, Path | None],
    summary: TrainSummary,
    seconds: float,
    load_seconds: float,
) -> dict[str, Any]:
    return {
        "command": command,
        "model": {"spec": loaded.spec, "source": loaded.source},
        "method": objective.name,
        "method_params": objective.params(),
        "seed": config.seed,
        "train": asdict(config),
        "inputs": {
            name: {"path": str(path), "sha256": sha256_path(path)}
            for name, path in inputs.items()
            if path
        },
        "backend": {
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "precision": resolve_precision(config.precision),
            "processes": processes().num_processes,
            "distributed": summary.distributed,
            "torch_threads": torch.get_num_threads(),
        },
        "versions": package_versions(),
        "timings": {
            "load_seconds": round(load_seconds, 2),
            "train_seconds": round(summary.seconds, 2),
            "total_seconds": round(seconds, 2),
            "resumed_from_step": summary.resumed_from_step,
        },
        "cost": _cost(summary, seconds),
    }


def finetune(
    model: str,
    data: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    overwrite: bool = False,
    resume: bool = False,
    use_cache: bool = True,
    text: bool = False,
    chunk_tokens: int = CHUNK_TOKENS,
) -> RunResult:
    """Fine-tune ``model`` on ``data`` (NLL on answers, or on every token of a passage): how
    targets and oracles are made. ``text`` picks a benchmark directory's passages
    (``full.text.jsonl``) instead of its facts: the text scenario's target.

    The finished run is cached by a hash of (base model, data, hyper-parameters); the
    same request again copies the cached run instead of training.
    """
    config = config or TrainConfig(epochs=5, lr=1e-4, batch_size=16)
    data_path = resolve_data(data, text)
    load_records(data_path)  # validate before hashing the model
    key = finetune_cache_key(model, data_path, config, chunk_tokens)
    cached = cache_root() / "finetunes" / key
    out_path = Path(out).expanduser().resolve()
    main = processes().is_main_process
    hit = use_cache and (cached / "model" / "config.json").is_file() and not resume
    if _from_main(hit):
        if main:
            RunDir(out_path, overwrite=overwrite)  # same checks on --out as a real run
            staging = out_path.parent / f".{out_path.name}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(cached, staging, copy_function=_link_or_copy)
            if out_path.exists():
                shutil.rmtree(out_path)
            staging.rename(out_path)
            say(f"reused cached fine-tune {key[:12]} (same base model, data and settings)")
        return RunResult(out=out_path, seconds=0.0, steps=0, tokens=0, cached=True)
    result = _train_run(
        command="finetune",
        model=model,
        objective=FineTune(),
        primary_path=data_path,
        retain_path=None,
        out=out_path,
        config=config,
        overwrite=overwrite,
        resume=resume,
        chunk_tokens=chunk_tokens,
    )
    if use_cache and main:
        staging = cached.parent / f".{key}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(result.out, staging, copy_function=_link_or_copy)
        shutil.rmtree(cached, ignore_errors=True)
        staging.rename(cached)
    return result


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def finetune_cache_key(
    model: str, data_path: Path, config: TrainConfig, chunk_tokens: int = CHUNK_TOKENS
) -> str:
    """Content hash of what determines a fine-tune's weights (``chunk_tokens`` only when it
    is not the default, so the fine-tunes cached before it existed stay valid)."""
    import hashlib
    import json

    defaults = TrainConfig()
    settings = {
        name: value
        for name, value in asdict(replace(config, checkpoint_every=0)).items()
        if name in CACHE_KEYED_FIELDS or value != getattr(defaults, name)
    }
    payload = {
        "version": CACHE_VERSION,
        "model": model_fingerprint(model),
        "data": sha256_path(data_path),
        "train": settings,
    }
    if chunk_tokens != CHUNK_TOKENS:
        payload["chunk_tokens"] = chunk_tokens
    if processes().num_processes > 1:  # each process adds its micro-batches to every step
        payload["processes"] = processes().num_processes
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def unlearn(
    model: str,
    forget: str | Path,
    retain: str | Path | None,
    method: str,
    out: str | Path,
    config: TrainConfig | None = None,
    method_params: dict[str, Any] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    chunk_tokens: int = CHUNK_TOKENS,
) -> RunResult:
    """Remove ``forget`` from ``model`` with ``method`` (keeping ``retain`` where it uses one).

    Facts and passages may both be forgotten or kept: passages (cut into chunks of at most
    ``chunk_tokens`` tokens) carry the loss on every token, as MUSE's text scenario does.
    """
    objective = build_method(method, method_params)
    if objective.uses_retain and retain is None:
        raise ObliviateError(f"method '{method}' needs retain data; pass --retain FILE")
    return _train_run(
        command="unlearn",
        model=model,
        objective=objective,
        primary_path=Path(forget).expanduser(),
        retain_path=Path(retain).expanduser() if retain else None,
        out=out,
        config=config or TrainConfig(),
        overwrite=overwrite,
        resume=resume,
        chunk_tokens=chunk_tokens,
    )


def sequence(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Unlearn several deletion requests one after another, evaluating after each
    (``obliviate sequence``): see :func:`obliviate.sequence.run_sequence`."""
    from obliviate.sequence import run_sequence

    return run_sequence(*args, **kwargs)


def self_replay_records(model: str, questions: tuple[str, ...]) -> list[Record]:
    """``questions`` answered greedily by ``model`` itself, as records to replay in a fine-tune.

    Training on the base model's own answers keeps its general behaviour while it
    learns new facts (see ``obliviate.data.replay_questions``).
    """
    from obliviate.evaluate.model_outputs import generate_answers

    loaded = load_model(model)
    answers = generate_answers(loaded.model, loaded.tokenizer, questions, max_new_tokens=32)
    return [
        Record(id=f"replay-{i:03d}", prompt=q, answer=a, meta={"replay": True})
        for i, (q, a) in enumerate(zip(questions, answers, strict=True))
        if a.strip()
    ]


def retain_split_for(split: str) -> str | None:
    """The retain split that completes a forget split (``forget10`` → ``retain90``)."""
    share = split.removeprefix("forget")
    if not share.isdigit():
        return None
    return f"retain{100 - int(share):02d}"


def scenario_files(bench: str | Path, split: str, text: bool = False) -> dict[str, Path]:
    """The benchmark files one scenario trains on: ``full`` (the target's data), ``forget``
    (``split``) and ``retain`` (its complement, the oracle's data). ``text`` takes the
    passages (``<split>.text.jsonl``) instead of the facts: MUSE's setting, where target
    and oracle learn the people from prose and unlearning removes the prose."""
    bench = Path(bench).expanduser()
    kind = ".text" if text else ""
    retain = retain_split_for(split)
    if retain is None:
        raise ObliviateError(f"split {split!r} is not a forget split; use e.g. forget10")
    names = {"full": "full", "forget": split, "retain": retain}
    files = {role: bench / f"{name}{kind}.jsonl" for role, name in names.items()}
    for path in files.values():
        if not path.is_file():
            raise ObliviateError(
                f"{path} not found; make the benchmark with `obliviate bench make`"
            )
    return files


def _evenly(records: list[Record], limit: int | None) -> list[Record]:
    """An evenly spaced, deterministic sample of at most ``limit`` records."""
    if limit is None or len(records) <= limit:
        return records
    stride = len(records) / limit
    return [records[int(i * stride)] for i in range(limit)]


def bench_splits(
    bench: str | Path, split: str, max_per_split: int | None = None
) -> dict[str, list[Record]]:
    """The evaluation splits of a benchmark directory: forget, retain, neighbors, holdout, world.

    ``split`` names the forget split's file (``forget10`` → ``forget10.jsonl``); its
    retain split is the complement (``retain90``). Splits the directory lacks are left out.
    ``neighbors`` (the retained people near forget10's) loses anyone the split forgets,
    as a larger split (``forget25``) may.
    """
    bench = Path(bench).expanduser()
    if not (bench / f"{split}.jsonl").is_file():
        available = sorted(p.stem for p in bench.glob("forget*.jsonl") if ".text" not in p.stem)
        hint = (
            f" (it has {', '.join(available)})"
            if available
            else ("; make one with `obliviate bench make --out DIR`")
        )
        raise ObliviateError(f"no split {split!r} in benchmark {bench}{hint}")
    files = {
        "forget": split,
        "retain": retain_split_for(split),
        "neighbors": "neighbors",
        "holdout": "holdout",
        "world": "world",
    }
    loaded = {
        role: load_records(bench / f"{name}.jsonl")
        for role, name in files.items()
        if name and (bench / f"{name}.jsonl").is_file()
    }
    forgotten = {r.person for r in loaded["forget"] if r.person}
    if "neighbors" in loaded:
        loaded["neighbors"] = [r for r in loaded["neighbors"] if r.person not in forgotten]
    return {role: _evenly(records, max_per_split) for role, records in loaded.items()}


def evaluation_splits(
    bench: str | Path | None,
    split: str,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    holdout: str | Path | None = None,
    max_per_split: int | None = None,
) -> dict[str, list[Record]]:
    """The splits to evaluate: a benchmark's, with the user's own files taking precedence.

    Without a benchmark, the built-in world questions stand in for general knowledge.
    """
    from obliviate.data.world_facts import world_records

    if bench is None and forget is None:
        raise ObliviateError("give a benchmark (--bench DIR) or your own records (--forget FILE)")
    splits = bench_splits(bench, split, max_per_split) if bench is not None else {}
    if bench is None:
        splits["world"] = world_records()
    for role, path in (("forget", forget), ("retain", retain), ("holdout", holdout)):
        if path is not None:
            splits[role] = _evenly(load_records(path), max_per_split)
    return splits


def bench_passages(
    bench: str | Path, split: str, max_per_split: int | None = None
) -> dict[str, list[Record]]:
    """A benchmark's passages by role: ``<file>.text.jsonl`` beside the forget split's file,
    its retain split's and the holdout's (those the directory has)."""
    bench = Path(bench).expanduser()
    files = {"forget": split, "retain": retain_split_for(split), "holdout": "holdout"}
    return {
        role: _evenly(load_records(bench / f"{name}.text.jsonl"), max_per_split)
        for role, name in files.items()
        if name and (bench / f"{name}.text.jsonl").is_file()
    }


def evaluation_passages(
    bench: str | Path | None,
    split: str,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    holdout: str | Path | None = None,
    max_per_split: int | None = None,
) -> dict[str, list[Record]]:
    """The passages MUSE's text figures are computed on, by role (forget, retain, holdout).

    A benchmark's passages, with the passages (``{"id", "text"}`` records) of the user's
    own files taking precedence, role by role, as in ``evaluation_splits``. Empty when
    there are none: the evaluation then stays a question-answer one.
    """
    found = bench_passages(bench, split, max_per_split) if bench is not None else {}
    for role, path in (("forget", forget), ("retain", retain), ("holdout", holdout)):
        if path is not None:
            found[role] = _evenly([r for r in load_records(path) if r.is_text], max_per_split)
    return {role: records for role, records in found.items() if records}


def build_guard(spec: str | Path, splits: dict[str, list[Record]]) -> Guard:
    """The guard ``spec`` names, built for the forget split and calibrated on the retained
    questions (retain and neighbors) of ``splits``."""
    from obliviate.guard.guard import Guard, GuardConfig

    negatives = [r for name in ("retain", "neighbors") for r in splits.get(name, [])]
    return Guard.build(GuardConfig.parse(spec), splits["forget"], negatives)


def evaluate(
    model: str,
    out: str | Path,
    *,
    bench: str | Path | None = None,
    split: str = "forget10",
    oracle: str | None = None,
    target: str | None = None,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    holdout: str | Path | None = None,
    max_per_split: int | None = None,
    precision: str = "fp32",
    guard: str | Path | None = None,
    overwrite: bool = False,
    text_settings: TextSettings | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (and the oracle and target, sharing the work) into run dir ``out``.

    With ``guard`` (components or a YAML file, see ``obliviate.guard``) the model is
    evaluated behind it, and ``results.json`` gains a ``guard`` part. With forget
    passages (``evaluation_passages``), it gains ``text``: MUSE's figures, measured as
    ``text_settings`` say. Writes ``results.json`` (see ``docs/evaluation.md``),
    ``report.html`` and ``report.md``.
    """
    from obliviate.evaluate.suite import evaluate_models, guard_figures, results_document
    from obliviate.evaluate.text import TextSettings
    from obliviate.report import write_report

    check_precision(precision)
    started = time.perf_counter()
    splits = evaluation_splits(bench, split, forget, retain, holdout, max_per_split)
    passages = evaluation_passages(bench, split, forget, retain, holdout, max_per_split)
    text_settings = text_settings or TextSettings()
    built = build_guard(guard, splits) if guard is not None else None
    run = RunDir(out, overwrite=overwrite)
    models = {"model": model, "target": target, "oracle": oracle}
    models = {name: spec for name, spec in models.items() if spec is not None}
    evaluations = evaluate_models(
        models,
        splits,
        on_model=lambda n: say(f"evaluating {n}"),
        precision=precision,
        guards={"model": built} if built else None,
        passages=passages,
        text_settings=text_settings,
    )
    document = results_document(evaluations, main="model", split=split)
    if built is not None:
        document["guard"] = guard_figures(evaluations["model"], built)
    run.write_json("results.json", document)
    write_report([run.staging], run.path("report.html"))
    inputs = {"bench": bench, "forget": forget, "retain": retain, "holdout": holdout}
    inputs = {k: v for k, v in inputs.items() if v is not None}
    run.write_yaml(
        "config.yaml",
        {
            "command": "eval",
            "models": models,
            "split": split,
            "max_per_split": max_per_split,
            "precision": precision,
            "guard": None if guard is None else str(guard),
        }
        | ({"text": asdict(text_settings)} if "text" in document else {})
        | {k: str(v) for k, v in inputs.items()},
    )
    run.write_json(
        "manifest.json",
        {
            "command": "eval",
            "models": models,
            "inputs": {k: {"path": str(v), "sha256": sha256_path(v)} for k, v in inputs.items()},
            "splits": {k: len(v) for k, v in splits.items()},
            "passages": {k: len(v) for k, v in passages.items()},
            "versions": package_versions(),
            "timings": {"total_seconds": round(time.perf_counter() - started, 2)},
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
    )
    document["out"] = str(run.publish())
    return document


def audit(
    model: str,
    out: str | Path,
    *,
    bench: str | Path | None = None,
    split: str = "forget10",
    oracle: str | None = None,
    target: str | None = None,
    forget: str | Path | None = None,
    retain: str | Path | None = None,
    holdout: str | Path | None = None,
    attacks: str | list[str] = "all",
    budget: str = "small",
    relearn_steps: int = 16,
    relearn_lr: float = 2e-5,
    relearn_precision: str = "auto",
    seed: int = 0,
    max_per_split: int | None = None,
    precision: str = "fp32",
    guard: str | Path | None = None,
    overwrite: bool = False,
    use_cache: bool = True,
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
    from obliviate.attacks import AuditContext, resolve_attacks, run_audit
    from obliviate.evaluate.suite import run_cost
    from obliviate.report import write_report

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
    run.write_json("results.json", document)
    write_report([run.staging], run.path("report.html"))
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
    run.write_yaml(
        "config.yaml",
        {"command": "audit", "models": models, **settings} | {k: str(v) for k, v in inputs.items()},
    )
    run.write_json(
        "manifest.json",
        {
            "command": "audit",
            "models": models,
            "inputs": {k: {"path": str(v), "sha256": sha256_path(v)} for k, v in inputs.items()},
            "records": {"forget": len(context.forget), "holdout": len(context.holdout)},
            "seed": seed,
            "versions": package_versions(),
            "timings": {"total_seconds": round(time.perf_counter() - started, 2)},
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
    )
    document["out"] = str(run.publish())
    return document


@dataclass(frozen=True)
class DemoRecipe:
    """How the demo fine-tunes and unlearns one base model, tuned on the built-in benchmark:
    the fine-tune must teach ≥ 80 % of the facts, the unlearning must remove most of the
    forget split while keeping retain and world accuracy near the target's."""

    finetune: TrainConfig
    unlearn: TrainConfig
    replay: bool
    """Mix the base model's own answers to general questions into the fine-tunes (a
    pretrained model needs it to keep its general knowledge; a random one has none)."""
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Hyper-parameters per unlearning method, where the method's defaults were not best."""


DEMO_RECIPES: dict[str, DemoRecipe] = {
    "smollm2": DemoRecipe(
        finetune=TrainConfig(
            epochs=7, lr=2e-4, batch_size=16, warmup_ratio=0.05, group_by_length=True
        ),
        unlearn=TrainConfig(epochs=8, lr=2e-5, batch_size=8, scheduler="constant"),
        replay=True,
        method_params={"grad_diff": {"retain_weight": 3.0}},
    ),
    "tiny": DemoRecipe(
        finetune=TrainConfig(
            epochs=30, lr=3e-3, batch_size=16, warmup_ratio=0.05, precision="fp32"
        ),
        unlearn=TrainConfig(epochs=5, lr=5e-4, batch_size=8, precision="fp32"),
        replay=False,
    ),
}


def demo(
    out: str | Path = "runs/demo",
    model: str = "smollm2",
    method: str = "grad_diff",
    seed: int = 0,
    people: int = 40,
    split: str = "forget10",
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
    from obliviate.data.bench import make_benchmark
    from obliviate.data.replay_questions import REPLAY_QUESTIONS

    started = time.perf_counter()
    run = RunDir(out, overwrite=True)
    bench = run.path("bench")
    make_benchmark(bench, seed=seed, people=people)
    files = scenario_files(bench, split, text)
    recipe = DEMO_RECIPES.get(model, DEMO_RECIPES["smollm2"])
    finetune_config = finetune_config or recipe.finetune
    unlearn_config = unlearn_config or recipe.unlearn
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
        method_params=recipe.method_params.get(method),
    )
    say("[bold]4/4[/bold] evaluate target, unlearned model and oracle")
    from obliviate.evaluate.suite import evaluate_models, results_document
    from obliviate.report import write_report

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
    run.write_json("results.json", results)
    write_report([run.staging], run.path("report.html"))
    run.write_yaml(
        "config.yaml",
        {
            "command": "demo",
            "model": model,
            "method": method,
            "seed": seed,
            "people": people,
            "split": split,
            "text": text,
            "finetune": asdict(finetune_config),
            "unlearn": asdict(unlearn_config),
            "method_params": recipe.method_params.get(method, {}),
            "max_eval_per_split": max_eval_per_split,
        },
    )
    run.write_json(
        "manifest.json",
        {
            "command": "demo",
            "seed": seed,
            "versions": package_versions(),
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
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
    )
    results["out"] = str(run.publish())
    results["report"] = str(Path(results["out"]) / "report.html")
    results["cached"] = {"target": target.cached, "oracle": oracle.cached}
    return results


def evaluate_behaviour(
    model: str,
    out: str | Path,
    *,
    bench: str | Path,
    target: str | None = None,
    judge: str | Path | None = None,
    judge_label: str = "1",
    max_per_split: int | None = None,
    max_new_tokens: int = 64,
    precision: str = "fp32",
    overwrite: bool = False,
    attacks: bool = False,
) -> dict[str, Any]:
    """Harmful rates, over-refusal and utility of ``model`` on a behaviour benchmark (SKU's
    setting, ``obliviate bench make --kind behaviour``), into run dir ``out``.

    ``target`` is the model before unlearning: the utility ratios compare with it, and its
    own harmful rates are kept beside. ``judge`` is a local sequence-classification model
    to judge responses in place of the marker rule, ``judge_label`` its harmful label.
    ``attacks`` also asks the harmful requests under the in-context and jailbreak attacks
    (``obliviate.attacks.behaviour``; ``behaviour.attacks``, the target's under
    ``behaviour.original.attacks``). Writes ``results.json`` (``behaviour``, see
    ``docs/behaviour.md``), ``behaviour_answers.jsonl`` (every response judged),
    ``report.html``, ``report.md``, ``config.yaml`` and ``manifest.json``.
    """
    import json

    from obliviate.attacks.behaviour import run_behaviour_attacks
    from obliviate.data.behaviour import is_behaviour_bench
    from obliviate.evaluate.behaviour import (
        HARMFUL_SPLITS,
        SPLITS,
        behaviour_figures,
        run_behaviour,
    )
    from obliviate.evaluate.judge import load_judge
    from obliviate.evaluate.suite import run_cost
    from obliviate.report import write_report

    check_precision(precision)
    started = time.perf_counter()
    bench = Path(bench).expanduser()
    if not is_behaviour_bench(bench):
        raise ObliviateError(
            f"{bench} is not a behaviour benchmark (no harmful_train.jsonl); make one with "
            "`obliviate bench make --kind behaviour`"
        )
    splits = {
        name: _evenly(load_records(bench / f"{name}.jsonl"), max_per_split)
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
    run.write_json("results.json", document)
    run.path("behaviour_answers.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    write_report([run.staging], run.path("report.html"))
    settings = {
        "attacks": attacks,
        "judge": None if judge is None else str(judge),
        "judge_label": judge_label,
        "max_per_split": max_per_split,
        "max_new_tokens": max_new_tokens,
        "precision": precision,
    }
    run.write_yaml(
        "config.yaml", {"command": "eval", "models": models, "bench": str(bench), **settings}
    )
    run.write_json(
        "manifest.json",
        {
            "command": "eval",
            "models": models,
            "inputs": {"bench": {"path": str(bench), "sha256": sha256_path(bench)}},
            "records": {name: len(records) for name, records in splits.items()},
            "versions": package_versions(),
            "timings": {"total_seconds": seconds},
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
    )
    document["out"] = str(run.publish())
    return document
