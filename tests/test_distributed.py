"""Distributed training on this machine's CPU cores: torchrun with gloo, as CI runs it.

Two processes each take half of every step's micro-batches (``--batch-size 4``), so
together they must reach the weights one process reaches taking all of them
(``--batch-size 4 --grad-accum 2``). The distributed runs go through the command line
exactly as a user's would; the one-process references run in this process. The FSDP
and DeepSpeed ZeRO-3 runs go through ``accelerate launch`` with the shipped ``fsdp.yaml``
and ``deepspeed_zero3.yaml`` (2 processes).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from obliviate import api
from obliviate.errors import ObliviateError
from obliviate.train.config import TrainConfig

TOLERANCE = 1e-5
"""Largest allowed |Δw| between the distributed and the one-process weights (fp32). The
processes compute the same micro-batches and only add their gradients in another order;
measured: 0.0 for every case here."""

STEPS = 6
SETTINGS = ["--max-steps", str(STEPS), "--batch-size", "4", "--lr", "1e-3", "--precision", "fp32"]
REFERENCE = TrainConfig(max_steps=STEPS, batch_size=4, grad_accum=2, lr=1e-3, precision="fp32")
KILLED = Path(__file__).parent / "killed_after_checkpoint.py"
CONFIGS = Path(__file__).parents[1] / "configs" / "accelerate"


def launch(
    launcher: list[str],
    command: list[str],
    script: list[str] | None = None,
    runner: str = "torch.distributed.run",
) -> subprocess.Popen:
    """``python -m RUNNER LAUNCHER obliviate COMMAND`` (torchrun unless told), one thread a
    process."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "OBLIVIATE_QUIET": "1"}
    args = [sys.executable, "-m", runner, *launcher]
    args += [*(script or ["-m", "obliviate"]), *command]
    # Output goes to a file, not a pipe: of two launchers waited on in turn, the second
    # must never block on a full pipe while the first waits for it at a barrier.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish)
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log
    return process


def finish(process: subprocess.Popen, ok: bool = True) -> None:
    """Wait for a launch (generously: a busy 2-core machine starts Python slowly)."""
    process.wait(timeout=600)
    process.log.seek(0)
    output = process.log.read().decode(errors="replace")
    process.log.close()
    assert (process.returncode == 0) == ok, output[-3000:]


def two_processes(command: list[str], script: list[str] | None = None, ok: bool = True) -> None:
    finish(launch(["--standalone", "--nproc_per_node", "2"], command, script), ok)


def two_partitioned_processes(
    config: str, command: list[str], script: list[str] | None = None, ok: bool = True
) -> None:
    """``accelerate launch --config_file configs/accelerate/CONFIG.yaml --num_processes 2``
    on this CPU, over gloo: ``fsdp`` (FSDP2, torch's fully_shard) or ``deepspeed_zero3``
    (DeepSpeed's CPU accelerator)."""
    launcher = ["--config_file", str(CONFIGS / f"{config}.yaml"), "--num_processes", "2"]
    launcher += ["--main_process_port", str(free_port())]
    finish(launch(launcher, command, script, runner="accelerate.commands.launch"), ok)


def max_difference(run: Path, reference: Path) -> float:
    weights = load_file(run / "model" / "model.safetensors")
    expected = load_file(reference / "model" / "model.safetensors")
    assert weights.keys() == expected.keys()
    return max(float((weights[k] - expected[k]).abs().max()) for k in weights)


def finetune_args(bench_dir: Path, out: Path) -> list[str]:
    data = ["--data", str(bench_dir / "forget10.jsonl")]
    return ["finetune", "--model", "tiny", *data, "--out", str(out), "--no-cache", *SETTINGS]


def npo_args(bench_dir: Path, out: Path) -> list[str]:
    data = ["--forget", str(bench_dir / "forget10.jsonl")]
    data += ["--retain", str(bench_dir / "retain90.jsonl")]
    return ["unlearn", "--model", "tiny", "--method", "npo", *data, "--out", str(out), *SETTINGS]


