"""The training workflows: ``obliviate finetune`` (with the fine-tune cache) and
``obliviate unlearn``. Both run one body, :func:`_train_run`: load, encode, measure the
forget records, train, check that something moved, save and publish the run directory.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import broadcast_object_list

from obliviate.cache import cache_root
from obliviate.data.loaders import load_records
from obliviate.data.records import Record
from obliviate.data.scenario import resolve_data
from obliviate.data.text import CHUNK_TOKENS, chunk_passages
from obliviate.errors import ObliviateError
from obliviate.evaluate.accuracy import answer_accuracy
from obliviate.evaluate.model_outputs import answer_logprobs
from obliviate.methods import FineTune, Objective, build_method
from obliviate.methods.base import TrainingContext, mean_answer_logprob, per_example
from obliviate.models.encoding import Encoded, encode_fact, encode_text
from obliviate.models.loader import LoadedModel, load_model, model_fingerprint, save_model
from obliviate.models.precision import resolve_precision
from obliviate.progress import progress_bar, say
from obliviate.rundir import RunDir, package_versions, peak_rss_mb, sha256_path
from obliviate.train.config import FINETUNE_DEFAULTS, TrainConfig
from obliviate.train.distributed import processes
from obliviate.train.loop import TrainSummary, apply_lora, total_steps, train

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


@dataclass
class RunResult:
    """What a training command produced: its run directory and figures."""

    out: Path
    seconds: float
    steps: int
    tokens: int
    cached: bool = False
    results: dict[str, Any] | None = None


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
            loaded.model,
            loaded.tokenizer,
            primary,
            retain,
            primary_records,
            retain_records,
            answer_accuracy=answer_accuracy,
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
    manifest = _manifest(
        command, loaded, objective, config, inputs, summary, seconds, loaded_seconds
    )
    published = run.finish(results, None, manifest)  # config.yaml was written at the start
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
    config = config or FINETUNE_DEFAULTS
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
