"""``--threads N`` reaches torch; ``--report-to tensorboard`` writes the training curves into
the run directory; a bad value or a missing tracker package is one line, before torch."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
from conftest import cli_before_torch, run_cli

from obliviate import api
from obliviate.errors import ObliviateError


@pytest.fixture(scope="module")
def tracked_run(bench_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two steps of ``unlearn --threads 2`` on the tiny model, with ``--report-to tensorboard``
    where the package is installed (the dev extra installs it); torch's threads restored."""
    out = tmp_path_factory.mktemp("runs") / "tracked"
    tracking = ["--report-to", "tensorboard"] if find_spec("tensorboard") else []
    args = ["unlearn", "--model", "tiny", "--forget", str(bench_dir / "forget01.jsonl")]
    args += ["--retain", str(bench_dir / "retain99.jsonl"), "--method", "grad_diff"]
    args += ["--max-steps", "2", "--allow-weak", "--threads", "2", "--out", str(out), *tracking]
    threads = torch.get_num_threads()
    monkeypatch = pytest.MonkeyPatch()
    try:
        assert run_cli(args, monkeypatch) == 0
    finally:
        torch.set_num_threads(threads)
        monkeypatch.undo()
    return out


def test_threads_reach_torch(tracked_run: Path) -> None:
    manifest = json.loads((tracked_run / "manifest.json").read_text())
    assert manifest["backend"]["torch_threads"] == 2


def test_the_python_api_sets_threads_and_checks_them() -> None:
    threads = torch.get_num_threads()
    try:
        api.set_threads(threads + 1)
        assert torch.get_num_threads() == threads + 1
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ObliviateError, match="at least 1"):
        api.set_threads(0)


def test_tensorboard_curves_are_published_with_the_run(tracked_run: Path) -> None:
    if find_spec("tensorboard") is None:
        pytest.skip("tensorboard is not installed (pip install 'obliviate[tracking]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (tracked_run / "logs" / "grad_diff").glob("events.out.tfevents.*")
    curves = EventAccumulator(str(events)).Reload()
    tags = set(curves.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/forget_nll", "train/retain_nll"} <= tags
    assert [event.step for event in curves.Scalars("train/loss")] == [1, 2]
    config = json.loads((tracked_run / "manifest.json").read_text())["train"]
    assert config["report_to"] == "tensorboard"


@pytest.mark.parametrize(
    ("args", "blocked", "fragments"),
    [
        (["eval", "-m", "tiny", "--threads", "0", "--out", "run"], [], ["--threads", "at least 1"]),
        (["chat", "--model", "tiny", "--threads", "0"], [], ["--threads", "at least 1"]),
        (["bench", "make", "--threads", "-2", "--out", "run"], [], ["--threads", "at least 1"]),
        (
            [
                "unlearn",
                "-m",
                "tiny",
                "--forget",
                "given.jsonl",
                "--report-to",
                "wandb",
                "-o",
                "run",
            ],
            [],
            ["--report-to 'wandb'", "tensorboard or trackio"],
        ),
        (
            ["finetune", "-m", "tiny", "--data", "given.jsonl", "--report-to", "tensorboard"],
            ["tensorboard", "tensorboardX"],
            ["tensorboard package", "pip install 'obliviate[tracking]'"],
        ),
        (
            ["unlearn", "-m", "tiny", "--forget", "given.jsonl", "--report-to", "trackio"],
            ["trackio"],
            ["trackio package", "pip install 'obliviate[tracking]'"],
        ),
    ],
)
def test_bad_values_and_missing_trackers_are_one_line_before_torch(
    args: list[str], blocked: list[str], fragments: list[str], tmp_path: Path
) -> None:
    """In a process of its own that never imports torch (``blocked`` packages made
    unimportable, as if not installed), and nothing is written. A training command without
    ``--out`` still checks its options first."""
    imported, code, err = cli_before_torch(args, tmp_path, tuple(blocked))
    assert (imported, code) == (False, 2), err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert all(fragment in lines[0] for fragment in fragments), lines[0]
    assert not (tmp_path / "run").exists()
