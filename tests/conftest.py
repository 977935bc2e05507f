"""Shared fixtures: a small built-in benchmark and a tiny Llama fine-tuned on it once.

Every test runs offline, quietly, with its own cache directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["OBLIVIATE_QUIET"] = "1"
os.environ["OBLIVIATE_CACHE"] = tempfile.mkdtemp(prefix="obliviate-test-cache-")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The tiny test model gains nothing from a second thread, and one thread keeps the suite's
# time steady when other work shares the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from obliviate.data.bench import make_benchmark

    out = tmp_path_factory.mktemp("bench") / "bench"
    make_benchmark(out, seed=0, people=20)
    return out


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``obliviate ARGS`` in this process; its exit status."""
    from obliviate.cli import main

    monkeypatch.setattr(sys, "argv", ["obliviate", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def cli_output(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``obliviate ARGS`` in this process; its exit status, standard output and error."""
    code = run_cli(args, monkeypatch)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_ok(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``obliviate ARGS`` in this process, which must succeed (its output stays captured)."""
    code = run_cli(args, monkeypatch)
    assert code == 0, f"exit {code}"


def cli_before_torch(
    args: list[str], cwd: Path, blocked: tuple[str, ...] = ()
) -> tuple[bool, int | None, str]:
    """``obliviate ARGS`` in a process of its own, in ``cwd`` beside a one-fact
    ``given.jsonl``, with the ``blocked`` packages unimportable (as if not installed):
    whether torch was imported, the exit status and standard error."""
    import subprocess

    probe = (
        "import sys\nfrom pathlib import Path\n"
        f"sys.modules.update(dict.fromkeys({list(blocked)!r}))\n"
        "from obliviate.cli import main\n"
        'Path(\'given.jsonl\').write_text(\'{"prompt": "q", "answer": "a"}\\n\')\n'
        f"sys.argv = ['obliviate', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('torch' in sys.modules, code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    imported, code = done.stdout.split()[-2:] if done.stdout.split() else ("?", "None")
    return imported == "True", None if code == "None" else int(code), done.stderr


def finetune_tiny(data: Path, out: Path) -> Path:
    """The tiny model fine-tuned on ``data`` with the tiny demo recipe (a run directory)."""
    from obliviate import api
    from obliviate.train.recipes import load_recipe

    api.finetune("tiny", data, out, load_recipe("tiny").finetune)
    return out


@pytest.fixture(scope="session")
def tiny_target(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fine-tuned on every person of the benchmark."""
    return finetune_tiny(bench_dir / "full.jsonl", tmp_path_factory.mktemp("runs") / "target")


@pytest.fixture(scope="session")
def tiny_oracle(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model fine-tuned without the forget10 people (the retrained gold standard)."""
    return finetune_tiny(bench_dir / "retain90.jsonl", tmp_path_factory.mktemp("runs") / "oracle")


@pytest.fixture(scope="session")
def unlearn_tiny(tiny_target: Path, bench_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run one method on the tiny target; return mean answer log-probs before and after.

    ``run(method, params=None, **train)`` → ``{"forget": (before, after),
    "retain": (before, after), "out": run_dir}`` on forget10 / retain90 (retain measured on
    its first 60 records). Training defaults: 30 steps, lr 5e-4, batch 8, fp32.
    """
    from obliviate import api
    from obliviate.data.loaders import load_records
    from obliviate.evaluation.model_outputs import answer_logprobs
    from obliviate.models.loader import load_model
    from obliviate.train.config import TrainConfig

    forget = load_records(bench_dir / "forget10.jsonl")
    retain = load_records(bench_dir / "retain90.jsonl")[:60]

    def mean_logprob(model_dir: Path, records) -> float:
        loaded = load_model(str(model_dir))
        values = answer_logprobs(
            loaded.model, loaded.tokenizer, [(r.prompt, r.answer) for r in records]
        )
        return sum(values) / len(values)

    before = {
        "forget": mean_logprob(tiny_target, forget),
        "retain": mean_logprob(tiny_target, retain),
    }

    def run(method: str, params: dict | None = None, **train) -> dict:
        settings = {"max_steps": 30, "lr": 5e-4, "batch_size": 8, "precision": "fp32"} | train
        out = tmp_path_factory.mktemp("unlearn") / method
        api.unlearn(
            str(tiny_target),
            bench_dir / "forget10.jsonl",
            bench_dir / "retain90.jsonl",
            method,
            out,
            TrainConfig(**settings),
            method_params=params,
        )
        return {
            "forget": (before["forget"], mean_logprob(out, forget)),
            "retain": (before["retain"], mean_logprob(out, retain)),
            "out": out,
        }

    return run
