"""SKU's diagnostics for benchmarks/behaviour.py: where τ comes from, and what λ does.

When SKU leaves the harmful rate where it was, one of its two stages failed: stage 1
learnt nothing worth negating (τ small, or made mostly of its preservation term), or
stage 2's λ, chosen on validation, is too small to matter. Two figures tell which:

- **τ by loss term.** Stage 1 is run with its three terms (``sku_tau``: λ = 1, the
  authors' value, no selection) and with each term alone (the other weights 0:
  ``sku_gd``, ``sku_rd``, ``sku_pd``), on the same schedule; each run's τ is
  θ_orig − θ_run (λ = 1). The table gives ‖τ‖, cos(τ_term, τ) and each term's loss at
  the first and the last step of ``sku_tau``. With Adam every run moves about lr per step
  whatever the size of its gradient, so the cosine says which term τ follows, and the
  first-step loss whether there was anything to learn (a target that already complies
  starts with a distortion NLL near 0).
- **Harmful rate against λ.** θ_orig − λ·τ for λ on the selection grid: harmful rates on
  the train and unseen requests, and the normal perplexity ratio; beside it the λ the
  ``sku`` row chose on validation, measured from the weights: ⟨θ_orig − θ_sku, τ⟩ / ‖τ‖²
  (the same seed gives the same stage 1, so cos(θ_orig − θ_sku, τ) ≈ 1, which is shown).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from obliviate.data.records import Record
from obliviate.evaluation.behaviour import HARMFUL_SPLITS, BehaviourOutputs, run_behaviour
from obliviate.evaluation.judge import Judge
from obliviate.methods.scaling import SCALE_GRID, negate_task_vector
from obliviate.models.loader import load_model

#: Stage-1 runs of the diagnostics: name → SKU's ``--param`` values (the rest its defaults).
STAGE1_RUNS: dict[str, list[str]] = {
    "sku_tau": ["scale=1"],
    "sku_gd": ["disassociation_weight=0", "preserve_weight=0"],
    "sku_rd": ["distortion_weight=0", "preserve_weight=0"],
    "sku_pd": ["distortion_weight=0", "disassociation_weight=0"],
}
TERMS = {"sku_gd": "distortion_nll", "sku_rd": "disassociation_nll", "sku_pd": "retain_kl"}
LABELS = {
    "sku_tau": "all three terms (τ)",
    "sku_gd": "guided distortion alone",
    "sku_rd": "random disassociation alone",
    "sku_pd": "preservation divergence alone",
}


def parameters(path: Path) -> dict[str, torch.Tensor]:
    """A model's parameters by name, in fp32 on the CPU (tied weights once)."""
    model = load_model(str(path)).model
    return {name: p.detach().float().cpu().clone() for name, p in model.named_parameters()}


