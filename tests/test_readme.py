"""The README runs as written: its walk-through, every option it names, every link.

The walk-through is the fenced ``bash`` block after ``<!-- walkthrough -->``. Its commands
are run here, in this process through the command line's entry point, in a fresh
directory, on the tiny model instead of the default one (its first line,
``MODEL=smollm2``, becomes ``MODEL=tiny``), with a few options appended
to keep it small: a click option given twice takes its last value, so the README's own
options are overridden only where named here, and every command is otherwise the README's.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer

from obliviate.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = "<!-- walkthrough -->"


#: What the tiny run appends to each command, by subcommand.
SMALL = {
    # 20 people: forget10 holds two, the fewest the relearn attack can split.
    "bench make": ["--people", "20"],
    "eval": ["--max-per-split", "20"],
    "audit": ["--max-per-split", "20"],
}


def _strip_comment(line: str) -> str:
    """A shell line without its trailing ``# comment`` (the README's commands quote no #)."""
    return re.sub(r"(^|\s)#.*$", "", line).rstrip()


def _commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined and comments dropped."""
    commands: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = _strip_comment(raw)
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line.strip()).strip()
        pending = ""
        if line:
            commands.append(line)
    return commands


def _fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """Every fenced code block as (language, body, offset of the opening fence)."""
    return [
        (m.group(1), m.group(2), m.start())
        for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
    ]


def walkthrough() -> list[str]:
    """The README's walk-through commands."""
    text = README.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, f"README.md needs exactly one {MARKER}"
    after = text.index(MARKER) + len(MARKER)
    language, body, start = next(b for b in _fenced_blocks(text) if b[2] >= after)
    assert language == "bash" and not text[after:start].strip(), (
        f"the block right after {MARKER} must be a ```bash block"
    )
    return _commands(body)


def _subcommand(command: str) -> str | None:
    """``bench make``, ``finetune``, … for an ``obliviate`` command line, else None."""
    words = shlex.split(command)
    if not words or words[0] != "obliviate":
        return None
    return " ".join(words[1:3]) if words[1] == "bench" else words[1]


def tiny_commands(commands: list[str]) -> list[list[str]]:
    """The walk-through as the test runs it: MODEL=tiny and the SMALL options appended,
    each command as its argument list."""
    assert commands[0] == "MODEL=smollm2", "the walk-through's first line must be MODEL=smollm2"
    runs = []
    for command in commands[1:]:
        sub = _subcommand(command)
        assert sub is not None, f"not an obliviate command: {command}"
        runs.append([*shlex.split(command.replace("$MODEL", "tiny")), *SMALL.get(sub, [])])
    return runs


def test_walkthrough_runs_on_the_tiny_model(tmp_path: Path, monkeypatch) -> None:
    commands = walkthrough()
    assert [_subcommand(c) for c in commands[1:]] == [
        "bench make",
        "finetune",
        "finetune",
        "unlearn",
        "eval",
        "audit",
        "report",
    ]
    assert all("--model $MODEL" in c for c in commands if _subcommand(c) == "finetune")
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    started = time.monotonic()
    for argv in tiny_commands(commands):  # in this process: one import of torch, not seven
        monkeypatch.setattr(sys, "argv", argv)
        try:
            main()
        except SystemExit as exit_:
            assert exit_.code in (0, None), f"`{' '.join(argv)}` exited {exit_.code}"
    print(f"walk-through on the tiny model: {time.monotonic() - started:.1f} s")

    evaluation = json.loads((work / "runs/eval/results.json").read_text())
    forget = evaluation["splits"]["forget"]["accuracy"]
    assert forget < evaluation["reference"]["target"]["splits"]["forget"]["accuracy"]
    audit = json.loads((work / "runs/audit/results.json").read_text())
    assert set(audit["attacks"]) == {"relearn", "quantize", "jailbreak"}
    assert (work / "runs/report.html").stat().st_size > 0
    assert (work / "runs/report.md").is_file()


def _readme_commands() -> list[str]:
    """Every ``obliviate …`` command the README shows: in code blocks and inline code."""
    text = README.read_text(encoding="utf-8")
    found: list[str] = []
    for language, body, _ in _fenced_blocks(text):
        if language in ("bash", "sh", ""):
            found += [c[c.index("obliviate ") :] for c in _commands(body) if "obliviate " in c]
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    found += re.findall(r"`(obliviate [^`]+)`", prose)
    return found


def _options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


def test_every_readme_option_exists() -> None:
    """Each ``--option`` the README gives a command is one that command's ``--help`` lists."""
    from obliviate.cli.app import app

    root = typer.main.get_command(app)
    checked = 0
    for line in _readme_commands():
        words = line.replace("[", " ").replace("]", " ").split()
        path = [words[1]] + ([words[2]] if words[1] == "bench" else [])
        command = root
        for name in path:
            assert hasattr(command, "commands"), line
            assert name in command.commands, f"README: no command `obliviate {name}` ({line})"
            command = command.commands[name]
        for option in (w.split("=")[0] for w in words if w.startswith("--")):
            assert option in _options(command), (
                f"README: `obliviate {' '.join(path)}` has no option {option} ({line})"
            )
            checked += 1
    assert checked > 30


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _links(path: Path) -> list[str]:
    """The Markdown links of a file outside code (fenced blocks and inline code)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return LINK.findall(re.sub(r"`[^`\n]*`", "", text))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize(
    "page",
    [README, *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link points to a file that exists (the README's own anchors too)."""
    headings = {_slug(m) for m in re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)}
    for target in _links(page):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        if not file:
            if page == README:
                assert anchor in headings, f"{page.name}: no heading for #{anchor}"
            continue
        assert (page.parent / file).exists(), f"{page.relative_to(ROOT)}: broken link {target}"
