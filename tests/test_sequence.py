"""Requests that keep coming: deletion requests unlearned one after another (MUSE's
sequential setting), on the tiny model and the session's 20-person benchmark."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import pytest
from conftest import cli_output

from obliviate import api
from obliviate.cli import main
from obliviate.data.bench import make_benchmark
from obliviate.data.loaders import load_records
from obliviate.data.requests import request_slices
from obliviate.errors import ObliviateError
from obliviate.train.config import TrainConfig

#: Every step's unlearning: a few strong steps, enough to move the tiny model.
UNLEARN = ["--method", "grad_diff", "--max-steps", "10", "--lr", "5e-4", "--precision", "fp32"]


def people(records) -> set[str]:
    return {r.person for r in records}


# -- the requests ------------------------------------------------------------------------------


def test_four_requests_are_disjoint_slices_of_nested_splits(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    make_benchmark(bench, seed=0, people=40, forget25=True)
    requests = request_slices(bench, "forget01,forget05,forget10,forget25", text=True)
    assert [r.split for r in requests] == ["forget01", "forget05", "forget10", "forget25"]
    assert [r.previous for r in requests] == [None, "forget01", "forget05", "forget10"]
    seen: set[str] = set()
    for request in requests:
        split = people(load_records(bench / f"{request.split}.jsonl"))
        assert request.removed == split  # everyone removed so far is the split's people
        assert set(request.people) == split - seen and request.people  # new people only
        assert not set(request.people) & seen
        assert people(request.facts) == people(request.passages) == set(request.people)
        assert all(r.is_text for r in request.passages)
        # The retain data is the split's complement: the passages of everyone else.
        assert request.retain.name == f"{api.retain_split_for(request.split)}.text.jsonl"
        retained = people(load_records(request.retain))
        assert not retained & split and retained | split == people(
            load_records(bench / "full.jsonl")
        )
        seen |= split
    assert [len(r.people) for r in requests] == [1, 1, 2, 6]
    facts = request_slices(bench, ["forget05", "forget25"])
    assert facts[1].retain.name == "retain75.jsonl" and facts[1].passages == []


def test_neighbors_lose_the_people_a_large_split_forgets(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    make_benchmark(bench, seed=0, people=40, forget25=True)
    splits = api.bench_splits(bench, "forget25")
    assert people(splits["neighbors"]) and not people(splits["neighbors"]) & people(
        splits["forget"]
    )
    # forget10's neighbors are all retained already: nothing is dropped.
    assert api.bench_splits(bench, "forget10")["neighbors"] == load_records(
        bench / "neighbors.jsonl"
    )


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ("forget10,forget05", "must be nested"),
        ("forget05,forget07", "unknown request 'forget07'"),
        ("forget25", "bench make --forget25"),
        ("holdout", "unknown request 'holdout'"),
        ("forget01,forget05", "removes no one that forget01 did not"),  # 20 people: both 1
        ("forget05,forget05", "listed twice"),
        (",", "no requests given"),
    ],
)
def test_a_bad_request_list_is_one_line(
    requests: str, message: str, bench_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "seq"
    args = ["sequence", "--model", "tiny", "--bench", str(bench_dir), "--requests", requests]
    code, _, err = cli_output([*args, *UNLEARN, "--out", str(out)], monkeypatch, capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert message in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_an_oracle_needs_a_fine_tuned_target_or_one_per_request(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ObliviateError, match="not a fine-tune's run directory; pass --oracles"):
        api.sequence("tiny", bench_dir, "ga", "forget05", tmp_path / "a")
    with pytest.raises(ObliviateError, match="1 oracles for 2 requests"):
        api.sequence(
            str(tiny_target), bench_dir, "ga", "forget05,forget10", tmp_path / "b", oracles=["x"]
        )
    with pytest.raises(ObliviateError, match="--text unlearns passages, but the target learned"):
        api.sequence(str(tiny_target), bench_dir, "ga", "forget05", tmp_path / "d", text=True)
    with pytest.raises(ObliviateError, match="unknown method"):
        api.sequence(str(tiny_target), bench_dir, "nope", "forget05", tmp_path / "c")
    assert not list(tmp_path.iterdir())


# -- a sequence of two requests --------------------------------------------------------------


@pytest.fixture(scope="module")
def sequence_run(
    tiny_target: Path, bench_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """forget05 then forget10 (one new person each) unlearned from the tiny target with
    GradDiff through the command line; each step's oracle retrained from the target's recipe."""
    out = tmp_path_factory.mktemp("sequence") / "seq"
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "obliviate", "sequence", "--model", str(tiny_target), "--bench", str(bench_dir),
            "--requests", "forget05,forget10", *UNLEARN, "--max-per-split", "40",
            "--out", str(out),
        ],
    )  # fmt: skip
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    finally:
        monkeypatch.undo()
    return {"out": out, "summary": json.loads((out / "results.json").read_text())}


def test_each_step_is_a_run_directory_chained_by_its_manifest(
    sequence_run: dict, tiny_target: Path, bench_dir: Path
) -> None:
    out = sequence_run["out"]
    previous = str(tiny_target)
    for step, split in enumerate(("forget05", "forget10"), start=1):
        directory = out / f"step-{step}"
        for name in ("config.yaml", "manifest.json", "results.json", "report.html", "model"):
            assert (directory / name).exists(), name
        manifest = json.loads((directory / "manifest.json").read_text())
        chain = manifest["sequence"]
        assert manifest["model"]["spec"] == chain["previous_model"] == previous
        assert (chain["step"], chain["request"], chain["run"]) == (step, split, str(directory))
        forget = Path(chain["forget"]["path"])
        assert forget.parent == out / "requests" and forget.is_file()
        assert manifest["inputs"]["primary"]["sha256"] == chain["forget"]["sha256"]
        assert people(load_records(forget)) == set(chain["people"]) and len(chain["people"]) == 1
        assert Path(chain["retain"]["path"]) == bench_dir / f"{api.retain_split_for(split)}.jsonl"
        assert chain["oracle"] == str(out / "oracles" / f"step-{step}")
        previous = str(directory)
    top = json.loads((out / "manifest.json").read_text())
    assert top["chain"] == [str(tiny_target), str(out / "step-1"), str(out / "step-2")]
    # Published in one piece, and every path written names the published directory.
    assert not list(out.parent.glob(".*partial"))
    for path in out.rglob("*.json"):
        assert ".seq.partial" not in path.read_text(), path


def test_a_sequence_config_yaml_is_accepted_back(sequence_run: dict, tiny_target: Path) -> None:
    """``sequence --config <run>/config.yaml`` repeats the run: lists read back as the
    comma-separated options, the schedule as training options, records-only keys dropped."""
    from obliviate.cli.params import merge_settings
    from obliviate.cli.training import sequence

    cli = dict.fromkeys(inspect.signature(sequence).parameters) | {"overwrite": False}
    settings = merge_settings(sequence_run["out"] / "config.yaml", cli, sequence)
    assert settings["requests"] == "forget05,forget10"
    assert settings["model"] == str(tiny_target)
    assert (settings["max_steps"], settings["lr"], settings["method"]) == (10, 5e-4, "grad_diff")
    assert "oracle_train" not in settings and "text_settings" not in settings


def test_each_oracle_is_the_target_retrained_without_everyone_removed_so_far(
    sequence_run: dict, bench_dir: Path
) -> None:
    out = sequence_run["out"]
    # The target was fine-tuned on full.jsonl: without forget10's people it is retain90.
    assert (out / "oracles" / "step-2.jsonl").read_bytes() == (
        bench_dir / "retain90.jsonl"
    ).read_bytes()
    assert people(load_records(out / "oracles" / "step-1.jsonl")) == people(
        load_records(bench_dir / "retain95.jsonl")
    )
    for step in sequence_run["summary"]["steps"]:
        assert step["oracle"]["forget_accuracy"] <= 0.2  # it never saw those people


def test_the_figures_of_every_earlier_request_are_followed(sequence_run: dict) -> None:
    summary = sequence_run["summary"]
    steps = summary["steps"]
    assert [sorted(s["slices"]) for s in steps] == [["request-1"], ["request-1", "request-2"]]
    first = json.loads((sequence_run["out"] / "step-1" / "results.json").read_text())
    target_knowmem = first["reference"]["target"]["splits"]["request-1"]["knowmem"]
    for step in steps:
        assert step["figures"]["knowmem_retain"] is not None
        for figures in step["slices"].values():
            assert figures["no_knowmem"] == (figures["knowmem"] <= figures["oracle"]["knowmem"])
        # The first request's people are known less than before, at every later step too.
        assert step["slices"]["request-1"]["knowmem"] < target_knowmem
    for name, held in summary["stays_forgotten"].items():
        marks = [s["slices"][name]["no_knowmem"] for s in steps if name in s["slices"]]
        assert held == all(marks)
    summary_md = (sequence_run["out"] / "summary.md").read_text()
    assert "| figure | target | 1: forget05 | 2: forget10 |" in summary_md
    assert "| 1: forget05 (1) |" in summary_md
    assert (sequence_run["out"] / "sequence.png").read_bytes().startswith(b"\x89PNG")


def test_a_sequence_run_has_a_report_with_its_tables_and_plot(sequence_run: dict) -> None:
    out = sequence_run["out"]
    page = (out / "report.html").read_text()
    assert "<h2>Requests in sequence: seq</h2>" in page
    assert "<th>figure</th><th>target</th><th>1: forget05</th><th>2: forget10</th>" in page
    assert "<th>request (its people)</th><th>after step 1</th><th>after step 2</th>" in page
    assert "<td>1: forget05 (1)</td>" in page
    assert 'src="data:image/png;base64,' in page
    assert f"<code>{out / 'step-2'}</code>" in page and ".seq.partial" not in page
    # Sections only where they apply: a sequence summary is no evaluation and has no verdict.
    assert "<h2>Summary</h2>" not in page and 'class="banner' not in page
    summary = (out / "report.md").read_text()
    assert "### Requests in sequence: seq" in summary
    assert "| figure | target | 1: forget05 | 2: forget10 |" in summary
    assert "| 1: forget05 (1) |" in summary


def test_report_renders_a_sequence_beside_an_evaluation(
    sequence_run: dict, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = sequence_run["out"]
    report = tmp_path / "both.html"
    args = ["report", str(out), str(out / "step-2"), "--out", str(report)]
    code, printed, err = cli_output(args, monkeypatch, capsys)
    assert code == 0, err
    assert str(report) in printed
    page = report.read_text()
    assert "Runs: <b>seq, step-2</b>" in page
    assert "<h2>Requests in sequence: seq</h2>" in page and "<th>2: forget10</th>" in page
    # The step is an evaluation: its verdict, its summary row beside its target and oracle.
    assert 'class="banner' in page and "<h2>Summary</h2>" in page
    assert "<td><b>step-2</b></td>" in page
    summary = report.with_suffix(".md").read_text()
    assert "### Requests in sequence: seq" in summary and "| step-2 |" in summary


def test_a_results_file_of_no_known_command_is_refused_naming_sequence(tmp_path: Path) -> None:
    from obliviate.report import write_report

    (tmp_path / "results.json").write_text(json.dumps({"steps": [{"step": 1}]}))
    with pytest.raises(ObliviateError, match=r"has no 'splits' or 'attacks'.*`sequence`"):
        write_report([tmp_path], tmp_path / "report.html")


def test_an_interrupted_sequence_publishes_nothing_and_resumes_after_its_last_step(
    tiny_target: Path, tiny_oracle: Path, bench_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from obliviate.workflows import sequence as workflow

    out = tmp_path / "seq"
    settings = {
        "oracles": [str(tiny_oracle), str(tiny_oracle)],  # a stand-in: mechanics only
        "config": TrainConfig(max_steps=5, lr=5e-4, precision="fp32"),
        "max_per_split": 20,
    }
    real = workflow.results_document
    calls = []

    def fail_on_the_second_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "results_document", fail_on_the_second_step)
    with pytest.raises(KeyboardInterrupt):
        api.sequence(str(tiny_target), bench_dir, "ga", "forget05,forget10", out, **settings)
    assert not out.exists()
    staged = tmp_path / ".seq.partial" / "step-1" / "manifest.json"
    before = staged.read_text()

    unlearned = []
    real_unlearn = workflow.unlearn
    monkeypatch.setattr(
        workflow, "unlearn", lambda *a, **k: unlearned.append(a) or real_unlearn(*a, **k)
    )
    summary = api.sequence(
        str(tiny_target), bench_dir, "ga", "forget05,forget10", out, resume=True, **settings
    )
    assert len(unlearned) == 1 and unlearned[0][0] == str(tmp_path / ".seq.partial" / "step-1")
    assert (out / "step-1" / "manifest.json").read_text() == before.replace(
        str(tmp_path / ".seq.partial"), str(out)
    )
    assert [s["step"] for s in summary["steps"]] == [1, 2]
    assert summary["oracles"] == settings["oracles"]
    chain = json.loads((out / "step-2" / "manifest.json").read_text())["sequence"]
    assert chain["previous_model"] == str(out / "step-1") and not chain["oracle_retrained"]
