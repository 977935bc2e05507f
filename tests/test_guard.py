"""The guard around a model: configuration, eval and audit behind it, and the chat."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from obliviate import api
from obliviate.cli import main
from obliviate.data.loaders import load_records
from obliviate.errors import ObliviateError
from obliviate.guard.guard import (
    COMPONENTS,
    DEFAULT_REFUSAL,
    Guard,
    GuardConfig,
    looks_like_refusal,
)
from obliviate.models.loader import load_model
from obliviate.workflows.chat import ChatSession


@pytest.fixture(scope="module")
def splits(bench_dir: Path):
    return api.evaluation_splits(bench_dir, "forget10")


def test_config_from_components_and_yaml(tmp_path: Path):
    assert GuardConfig.parse("prefix, icul").components == ("prefix", "icul")
    assert GuardConfig.parse("all").components == COMPONENTS
    path = tmp_path / "guard.yaml"
    path.write_text("components: [input_filter, output_filter]\noutput_mode: redact\n")
    config = GuardConfig.parse(path)
    assert config.components == ("input_filter", "output_filter")
    assert config.output_mode == "redact"
    with pytest.raises(ObliviateError, match="unknown guard component 'firewall'"):
        GuardConfig.parse("prefix,firewall")
    path.write_text("components: [prefix]\nstrictness: 3\n")
    with pytest.raises(ObliviateError, match="unknown key 'strictness'"):
        GuardConfig.parse(path)
    with pytest.raises(ObliviateError, match="does not exist"):
        GuardConfig.parse(tmp_path / "missing.yaml")


def test_prefix_and_icul_context_name_the_targets(splits):
    guard = Guard.build(GuardConfig(("prefix", "icul")), splits["forget"], [])
    people = {r.person for r in splits["forget"]}
    assert all(person in guard.context for person in people)
    assert guard.context.count("Question:") == 4
    assert guard.wrap("a context").endswith("a context")
    assert not any(r.answer in guard.context for r in splits["forget"])
    with pytest.raises(ObliviateError, match="calibrate"):
        Guard.build(GuardConfig(("input_filter",)), splits["forget"], [])


def test_refusal_detection():
    assert looks_like_refusal(DEFAULT_REFUSAL)
    assert looks_like_refusal("I don’t know who that is.")
    assert not looks_like_refusal("She was born in Lisbon.")


def test_eval_behind_input_filter_refuses_forget_keeps_retain(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
):
    document = api.evaluate(
        str(tiny_target), tmp_path / "run", bench=bench_dir, guard="input_filter"
    )
    guard = document["guard"]
    assert guard["leak_rate"]["plain"] == 0.0
    assert document["splits"]["forget"]["accuracy"] == 0.0
    assert guard["false_refusal_rate"]["retain"] <= 0.10
    assert document["splits"]["retain"]["accuracy"] > 0.5
    assert guard["filtered"]["input"] >= document["splits"]["forget"]["n"]
    assert guard["input_filter"]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["guard"]["config"]["components"] == ["input_filter"]


def test_audit_behind_guard_reports_leaks_and_false_refusals(
    tiny_target: Path, bench_dir: Path, tmp_path: Path
):
    document = api.audit(
        str(tiny_target),
        tmp_path / "audit",
        bench=bench_dir,
        attacks="jailbreak,paraphrase",
        guard="input_filter,output_filter",
    )
    guard = document["guard"]
    assert set(guard["leak_rate"]) >= {"plain", "paraphrase", "jailbreak.role_play"}
    assert guard["leak_rate"]["plain"] == 0.0
    assert max(guard["leak_rate"].values()) <= 0.1
    assert set(guard["false_refusal_rate"]) == {"retain", "neighbors", "world"}
    assert guard["false_refusal_rate"]["retain"] <= 0.10
    assert guard["added_latency_ms"] is not None


def test_chat_session_behind_guard(tiny_target: Path, splits):
    negatives = splits["retain"] + splits["neighbors"]
    guard = Guard.build(GuardConfig(("input_filter",)), splits["forget"], negatives)
    session = ChatSession(load_model(str(tiny_target)), guard, max_new_tokens=16)
    forget, retain = splits["forget"][0], splits["retain"][0]
    # The tiny model was trained on single questions, so the retained one is asked first.
    assert retain.answer in session.respond(retain.prompt)
    assert session.respond(forget.prompt) == DEFAULT_REFUSAL
    assert len(session.turns) == 2


def test_chat_command_reads_stdin(tiny_target: Path, bench_dir: Path, monkeypatch, capsys):
    retain = load_records(bench_dir / "retain90.jsonl")[0]
    forget = load_records(bench_dir / "forget10.jsonl")[0]
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{retain.prompt}\n{forget.prompt}\n/exit\n"))
    args = ["chat", "--model", str(tiny_target), "--guard", "input_filter"]
    monkeypatch.setattr(sys, "argv", ["obliviate", *args, "--bench", str(bench_dir)])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    lines = capsys.readouterr().out.strip().splitlines()
    assert retain.answer in lines[0]
    assert lines[1] == DEFAULT_REFUSAL
