"""The training workflows: ``obliviate finetune`` (with the fine-tune cache) and
``obliviate unlearn``. Both run one body, :func:`_train_run`: load, encode, measure the
forget records, train, check that something moved, save and publish the run directory.
Unlearning starts from the recipe of the model's base (``train.recipes.recipe_for``) and
adds the checks of ``train.health``: the retain probe during training (no silent
collapse) and the forget and retain figures against the start (no silent no-op).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import broadcast_object_list

from obliviate.cache import cache_root
from obliviate.data.loaders import load_records
from obliviate.data.records import Record, overlap_count
from obliviate.data.scenario import evenly_spaced, resolve_data
from obliviate.data.text import CHUNK_TOKENS, chunk_passages
from obliviate.data.world_facts import world_records
from obliviate.errors import ObliviateError
from obliviate.evaluation.accuracy import answer_accuracy
from obliviate.evaluation.model_outputs import answer_logprobs
from obliviate.evaluation.overlap import drop_overlap
from obliviate.methods import FineTune, Objective, build_method
from obliviate.methods.base import TrainingContext, mean_answer_logprob, per_example
from obliviate.models.adapters import ADAPTER_CONFIG
from obliviate.models.encoding import Encoded, encode_fact, encode_text, fit_facts
from obliviate.models.loader import (
    LoadedModel,
    context_tokens,
    load_model,
    model_fingerprint,
    remote_code_option,
    save_model,
)
from obliviate.models.precision import resolve_precision
from obliviate.models.specs import base_reference
from obliviate.options import ALLOW_WEAK, KEEP_ADAPTER, TRUST_REMOTE_CODE
from obliviate.progress import progress_bar, say, warn
from obliviate.report.model_card import model_card
from obliviate.rundir import (
    RunDir,
    fsync_tree,
    package_versions,
    peak_rss_mb,
    sha256_path,
    writing,
)
from obliviate.train.adapter import adapter_record, check_adapter_kept
from obliviate.train.config import TrainConfig
from obliviate.train.distributed import processes
from obliviate.train.health import (
    PROBE_SIZE,
    RETAIN_SAMPLE,
    RetainProbe,
    forget_verdict,
    mean_logprob,
    weak_run_message,
)
from obliviate.train.loop import TrainSummary, apply_lora, total_steps, train
from obliviate.train.recipes import recipe_for
from obliviate.train.resume import check_resumed, input_hashes
from obliviate.workflows.inputs import in_memory, named

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

    @property
    def model_dir(self) -> Path:
        """The trained model's folder (Hugging Face layout, safetensors)."""
        return self.out / "model"

    def load(self) -> tuple[Any, Any]:
        """The trained model and its tokenizer, loaded as every command loads a model
        (transformers, nothing downloaded, no model folder's Python run)."""
        loaded = load_model(str(self.model_dir))
        return loaded.model, loaded.tokenizer


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
    allow_weak: bool = False,
    recipe: dict[str, str] | None = None,
    keep_adapter: bool = False,
) -> RunResult:
    """Shared body of finetune and unlearn: load, train, check, save, publish.

    Passages longer than ``chunk_tokens`` tokens are cut into chunks once the tokenizer
    is known; every token of a passage (chunk) carries the loss. Unlearning (``command``
    ``unlearn``) adds the checks of ``train.health``: the collapse probe during training,
    and after it the forget verdict (not ``forgot`` → an error, unless ``allow_weak``) and
    the retain figures; ``recipe`` is the record of the recipe applied. With
    ``keep_adapter``, the LoRA adapter is measured and saved unmerged (``train.adapter``).
    """
    started = time.perf_counter()
    # In a distributed launch every process loads and trains; the main one alone writes
    # the run directory, so it may live on the main machine only.
    main = processes().is_main_process
    primary_records = load_records(primary_path)
    retain_records = load_records(retain_path) if retain_path else None
    run = RunDir(out, overwrite=overwrite, resume=resume, writer=main)
    hashes = input_hashes({"primary": primary_path, "retain": retain_path})
    if resume and main:
        check_resumed(
            run.path("config.yaml"),
            {
                "command": command,
                "model": named(model),
                "method": objective.name,
                "method_params": objective.params(),
                "data": {"chunk_tokens": chunk_tokens, "sha256": hashes},
                "train": asdict(config),
            },
        )
    if resume and _from_main(main and run.finished):
        return _publish_finished(run)  # killed while publishing: publish it as it was
    warnings = _overlap_warnings(primary_records, retain_records)
    say(f"loading model [bold]{named(model)}[/bold]")
    loaded = load_model(model)
    loaded_seconds = time.perf_counter() - started
    primary_records = chunk_passages(primary_records, loaded.tokenizer, chunk_tokens)
    if retain_records:
        retain_records = chunk_passages(retain_records, loaded.tokenizer, chunk_tokens)
    limit = context_tokens(loaded)
    primary_records, cut = fit_facts(loaded.tokenizer, primary_records, limit)
    retain_cut = 0
    if retain_records:
        retain_records, retain_cut = fit_facts(loaded.tokenizer, retain_records, limit)
    if cut or retain_cut:
        warnings.append(
            f"{cut} forget and {retain_cut} retain records were longer than the model reads "
            f"({limit} tokens): their answers were cut to fit"
        )
    # chunk_tokens, plus room for a BOS and the EOS
    primary = encode_records(loaded, primary_records, chunk_tokens + 2)
    retain = encode_records(loaded, retain_records, chunk_tokens + 2) if retain_records else None
    # The figures before and after training: on a bounded, evenly spaced sample.
    all_facts = [r for r in primary_records if not r.is_text]
    all_passages = [e for r, e in zip(primary_records, primary, strict=True) if r.is_text]
    facts = evenly_spaced(all_facts, FORGET_FIGURES_SAMPLE)
    passages = evenly_spaced(all_passages, FORGET_FIGURES_SAMPLE)
    sampled = {
        "limit": FORGET_FIGURES_SAMPLE,
        "facts": len(facts),
        "facts_total": len(all_facts),
        "passages": len(passages),
        "passages_total": len(all_passages),
    }
    if len(facts) < len(all_facts) or len(passages) < len(all_passages):
        say(
            f"the forget figures before and after training are measured on an evenly spaced "
            f"sample of {FORGET_FIGURES_SAMPLE} records of each kind"
        )
    forget_before = _mean(answer_logprobs(loaded.model, loaded.tokenizer, _pairs(facts)))
    text_before = _passage_logprob(loaded, passages)
    unlearning = command == "unlearn"
    # A method that turns the trained weights into its result afterwards (task-vector
    # negation) trains a model that is not the result: its probe would judge the wrong one.
    probed = unlearning and type(objective).finalize is Objective.finalize
    if unlearning:
        pad = loaded.tokenizer.pad_token_id
        kept, retain_source = _kept_records(retain_records, all_facts)
        retain_sample = encode_records(loaded, evenly_spaced(kept, RETAIN_SAMPLE))
        retain_before = mean_logprob(loaded.model, retain_sample, pad)
        probe_examples = encode_records(loaded, evenly_spaced(kept, PROBE_SIZE))
        vocab_size = loaded.model.get_output_embeddings().weight.shape[0]
        probe = RetainProbe.of(loaded.model, probe_examples, pad, vocab_size, retain_source)
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
            "model": named(model),
            "method": objective.name,
            "method_params": objective.params(),
            "data": {k: named(str(v)) for k, v in inputs.items() if v}
            | {"chunk_tokens": chunk_tokens, "sha256": hashes},
            "train": asdict(config),
        }
        | ({"recipe": recipe, "allow_weak": allow_weak} if unlearning else {})
        | ({"keep_adapter": True} if keep_adapter else {}),
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
            health_check=probe if probed else None,
        )
    if not main:  # the main process checks, saves and publishes the result
        return RunResult(
            out=run.out,
            seconds=time.perf_counter() - started,
            steps=summary.steps,
            tokens=summary.tokens,
        )
    if not unlearning and _weight_norms(loaded.model) == norms_before:  # unlearning: checks
        raise ObliviateError(
            "training finished but no weight changed; raise --lr or --max-steps "
            "(the run was not saved)"
        )
    if config.lora and not keep_adapter:
        loaded.model = loaded.model.merge_and_unload()
    objective.finalize(loaded.model)
    forget_after = _mean(answer_logprobs(loaded.model, loaded.tokenizer, _pairs(facts)))
    text_after = _passage_logprob(loaded, passages)
    figures = [(forget_before, forget_after), (text_before, text_after)]
    measured = [(b, a) for b, a in figures if b is not None]
    if not unlearning and measured and all(abs(a - b) < 1e-6 for b, a in measured):
        raise ObliviateError(
            "training finished but the records' log-probability did not move; raise --lr or "
            "--max-steps (the run was not saved)"
        )
    checks = None
    if unlearning:
        forget = forget_verdict({"answers": figures[0], "passages": figures[1]})
        retain_after = mean_logprob(loaded.model, retain_sample, pad)
        checks = {
            "forget": forget,
            "retain": {
                "before": retain_before,
                "after": retain_after,
                "change": retain_after - retain_before,
                "records": len(retain_sample),
                "source": retain_source,
            },
            "collapse": probe.record(config.collapse_check_every if probed else 0)
            | ({} if probed else {"skipped": f"{objective.name} makes its result after training"}),
            "verdict": forget["verdict"],
            "allow_weak": allow_weak,
        }
        if forget["verdict"] != "forgot" and not allow_weak:
            raise ObliviateError(weak_run_message(forget, config.lr, steps))
    base = base_reference(model) if keep_adapter else None
    save_model(loaded, run.path("model"), base)
    seconds = time.perf_counter() - started
    results = {
        "model": str(run.out),
        "method": objective.name,
        "primary_answer_logprob": {"before": forget_before, "after": forget_after},
        "primary_text_logprob": {"before": text_before, "after": text_after},
        "cost": _cost(summary, seconds),
    }
    results["primary_measured_on"] = sampled
    results["records_cut_to_context"] = {"max_tokens": limit, "primary": cut, "retain": retain_cut}
    results["warnings"] = warnings
    for warning in warnings:
        warn(warning)
    manifest = _manifest(
        command, loaded, objective, config, inputs, summary, seconds, loaded_seconds
    )
    if unlearning:
        results |= {"checks": checks, "recipe": recipe}
        manifest |= {"checks": checks, "recipe": recipe}
    if outcome := objective.outcome():
        results["method_outcome"] = manifest["method_outcome"] = outcome
    if base is not None:
        manifest["adapter"] = adapter_record(base, config)
    results, manifest = named(results), named(manifest)  # in-memory inputs by their names
    if run.writer:
        (run.path("model") / "README.md").write_text(model_card(results, manifest), "utf-8")
    published = run.finish(results, None, manifest)  # config.yaml was written at the start
    return RunResult(
        out=published, seconds=seconds, steps=summary.steps, tokens=summary.tokens, results=results
    )


