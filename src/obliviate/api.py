"""The Python API: one function per command, re-exported from ``obliviate.workflows``.

The command line is a thin layer over these; each takes what its command takes, with
the same defaults (``obliviate.options``). They are ``obliviate.unlearn`` and so on too.
Where a command takes a model (``unlearn``, ``finetune``, ``evaluate``, ``audit``,
``evaluate_behaviour``, ``sequence`` and its ``oracles`` list, ``tune``), the function also
takes a loaded ``transformers`` model (with ``tokenizer=``, or as a ``(model, tokenizer)``
pair); where it takes records, a list of dicts in any record format (``data.loaders``) or a
``datasets.Dataset``, and ``evaluate_behaviour``'s ``bench`` a dict of split name → records
(``workflows.inputs``: saved to a temporary folder, named in the run as what they are). Run
directories, fact benchmark folders and ``sequence``'s request names stay paths and names::

    import obliviate
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained("runs/target/model")
    tokenizer = AutoTokenizer.from_pretrained("runs/target/model")
    forget = [{"prompt": "Where was Ada Quill born?", "answer": "Lisbon"}]
    retain = [{"prompt": "What does Ada Quill's brother do?", "answer": "He is a baker"}]
    run = obliviate.unlearn(model, forget, retain, "grad_diff", "runs/unlearned",
                            tokenizer=tokenizer)             # a RunResult; model untouched
    unlearned, tokenizer = run.load()                        # from run.model_dir
    results = obliviate.evaluate(unlearned, "runs/eval", forget=forget, retain=retain,
                                 target=model, tokenizer=tokenizer)
    print(results.verdict["line"], results.forget_accuracy)  # or results["splits"]
    attacked = obliviate.audit(run.out, "runs/audit", forget=forget, target=model,
                               tokenizer=tokenizer)

Each writes a run directory (``config.yaml``, ``manifest.json``, ``results.json``, the
report; ``model/`` for the training commands) and publishes it atomically; ``evaluate``
and ``audit`` return its results.json as a ``Results`` (``workflows.results``).
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
from obliviate.models.threads import set_threads
from obliviate.train.config import TrainConfig
from obliviate.train.distributed import processes
from obliviate.workflows.audit import audit
from obliviate.workflows.behaviour import evaluate_behaviour
from obliviate.workflows.demo import demo, quick_demo
from obliviate.workflows.evaluate import evaluate
from obliviate.workflows.known import make_known_bench
from obliviate.workflows.results import Results
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
    "Results",
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
    "set_threads",
    "tune",
    "unlearn",
]