@pytest.fixture(scope="module")
def finetuned_by_one(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "finetune"
    api.finetune("tiny", bench_dir / "forget10.jsonl", out, REFERENCE, use_cache=False)
    return out


def unlearned_by_one(method: str, bench_dir: Path, factory: pytest.TempPathFactory) -> Path:
    """``method`` run in this process with the reference settings: what N processes match."""
    out = factory.mktemp("one") / method
    forget, retain = bench_dir / "forget10.jsonl", bench_dir / "retain90.jsonl"
    api.unlearn("tiny", forget, retain, method, out, REFERENCE)
    return out


@pytest.fixture(scope="module")
def npo_by_one(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unlearned_by_one("npo", bench_dir, tmp_path_factory)


def test_two_processes_fine_tune_to_the_weights_of_one(
    bench_dir: Path, finetuned_by_one: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    two_processes(finetune_args(bench_dir, out))
    assert max_difference(out, finetuned_by_one) <= TOLERANCE
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"]["processes"] == 2
    assert manifest["backend"]["distributed"] == "MULTI_CPU"
    assert manifest["backend"]["precision"] == "fp32"
    # one log line a step: the main process alone writes the run directory
    assert len((out / "log.jsonl").read_text().splitlines()) == STEPS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_on_loopback_fine_tune_to_the_weights_of_one(
    bench_dir: Path, finetuned_by_one: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two-nodes"
    rendezvous = ["--nnodes", "2", "--nproc_per_node", "1", "--master_addr", "127.0.0.1"]
    rendezvous += ["--master_port", str(free_port())]
    # recomputing activations changes no weight, so the same reference holds
    command = [*finetune_args(bench_dir, out), "--gradient-checkpointing"]
    nodes = [launch([*rendezvous, "--node_rank", str(rank)], command) for rank in (0, 1)]
    for node in nodes:
        finish(node)
    assert max_difference(out, finetuned_by_one) <= TOLERANCE
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"]["processes"] == 2
    assert manifest["train"]["gradient_checkpointing"] is True


def test_two_process_npo_killed_mid_way_resumes_to_the_weights_of_one_uninterrupted(
    bench_dir: Path, npo_by_one: Path, tmp_path: Path
) -> None:
    """Unlearning across two processes, killed after its first checkpoint (step 2 of 6)
    and resumed, ends where one process running straight through does."""
    out = tmp_path / "killed"
    every_two_steps = tmp_path / "checkpoints.yaml"
    every_two_steps.write_text("checkpoint_every: 2\n")
    command = [*npo_args(bench_dir, out), "--config", str(every_two_steps)]
    two_processes(command, script=[str(KILLED)], ok=False)
    staging = tmp_path / ".killed.partial"
    assert not out.exists()
    assert [p.name for p in (staging / "checkpoints").iterdir()] == ["step-000002"]
    two_processes([*command, "--resume"])
    assert max_difference(out, npo_by_one) <= TOLERANCE
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["timings"]["resumed_from_step"] == 2


PARTITIONED_TOLERANCE = {"fsdp": 1e-6, "deepspeed_zero3": 1e-5}
"""Largest allowed |Δw| between two processes holding parts of the model and one process
(fp32). The gradients are reduce-scattered instead of all-reduced (into flat partitions,
under DeepSpeed), so sums may round differently; measured: FSDP 1.2e-7, ZeRO-3 1e-6 to
3.1e-6, for the fine-tune, GA+KL and NPO (killed and resumed)."""


def fsdp_available() -> bool:
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError:
        return False
    return torch.distributed.is_available() and torch.distributed.is_gloo_available()


PARTITIONED = [
    pytest.param(
        "fsdp",
        marks=pytest.mark.skipif(not fsdp_available(), reason="torch without fully_shard or gloo"),
    ),
    "deepspeed_zero3",
]
DISTRIBUTED_TYPE = {"fsdp": "FSDP", "deepspeed_zero3": "DEEPSPEED"}


@pytest.fixture(scope="module")
def ga_kl_by_one(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unlearned_by_one("ga_kl", bench_dir, tmp_path_factory)


@pytest.mark.parametrize("config", PARTITIONED)
def test_two_partitioned_processes_fine_tune_to_the_weights_of_one(
    config: str, bench_dir: Path, finetuned_by_one: Path, tmp_path: Path
) -> None:
    out = tmp_path / config
    two_partitioned_processes(config, finetune_args(bench_dir, out))
    assert max_difference(out, finetuned_by_one) <= PARTITIONED_TOLERANCE[config]
    assert len((out / "log.jsonl").read_text().splitlines()) == STEPS
    manifest = json.loads((out / "manifest.json").read_text())
    # not the CPU launcher's MULTI_CPU
    assert manifest["backend"]["distributed"] == DISTRIBUTED_TYPE[config]


@pytest.mark.parametrize("config", PARTITIONED)
def test_two_partitioned_processes_unlearn_with_a_frozen_reference_to_the_weights_of_one(
    config: str, bench_dir: Path, ga_kl_by_one: Path, tmp_path: Path
) -> None:
    """GA+KL's frozen reference stays a full, unsharded copy on each process."""
    out = tmp_path / f"{config}-ga-kl"
    command = npo_args(bench_dir, out)
    command[command.index("npo")] = "ga_kl"
    two_partitioned_processes(config, command)
    assert max_difference(out, ga_kl_by_one) <= PARTITIONED_TOLERANCE[config]


@pytest.mark.parametrize("config", PARTITIONED)
def test_two_partitioned_process_npo_killed_mid_way_resumes_to_the_weights_of_one_uninterrupted(
    config: str, bench_dir: Path, npo_by_one: Path, tmp_path: Path
) -> None:
    """The checkpoint gathers the processes' parts to the main process, which writes it:
    FSDP's full weights and optimizer state, or every DeepSpeed partition (fp32 weights and
    Adam moments). The resumed run splits them again and ends where one process running
    straight through does."""
    out = tmp_path / f"{config}-killed"
    every_two_steps = tmp_path / "checkpoints.yaml"
    every_two_steps.write_text("checkpoint_every: 2\n")
    command = [*npo_args(bench_dir, out), "--config", str(every_two_steps)]
    two_partitioned_processes(config, command, script=[str(KILLED)], ok=False)
    checkpoint = tmp_path / f".{config}-killed.partial" / "checkpoints" / "step-000002"
    state = torch.load(checkpoint / "state.pt", weights_only=True)
    if config == "fsdp":
        assert state["sharded"] is True  # written from FSDP's shards, not by DDP
        assert state["model"] and all(type(w) is torch.Tensor for w in state["model"].values())
    else:
        assert len(state["zero"]) == 2  # one partition per process
    two_partitioned_processes(config, [*command, "--resume"])
    assert max_difference(out, npo_by_one) <= PARTITIONED_TOLERANCE[config]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["timings"]["resumed_from_step"] == 2


@pytest.mark.parametrize(
    "name",
    [
        "cpu_multiprocess",
        "single_gpu",
        "multi_gpu_ddp",
        "fsdp",
        "deepspeed_zero3",
        "multi_node",
    ],
)
def test_shipped_accelerate_configs_load(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(__file__).parents[1] / "configs" / "accelerate" / f"{name}.yaml"
    config = load_config_from_file(str(path))
    expected = {
        "cpu_multiprocess": ("MULTI_GPU", 2, 1),  # torchrun's launcher; gloo on a CPU machine
        "single_gpu": ("NO", 1, 1),
        "multi_gpu_ddp": ("MULTI_GPU", 8, 1),
        "fsdp": ("FSDP", 8, 1),
        "deepspeed_zero3": ("DEEPSPEED", 8, 1),
        "multi_node": ("MULTI_GPU", 16, 2),
    }[name]
    assert (config.distributed_type.value, config.num_processes, config.num_machines) == expected
    if name == "multi_node":
        assert config.main_process_ip and config.main_process_port


def test_gradient_checkpointing_reaches_the_same_weights(bench_dir: Path, tmp_path: Path) -> None:
    data = bench_dir / "forget10.jsonl"
    config = TrainConfig(max_steps=3, batch_size=4, lr=1e-3, precision="fp32")
    plain = api.finetune("tiny", data, tmp_path / "plain", config, use_cache=False)
    recomputed = replace(config, gradient_checkpointing=True)
    checkpointed = api.finetune("tiny", data, tmp_path / "ckpt", recomputed, use_cache=False)
    assert max_difference(checkpointed.out, plain.out) <= 1e-6


def test_bf16_autocast_trains_on_the_cpu_and_fp16_asks_for_a_gpu(
    bench_dir: Path, tmp_path: Path
) -> None:
    data = bench_dir / "forget10.jsonl"
    config = TrainConfig(max_steps=2, batch_size=4, lr=1e-3, precision="bf16")
    result = api.finetune("tiny", data, tmp_path / "bf16", config, use_cache=False)
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert manifest["backend"]["precision"] == "bf16"
    weights = load_file(result.out / "model" / "model.safetensors")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    if torch.cuda.is_available():
        return
    with pytest.raises(ObliviateError, match="fp16 needs a GPU"):
        api.finetune("tiny", data, tmp_path / "fp16", replace(config, precision="fp16"))
