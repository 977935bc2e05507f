"""Progress without a terminal (plain lines: start, every 30 s, end) and the audit's bar."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from rich.console import Console

import obliviate.progress as progress
from obliviate.attacks import AuditContext, run_audit
from obliviate.data.loaders import load_records

LINE = re.compile(r"^(?P<label>.+) (?P<k>\d+)/(?P<n>\d+)(?: .*)?, [\d:]+ elapsed, eta (\S+)$")


@pytest.fixture
def loud(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress shown (conftest silences it for every other test), main process."""
    monkeypatch.delenv("OBLIVIATE_QUIET", raising=False)
    monkeypatch.delenv("RANK", raising=False)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_plain_lines_at_start_every_30_seconds_and_at_end(loud, capsys, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "_now", clock)
    with progress.progress_bar("train", 10) as advance:
        for seconds, step in ((10, 1), (29, 2), (31, 3), (40, 4), (60, 5)):
            clock.now = 1000.0 + seconds
            advance(step, info=f"loss {step}.0")
        clock.now = 1000.0 + 75
    out = lines(capsys)
    assert out == [
        "train 0/10, 0:00 elapsed, eta ?",
        # 31 s after the start line (29 s was too soon); 40 s and 60 s are too soon
        # after this one; the end always prints.
        "train 3/10 loss 3.0, 0:31 elapsed, eta 1:12",
        "train 5/10 loss 5.0, 1:15 elapsed, eta 1:15",
    ]
    for line in out:
        assert LINE.match(line), line
        assert "\x1b" not in line  # plain text for a log: no escape codes


def test_plain_line_at_the_end_shows_all_done(loud, capsys, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "_now", clock)
    with progress.progress_bar("evaluate target", 4) as advance:
        for _ in range(4):
            clock.now += 5
            advance()
    assert lines(capsys)[-1] == "evaluate target 4/4, 0:20 elapsed, eta 0:00"


def test_a_long_step_still_prints_a_line_every_period(loud, capsys, monkeypatch):
    """A background thread prints while one step runs longer than the period."""
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.2)
    with progress.progress_bar("relearn", 2):
        time.sleep(1.0)
    out = lines(capsys)
    assert len(out) >= 3  # start, at least one while waiting (about four), end
    assert all(line.startswith("relearn 0/2, ") for line in out)


def test_a_new_description_prints_at_once(loud, capsys, monkeypatch):
    monkeypatch.setattr(progress, "_now", Clock())
    with progress.progress_bar("audit", 2) as advance:
        advance(0, description="audit: jailbreak on model")
        advance(1)
        advance(1, description="audit: jailbreak on model")  # unchanged: no line
    out = lines(capsys)
    assert out[1] == "audit: jailbreak on model 0/2, 0:00 elapsed, eta ?"
    assert len(out) == 3


def test_quiet_prints_nothing(capsys, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_QUIET", "1")
    with progress.progress_bar("train", 3) as advance:
        advance()
    progress.say("hello")
    assert capsys.readouterr().err == ""


def test_bars_on_a_terminal_nest_in_one_display(loud, monkeypatch):
    """An attack's bar inside the audit's is a row of the same display, not an error
    (rich allows one live display at a time)."""
    screen = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=screen, force_terminal=True))
    with progress.progress_bar("audit", 2) as outer:
        outer(0, description="audit: relearn on model")
        with progress.progress_bar("relearn steps", 3) as inner:
            inner()
        progress.say("said while drawn")
        outer(2)
    assert progress._live is None
    text = screen.getvalue()
    assert "relearn steps" in text and "said while drawn" in text
    assert "audit: relearn on model" in text and "eta 0:00" in text


def test_audit_reports_each_attack_and_model_with_an_eta(loud, capsys, bench_dir: Path):
    forget = load_records(bench_dir / "forget10.jsonl")[:3]
    holdout = load_records(bench_dir / "holdout.jsonl")[:3]
    ctx = AuditContext(forget=forget, holdout=holdout, precision="fp32", max_new_tokens=4)
    document = run_audit({"model": "tiny", "oracle": "tiny"}, ctx, ["paraphrase", "multihop"])
    assert set(document["attacks"]) == {"paraphrase", "multihop"}
    out = [line for line in lines(capsys) if line.startswith("audit")]
    parsed = [LINE.match(line) for line in out]
    assert all(parsed), out
    assert out[0] == "audit 0/4, 0:00 elapsed, eta ?"
    labels = [m["label"] for m in parsed]
    for step in (
        "audit: paraphrase on model",
        "audit: multihop on model",
        "audit: paraphrase on oracle",
        "audit: multihop on oracle",
    ):
        assert step in labels, out
    # Each attack's line counts the steps before it; the ETA is known from the second on.
    by_label = {m["label"]: m for m in reversed(parsed)}  # the first line of each
    assert by_label["audit: multihop on oracle"]["k"] == "3"
    assert by_label["audit: multihop on oracle"][4] != "?"
    assert parsed[-1]["k"] == parsed[-1]["n"] == "4"
    assert out[-1].endswith("eta 0:00")


def test_chat_start_says_what_it_loads_and_when_it_is_ready(loud, capsys, bench_dir: Path):
    from obliviate.workflows.chat import open_chat

    session = open_chat("tiny", "prefix", bench=bench_dir, max_new_tokens=2)
    out = lines(capsys)
    assert out[0] == "chat: building the guard prefix"
    assert out[1].startswith("guard: building prefix for ")
    assert "guard: prefix naming the forget targets" in out
    assert [line.split(" (")[0] for line in out[-3:]] == [
        "guard: ready",
        "chat: loading tiny",
        "chat: ready",
    ]
    assert session.guard is not None and isinstance(session.respond("Hello?"), str)
