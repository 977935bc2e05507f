"""configs/examples/: one commented example per command, each valid for its command."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from obliviate.cli import params
from obliviate.cli.evaluation import audit, evaluate
from obliviate.cli.training import finetune, sequence, unlearn
from obliviate.cli.tune import tune

EXAMPLES = Path(__file__).resolve().parents[1] / "configs" / "examples"
COMMANDS = {
    "finetune": finetune,
    "unlearn": unlearn,
    "eval": evaluate,
    "audit": audit,
    "tune": tune,
    "sequence": sequence,
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_example_is_read_as_its_commands_options(name: str, monkeypatch) -> None:
    """Every key is one of the command's options and every value converts to its type (the
    paths and models named need not exist here)."""
    command = COMMANDS[name]
    monkeypatch.setattr(params, "check_inputs", lambda settings, command: None)
    cli = dict.fromkeys(inspect.signature(command).parameters)
    settings = params.merge_settings(EXAMPLES / f"{name}.yaml", cli | {"config": None}, command)
    assert settings["out"] and settings["model"]
    if name == "unlearn":
        assert settings["lr"] == 2e-5 and settings["lora"] is False
        assert settings["method_params"] == {"beta": 0.1, "retain_weight": 1.0}


def test_every_command_with_a_config_has_an_example() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == sorted(COMMANDS)