def _dot(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return math.fsum(float((a[name] * b[name]).sum()) for name in a)


def _difference(original: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """θ_orig − θ_run: the run's τ times its λ."""
    return {name: original[name] - p for name, p in parameters(path).items()}


def stage1_losses(run: Path) -> dict[str, tuple[float, float]]:
    """Each logged loss term of a run at its first and its last step (``log.jsonl``)."""
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    first, last = lines[0], lines[-1]
    return {term: (first[term], last[term]) for term in TERMS.values() if term in first}


def tau_split(
    original: dict[str, torch.Tensor], runs: dict[str, Path], sku: Path | None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """τ of ``sku_tau``, and the figures: per run ‖τ‖ and cos(τ_run, τ); the ``sku`` row's
    λ measured from its weights; the stage-1 losses of ``sku_tau``."""
    tau = _difference(original, runs["sku_tau"])
    tau_norm = math.sqrt(_dot(tau, tau))
    rows = {}
    for name, path in runs.items():
        own = tau if name == "sku_tau" else _difference(original, path)
        norm = math.sqrt(_dot(own, own))
        rows[name] = {"norm": norm, "cosine": _dot(own, tau) / (norm * tau_norm or 1.0)}
    figures: dict[str, Any] = {"runs": rows, "losses": stage1_losses(runs["sku_tau"])}
    if sku is not None:
        moved = _difference(original, sku)
        moved_norm = math.sqrt(_dot(moved, moved))
        figures["chosen_lambda"] = _dot(moved, tau) / (tau_norm**2 or 1.0)
        figures["chosen_cosine"] = _dot(moved, tau) / (moved_norm * tau_norm or 1.0)
    return tau, figures


def _rate(judge: Judge, records: Sequence[Record], answers: Sequence[str]) -> float:
    return sum(v.harmful for v in judge.judge(records, answers)) / len(records)


def lambda_curve(
    target: Path,
    original: dict[str, torch.Tensor],
    tau: dict[str, torch.Tensor],
    splits: dict[str, list[Record]],
    target_outputs: BehaviourOutputs,
    judge: Judge,
    precision: str,
    grid: Sequence[float] = SCALE_GRID,
) -> list[dict[str, float | None]]:
    """Harmful rates and the normal perplexity ratio of θ_orig − λ·τ for each λ of ``grid``
    (greedy answers to the harmful requests, scored as the behaviour figures are)."""
    loaded = load_model(str(target))
    finetuned = {name: original[name] + tau[name] for name in original}
    asked = {name: splits[name] for name in (*HARMFUL_SPLITS.values(), "normal") if splits[name]}
    curve = []
    for scale in grid:
        negate_task_vector(loaded.model, original, finetuned, scale)
        outputs = run_behaviour(loaded, asked, precision=precision)
        point: dict[str, float | None] = {"lambda": scale}
        for figure, name in HARMFUL_SPLITS.items():
            if name in outputs.answers:
                point[figure] = _rate(judge, splits[name], outputs.answers[name])
        ppl, base = outputs.normal_ppl, target_outputs.normal_ppl
        point["ppl_ratio"] = ppl / base if ppl is not None and base else None
        curve.append(point)
        print(f"λ = {scale:g}: {point}")
    return curve


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def markdown(setting: str, figures: dict[str, Any], target: dict[str, Any]) -> str:
    """The two diagnostic tables of one setting."""
    split, curve = figures["tau"], figures["curve"]
    losses = split["losses"]
    lines = [
        f"SKU stage 1 ({setting}): τ by loss term (each run's θ_orig − θ_run at λ = 1)",
        "",
        "| stage-1 run | ‖τ‖ | cos with τ | its loss, first → last step of τ's run |",
        "|---|---|---|---|",
    ]
    for name, row in split["runs"].items():
        loss = losses.get(TERMS.get(name, ""))
        shown = "—" if loss is None else f"{loss[0]:.4f} → {loss[1]:.4f}"
        lines.append(f"| {LABELS[name]} | {row['norm']:.4f} | {row['cosine']:.3f} | {shown} |")
    chosen = split.get("chosen_lambda")
    lines += [
        "",
        f"SKU stage 2 ({setting}): harmful rate against λ (θ_orig − λ·τ)"
        + (
            ""
            if chosen is None
            else f"; the `sku` row's λ, chosen on validation: {chosen:.3g} "
            f"(cos {split['chosen_cosine']:.3f})"
        ),
        "",
        "| λ | harmful train | harmful unseen | ppl ratio |",
        "|---|---|---|---|",
        f"| 0 (target) | {_percent(target['harmful_rate'].get('train'))} | "
        f"{_percent(target['harmful_rate'].get('unseen'))} | 1.000 |",
    ]
    for point in curve:
        ratio = point["ppl_ratio"]
        lines.append(
            f"| {point['lambda']:g} | {_percent(point.get('train'))} | "
            f"{_percent(point.get('unseen'))} | {'—' if ratio is None else f'{ratio:.3f}'} |"
        )
    return "\n".join(lines)