def _kept_records(
    retain_records: list[Record] | None, forget_facts: list[Record]
) -> tuple[list[Record], str]:
    """The records the retain check and the collapse probe measure, and which they are:
    the retain records, or without them the built-in world questions with their gold
    answers, less those about what is being forgotten (``evaluation.overlap``)."""
    if retain_records:
        return retain_records, "retain"
    return drop_overlap(world_records(), forget_facts)[0], "world"


#: Forget records whose figures are measured before and after training, at most (evenly
#: spaced): measuring 100,000 records twice would cost more than a short run's training.
FORGET_FIGURES_SAMPLE = 512


def _overlap_warnings(primary: list[Record], retain: list[Record] | None) -> list[str]:
    """A warning when forget and retain records overlap (the same question and answer)."""
    shared = overlap_count(primary, retain) if retain else 0
    if not shared:
        return []
    return [
        f"{shared} of the {len(primary)} forget records are also in the retain set (the same "
        "question and answer, or passage): the method is asked to forget and keep them"
    ]


def _publish_finished(run: RunDir) -> RunResult:
    """Publish a staged run that was finished (killed while it was being published)."""
    results = json.loads(run.path("results.json").read_text(encoding="utf-8"))
    manifest = json.loads(run.path("manifest.json").read_text(encoding="utf-8"))
    out = run.publish()
    say(f"the interrupted run had finished; published it to {out}")
    cost = manifest.get("cost") or {}
    return RunResult(
        out=out,
        seconds=float(cost.get("seconds") or 0.0),
        steps=int(cost.get("steps") or 0),
        tokens=int(cost.get("tokens") or 0),
        results=results,
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


@in_memory(models=("model",), records=("data",), path_only=("keep_adapter",))
@remote_code_option
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
    trust_remote_code: bool = TRUST_REMOTE_CODE.default,
    keep_adapter: bool = KEEP_ADAPTER.default,
) -> RunResult:
    """Fine-tune ``model`` on ``data`` (NLL on answers, or on every token of a passage): how
    targets and oracles are made. ``text`` picks a benchmark directory's passages
    (``full.text.jsonl``) instead of its facts: the text scenario's target. Without
    ``config``, the schedule is the ``finetune`` of the recipe of ``model``'s base.

    The finished run is cached by a hash of (base model, data, hyper-parameters); the
    same request again copies the cached run instead of training. ``keep_adapter`` (with
    LoRA): ``model/`` holds the adapter alone, over ``model``.
    """
    config = config or recipe_for(model)[0].finetune
    check_adapter_kept(keep_adapter, config, FineTune())
    data_path = resolve_data(data, text)
    load_records(data_path)  # validate before hashing the model
    key = finetune_cache_key(model, data_path, config, chunk_tokens, keep_adapter)
    cached = cache_root() / "finetunes" / key
    out_path = Path(out).expanduser().resolve()
    main = processes().is_main_process
    saved = cached / "model" / (ADAPTER_CONFIG if keep_adapter else "config.json")
    hit = use_cache and saved.is_file() and not resume
    if _from_main(hit):
        if main:
            run = RunDir(out_path, overwrite=overwrite)  # same checks on --out as a real run
            # Copies, never hard links: editing one run's files changes no other run.
            with writing(run.staging):
                shutil.copytree(cached, run.staging, dirs_exist_ok=True)
            run.publish()
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
        keep_adapter=keep_adapter,
    )
    if use_cache and main:
        # A staging folder of this process's own: two runs storing one key do not mix files.
        staging = cached.parent / f".{key}.{os.getpid()}.{secrets.token_hex(4)}.partial"
        with writing(staging):
            shutil.copytree(result.out, staging)
            fsync_tree(staging)
        shutil.rmtree(cached, ignore_errors=True)
        try:
            staging.rename(cached)
        except OSError:  # another run stored the same fine-tune meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return result


