"""Bad input gets one line that says what is wrong, and exit status 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from obliviate.cli import main


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["obliviate", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_empty_data_file(tmp_path: Path, monkeypatch, capsys) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, err = run_cli(
        ["finetune", "--model", "tiny", "--data", str(empty), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "empty.jsonl")
    assert not (tmp_path / "r").exists()


def test_malformed_json_line(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "Q?", "answer": "A"}\n{"id": "b", "prompt": \n')
    code, err = run_cli(
        ["finetune", "--model", "tiny", "--data", str(bad), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "bad.jsonl", "2")


def test_missing_field(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "noanswer.jsonl"
    bad.write_text('{"id": "a", "prompt": "Q?"}\n')
    code, err = run_cli(
        ["finetune", "--model", "tiny", "--data", str(bad), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "noanswer.jsonl", "answer")


def test_unknown_model_spec(bench_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, err = run_cli(
        [
            "finetune",
            "--model",
            "no-such-org/no-such-model",
            "--data",
            str(bench_dir / "forget01.jsonl"),
            "--out",
            str(tmp_path / "r"),
        ],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "no-such-org/no-such-model", "local")


def test_unknown_method(bench_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, err = run_cli(
        [
            "unlearn",
            "--model",
            "tiny",
            "--forget",
            str(bench_dir / "forget10.jsonl"),
            "--method",
            "forgetify",
            "--out",
            str(tmp_path / "r"),
        ],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "forgetify", "grad_diff")


def test_existing_output_directory(bench_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    code, err = run_cli(
        [
            "unlearn",
            "--model",
            "tiny",
            "--forget",
            str(bench_dir / "forget10.jsonl"),
            "--method",
            "ga",
            "--out",
            str(existing),
        ],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "already exists", "--overwrite")
    assert (existing / "keep.txt").read_text() == "mine"


def test_bad_yaml_config(tmp_path: Path, monkeypatch, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("lr: [unclosed\n")
    code, err = run_cli(["finetune", "--config", str(config)], monkeypatch, capsys)
    assert_one_line_error(code, err, "c.yaml")
