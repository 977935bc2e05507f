"""Bad input gets one line that says what is wrong, and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli_before_torch, cli_output


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
    code, _, err = cli_output(
        ["finetune", "--model", "tiny", "--data", str(empty), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "empty.jsonl")
    assert not (tmp_path / "r").exists()


def test_malformed_json_line(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "Q?", "answer": "A"}\n{"id": "b", "prompt": \n')
    code, _, err = cli_output(
        ["finetune", "--model", "tiny", "--data", str(bad), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "bad.jsonl", "2")


def test_missing_field(tmp_path: Path, monkeypatch, capsys) -> None:
    bad = tmp_path / "noanswer.jsonl"
    bad.write_text('{"id": "a", "prompt": "Q?"}\n')
    code, _, err = cli_output(
        ["finetune", "--model", "tiny", "--data", str(bad), "--out", str(tmp_path / "r")],
        monkeypatch,
        capsys,
    )
    assert_one_line_error(code, err, "noanswer.jsonl", "answer")


def test_unknown_model_spec(bench_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = cli_output(
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


def test_method_names_are_the_registry() -> None:
    """The torch-free list the command line checks ``--method`` against is the registry."""
    from obliviate.methods import METHODS
    from obliviate.options import METHOD_NAMES

    assert sorted(METHODS) == sorted(METHOD_NAMES)


def test_existing_output_directory(bench_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    code, _, err = cli_output(
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
    code, _, err = cli_output(["finetune", "--config", str(config)], monkeypatch, capsys)
    assert_one_line_error(code, err, "c.yaml")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["eval", "--model", "tiny", "--oracle", "./runs/no"], ["--oracle", "check the path"]),
        (["eval", "--model", "tiny", "--forget", "nothere.jsonl"], ["--forget", "no such file"]),
        (["audit", "--model", "tiny", "--precision", "fp8"], ["--precision", "fp8"]),
        (["unlearn", "--model", "tiny", "--forget", "f.jsonl"], ["--forget", "f.jsonl"]),
        (
            ["tune", "--model", "tiny", "--forget", "given.jsonl", "--method", "npo,forgetify"],
            ["forgetify", "grad_diff"],
        ),
    ],
)
def test_argument_errors_come_before_torch_is_imported(
    args: list[str], fragments: list[str], tmp_path: Path
) -> None:
    """A mistyped path, model or precision is one line from a process that never imported
    torch (so it answers in about a second: ``benchmarks/arg_errors.py`` times it), and a
    local path is never told to download."""
    imported, code, err = cli_before_torch([*args, "--out", "run"], tmp_path)
    assert (imported, code) == (False, 2), err
    assert_one_line_error(2, err, *fragments)
    assert "download" not in err