def finetune_cache_key(
    model: str,
    data_path: Path,
    config: TrainConfig,
    chunk_tokens: int = CHUNK_TOKENS,
    keep_adapter: bool = KEEP_ADAPTER.default,
) -> str:
    """Content hash of what determines a fine-tune's weights (``chunk_tokens`` and
    ``keep_adapter`` only when not the default, so the fine-tunes cached before they
    existed stay valid). An adapter ``model`` is keyed by its files and its base's."""
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
    if keep_adapter:
        payload["keep_adapter"] = True
    if processes().num_processes > 1:  # each process adds its micro-batches to every step
        payload["processes"] = processes().num_processes
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def unlearning_plan(
    model: str,
    method: str | None,
    config: TrainConfig | Mapping[str, Any] | None,
    method_params: dict[str, Any] | None,
    keep_adapter: bool = False,
) -> tuple[Objective, TrainConfig, dict[str, str] | None]:
    """What ``unlearn`` runs (see there for how ``config`` and ``method_params`` go over the
    recipe): the objective, the schedule and the record of the recipe applied (None for a
    whole ``TrainConfig``). Every setting is checked here, so ``sequence`` can check each
    step's before the first trains."""
    recipe, choice = recipe_for(model)
    method = method or recipe.default_method
    if isinstance(config, TrainConfig):
        settings, params, applied = config, dict(method_params or {}), None
    else:
        given = dict(config or {})
        unknown = sorted(set(given) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise ObliviateError(f"unknown training setting '{unknown[0]}'; see TrainConfig")
        settings = replace(recipe.unlearn_config(method), **given)
        params = recipe.method_params(method) | dict(method_params or {})
        applied = choice.record()
    objective = build_method(method, params)
    check_adapter_kept(keep_adapter, settings, objective)
    return objective, settings, applied


@in_memory(models=("model",), records=("forget", "retain"), path_only=("keep_adapter",))
@remote_code_option
def unlearn(
    model: str,
    forget: str | Path,
    retain: str | Path | None,
    method: str | None,
    out: str | Path,
    config: TrainConfig | Mapping[str, Any] | None = None,
    method_params: dict[str, Any] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    chunk_tokens: int = CHUNK_TOKENS,
    allow_weak: bool = ALLOW_WEAK.default,
    trust_remote_code: bool = TRUST_REMOTE_CODE.default,
    keep_adapter: bool = KEEP_ADAPTER.default,
) -> RunResult:
    """Remove ``forget`` from ``model`` with ``method`` (keeping ``retain`` where it uses one).

    Facts and passages may both be forgotten or kept: passages (cut into chunks of at most
    ``chunk_tokens`` tokens) carry the loss on every token, as MUSE's text scenario does.

    The settings start from the recipe of ``model``'s base (``recipe_for``): ``method``
    None is its ``default_method``; ``config`` None is its schedule for the method, a
    mapping of TrainConfig fields goes over that schedule, and ``method_params`` over its
    parameters for the method. A ``TrainConfig`` is the whole schedule instead, with
    ``method_params`` alone (no recipe). A run whose forget figures did not fall by
    ``health.FORGET_MARGIN`` raises ``ObliviateError`` and publishes nothing, unless
    ``allow_weak``; one whose retain probe collapses stops (``health.RetainProbe``).
    ``keep_adapter`` (with LoRA): ``model/`` holds the adapter alone, over ``model``.
    """
    objective, settings, applied = unlearning_plan(
        model, method, config, method_params, keep_adapter
    )
    if objective.uses_retain and retain is None:
        raise ObliviateError(
            f"method '{objective.name}' needs retain data; pass --retain FILE, or a --method "
            "without a retain term (ga)"
        )
    return _train_run(
        command="unlearn",
        model=model,
        objective=objective,
        primary_path=Path(forget).expanduser(),
        retain_path=Path(retain).expanduser() if retain else None,
        out=out,
        config=settings,
        overwrite=overwrite,
        resume=resume,
        chunk_tokens=chunk_tokens,
        allow_weak=allow_weak,
        recipe=applied,
        keep_adapter=keep_adapter,
    )


def self_replay_records(model: str, questions: tuple[str, ...]) -> list[Record]:
    """``questions`` answered greedily by ``model`` itself, as records to replay in a fine-tune.

    Training on the base model's own answers keeps its general behaviour while it
    learns new facts (see ``obliviate.data.replay_questions``).
    """
    from obliviate.evaluation.model_outputs import generate_answers

    loaded = load_model(model)
    answers = generate_answers(loaded.model, loaded.tokenizer, questions, max_new_tokens=32)
    return [
        Record(id=f"replay-{i:03d}", prompt=q, answer=a, meta={"replay": True})
        for i, (q, a) in enumerate(zip(questions, answers, strict=True))
        if a.strip()
    ]
