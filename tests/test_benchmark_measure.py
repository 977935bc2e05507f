"""The counting behind benchmarks/throughput.py and scaling.py (benchmarks/measure.py):
FLOPs and tokens of a step, the matmul peak, and the peak memory of a launch."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from obliviate.methods.base import answer_nll
from obliviate.models.encoding import collate, encode_fact, label_mask
from obliviate.models.loader import load_model
from obliviate.rundir import peak_rss_mb

MEASURE = Path(__file__).resolve().parents[1] / "benchmarks" / "measure.py"


@pytest.fixture(scope="module")
def measure():
    spec = importlib.util.spec_from_file_location("benchmark_measure", MEASURE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_batch():
    loaded = load_model("tiny")
    examples = [
        encode_fact(loaded.tokenizer, "Where was Ada born?", "In Lisbon."),
        encode_fact(loaded.tokenizer, "What does Ben do for a living?", "He is a baker."),
    ]
    return loaded.model, collate(examples, loaded.tokenizer.pad_token_id)


def test_pass_counter_charges_6nt_for_training_and_2nt_for_a_reference_pass(measure, tiny_batch):
    model, batch = tiny_batch
    counter = measure.PassCounter(model)
    positions = batch["input_ids"].numel()
    rows = int(label_mask(batch).sum())
    per_pass = counter.non_embedding_params * positions + counter.head_params * rows
    with counter:
        answer_nll(model, batch).backward()
    model.zero_grad(set_to_none=True)
    assert counter.train_tokens == positions and counter.reference_tokens == 0
    assert counter.model_flops == 6 * per_pass
    counter.reset()
    with counter, torch.no_grad():
        answer_nll(model, batch)
    assert counter.reference_tokens == positions and counter.train_tokens == 0
    assert counter.model_flops == 2 * per_pass


def test_counted_flops_agree_with_the_formula_plus_attention(measure, tiny_batch):
    model, batch = tiny_batch
    counter = measure.PassCounter(model)

    def step() -> None:
        answer_nll(model, batch).backward()

    with counter:
        counted = measure.counted_flops(step)
    model.zero_grad(set_to_none=True)
    # The formula leaves out attention's own products (a few % at this length) and
    # charges the RMSNorm weights as if they were multiplied like the projections.
    assert counter.model_flops * 0.99 < counted < counter.model_flops * 1.3


def test_matmul_peak_is_a_positive_rate_for_the_sizes_tried(measure):
    flops, size = measure.matmul_peak(torch.float32, sizes=(32, 64), seconds=0.01)
    assert flops > 0 and size in (32, 64)


def test_peak_rss_is_that_of_the_largest_process_of_the_launch(measure):
    grandchild = "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
    grandchild += "import time; time.sleep(2)"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
    code, peak = measure.run_with_peak_rss([sys.executable, "-c", child], every=0.05)
    assert code == 0 and 200 <= peak < 300
    code, _ = measure.run_with_peak_rss([sys.executable, "-c", "raise SystemExit(3)"])
    assert code == 3


def test_a_small_child_does_not_report_its_parents_memory(measure, tiny_batch):
    """This test process holds torch and a model; a bare interpreter started from it
    must not count them (getrusage's ru_maxrss would)."""
    assert peak_rss_mb() > 200
    code, peak = measure.run_with_peak_rss(
        [sys.executable, "-c", "import time; time.sleep(0.3)"], every=0.05
    )
    assert code == 0 and peak < 100


def test_formula_follows_the_counter_when_layers_are_frozen(measure, bench_dir):
    """RMU trains three layers and stops its passes at the top one: its frozen lower
    layers cost a forward pass only, the one that learns a full training pass."""
    from obliviate.data.loaders import load_records
    from obliviate.methods import build_method
    from obliviate.methods.base import TrainingContext

    loaded = load_model("tiny")
    model, tokenizer = loaded.model, loaded.tokenizer
    forget_records = load_records(bench_dir / "forget10.jsonl")
    retain_records = load_records(bench_dir / "retain90.jsonl")
    forget, retain = (
        [encode_fact(tokenizer, r.prompt, r.answer) for r in records]
        for records in (forget_records, retain_records)
    )
    rmu = build_method("rmu", {"layer": 1, "update_layers": "1"})
    rmu.prepare(TrainingContext(model, tokenizer, forget, retain, forget_records, retain_records))
    batches = [collate(examples[:4], tokenizer.pad_token_id) for examples in (forget, retain)]
    counter = measure.PassCounter(model)

    def step() -> None:
        rmu.loss(model, *batches)[0].backward()

    with counter:
        counted = measure.counted_flops(step)
    assert counter.reference_tokens > 0 and counter.train_tokens > 0
    assert counter.model_flops * 0.99 < counted < counter.model_flops * 1.3
