"""The model card written beside every model a run saves (``<run>/model/README.md``).

A model folder travels on its own (uploaded to the Hub, copied to a server), away from
the run's results.json; its card says where it came from — the model it started from,
the method and recipe, the hashes of the data it was trained on, what the run's own
checks measured and the tool's version — in the Hugging Face model card layout (YAML
metadata, then Markdown), so the Hub and ``huggingface_hub.ModelCard`` read it. A kept
LoRA adapter's card (``--keep-adapter``) says so, and over which base model it goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: Built-in model names and the Hub repository each was converted from.
HUB_NAMES = {"smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct"}

#: Training settings worth a line on the card (the rest are in the run's manifest.json).
CARD_SETTINGS = ("epochs", "max_steps", "lr", "batch_size", "grad_accum", "lora", "seed")


def _base_model(spec: str) -> str | None:
    """The Hub id of the starting model, where it has one (a local folder has none)."""
    if spec in HUB_NAMES:
        return HUB_NAMES[spec]
    looks_like_hub_id = spec.count("/") == 1 and not Path(spec).exists()
    return spec if looks_like_hub_id else None


def _checks(checks: dict[str, Any] | None) -> list[str]:
    """The run's forget and retain checks as Markdown bullets."""
    if not checks:
        return []
    lines = [f"- verdict of the run's own check: **{checks['verdict']}**"]
    for name, figure in checks["forget"].items():
        if isinstance(figure, dict) and "before" in figure:
            lines.append(
                f"- forget {name}: mean log-prob per token {figure['before']:.3f} → "
                f"{figure['after']:.3f} ({figure['change']:+.3f}; a fall of at least "
                f"{checks['forget']['margin']} counts as forgotten)"
            )
    retain = checks.get("retain") or {}
    if retain.get("before") is not None and retain.get("after") is not None:
        lines.append(
            f"- retain sample ({retain['records']} records): mean log-prob per token "
            f"{retain['before']:.3f} → {retain['after']:.3f}"
        )
    return lines


def _adapter(adapter: dict[str, Any] | None) -> list[str]:
    """What a kept adapter is and how it is loaded, as Markdown (none for full weights)."""
    if not adapter:
        return []
    base = adapter["base_model"]
    return [
        "",
        "## A LoRA adapter, not a full model",
        "",
        f"This folder holds a {adapter['format']} (rank {adapter['rank']}, alpha "
        f"{adapter['alpha']}), not weights: it goes over the base model `{base}` "
        "(`base_model_name_or_path` in adapter_config.json), which the run left as it was. "
        "obliviate loads it over that base wherever it takes a model (`--model` this "
        "folder or its run directory); peft does with `PeftModel.from_pretrained(base "
        "model, this folder)`.",
    ]


def model_card(results: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The card of a fine-tuned or unlearned model from its run's results and manifest."""
    spec = manifest["model"]["spec"]
    method = manifest["method"]
    version = manifest.get("versions", {}).get("obliviate", "unknown")
    unlearned = manifest["command"] == "unlearn"
    adapter = manifest.get("adapter")
    metadata: dict[str, Any] = {"library_name": "peft" if adapter else "transformers"}
    base = _base_model(spec)
    if base is not None:
        metadata["base_model"] = base
    metadata["tags"] = ["obliviate", "unlearning" if unlearned else "fine-tuned", method]
    if adapter:
        metadata["tags"].append("lora")
    what = ("unlearned" if unlearned else "fine-tuned") + (" (LoRA adapter)" if adapter else "")
    lines = [
        "---",
        yaml.safe_dump(metadata, sort_keys=False).strip(),
        "---",
        "",
        f"# {method} {what} from {spec}",
        "",
        f"Written by obliviate {version} (`obliviate {manifest['command']}`).",
        *_adapter(adapter),
        "",
        "## Where it came from",
        "",
        f"- starting model: `{spec}` ({manifest['model']['source']})",
        f"- method: `{method}` with {manifest.get('method_params') or 'its defaults'}",
    ]
    if manifest.get("method_outcome"):
        lines.append(f"- what the method decided after training: {manifest['method_outcome']}")
    train = manifest.get("train", {})
    settings = ", ".join(f"{k} {train[k]}" for k in CARD_SETTINGS if train.get(k) is not None)
    lines.append(f"- training: {settings}")
    recipe = results.get("recipe")
    if recipe:
        lines.append("- recipe: " + ", ".join(f"{k} {v}" for k, v in recipe.items()))
    for name, entry in manifest.get("inputs", {}).items():
        lines.append(f"- {name} data: `{Path(entry['path']).name}`, sha256 `{entry['sha256']}`")
    checked = _checks(results.get("checks"))
    if checked:
        lines += ["", "## What the run measured", "", *checked]
        lines += [
            "",
            "These are the run's own checks on the answers it trained on. Whether the model "
            "forgot under questioning and attack, and what it kept, is measured by "
            "`obliviate eval` and `obliviate audit`.",
        ]
    return "\n".join(lines) + "\n"
