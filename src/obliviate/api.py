"""The Python API: one function per command, re-exported from ``obliviate.workflows``.

The command line is a thin layer over these; each takes what its command takes, with
the same defaults (``obliviate.options``), and returns what the command prints::

    from obliviate import api

    api.finetune("smollm2", "bench/full.jsonl", "runs/target")
    api.finetune("smollm2", "bench/retain90.jsonl", "runs/oracle")
    api.unlearn("runs/target", "bench/forget10.jsonl", "bench/retain90.jsonl", "grad_diff",
                "runs/unlearned")
    results = api.evaluate("runs/unlearned", "runs/eval", bench="bench",
                           oracle="runs/oracle", target="runs/target")
    attacked = api.audit("runs/unlearned", "runs/audit", bench="bench",
                         oracle="runs/oracle", target="runs/target")

Each writes a run directory (``config.yaml``, ``manifest.json``, ``results.json``, the
report; ``model/`` for the training commands) and publishes it atomically.
"""

from __future__ import annotations

from obliviate.data.scenario import (
    bench_passages,
    bench_splits,
    evaluation_passages,
    evaluation_splits,
    resolve_data,
    retain_split_for,
    scenario_files,
)
from obliviate.guard.guard import build_guard
from obliviate.train.config import TrainConfig
from obliviate.train.distributed import processes
from obliviate.workflows.audit import audit
from obliviate.workflows.behaviour import evaluate_behaviour
from obliviate.workflows.demo import demo, quick_demo
from obliviate.workflows.evaluate import evaluate
from obliviate.workflows.known import make_known_bench
from obliviate.workflows.sequence import run_sequence as sequence
from obliviate.workflows.training import (
    RunResult,
    encode_records,
    finetune,
    finetune_cache_key,
    self_replay_records,
    unlearn,
)
from obliviate.workflows.tune import tune

__all__ = [
    "RunResult",
    "TrainConfig",
    "audit",
    "bench_passages",
    "bench_splits",
    "build_guard",
    "demo",
    "encode_records",
    "evaluate",
    "evaluate_behaviour",
    "evaluation_passages",
    "evaluation_splits",
    "finetune",
    "finetune_cache_key",
    "make_known_bench",
    "processes",
    "quick_demo",
    "resolve_data",
    "retain_split_for",
    "scenario_files",
    "self_replay_records",
    "sequence",
    "tune",
    "unlearn",
]
