"""SKU's diagnostics for benchmarks/behaviour.py: where τ comes from, and what λ does.

When SKU leaves the harmful rate where it was, one of its two stages failed: stage 1
learnt nothing worth negating (τ small, or made mostly of its preservation term), or
stage 2's λ, chosen on validation, is too small to matter. Two figures tell which:

- **τ by loss term.** τ is the ``sku`` row's own stage 1: θ_orig − θ_sku = λ·τ, with λ
  the run recorded (``method_outcome.scale``). Stage 1 is also run with each term alone
  (the other weights 0, λ = 1: ``sku_gd``, ``sku_rd``, ``sku_pd``), on the same schedule;
  each run's τ is θ_orig − θ_run. The table gives ‖τ‖, cos(τ_term, τ) and each term's
  loss at the first and the last step of the ``sku`` run. With Adam every run moves
  about lr per step whatever the size of its gradient, so the cosine says which term τ
  follows, and the first-step loss whether there was anything to learn (a target that
  already complies starts with a distortion NLL near 0).
- **Harmful rate against λ.** θ_orig − λ·τ for λ on the selection grid: harmful rates on
  the train and unseen requests, and the normal perplexity ratio; beside it the λ the
  ``sku`` row chose on validation, and the λ ``select_by=perplexity`` picks on τ when it
  validates on the normal requests held apart from the evaluated ones.
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
from obliviate.methods.scaling import (
    SCALE_GRID,
    answer_logprob,
    largest_scale_within,
    negate_task_vector,
)
from obliviate.models.encoding import encode_fact
from obliviate.models.loader import load_model

#: Stage-1 runs of the diagnostics, one loss term each: name → SKU's ``--param`` values
#: (the rest its defaults; λ = 1, the authors' value, so θ_orig − θ_run is the run's τ).
STAGE1_RUNS: dict[str, list[str]] = {
    "sku_gd": ["disassociation_weight=0", "preserve_weight=0"],
    "sku_rd": ["distortion_weight=0", "preserve_weight=0"],
    "sku_pd": ["distortion_weight=0", "disassociation_weight=0"],
}
TERMS = {"sku_gd": "distortion_nll", "sku_rd": "disassociation_nll", "sku_pd": "retain_kl"}
LABELS = {
    "sku": "all three terms (τ, the `sku` row)",
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


def recorded_scale(run: Path) -> float:
    """The λ a negation run applied, as it recorded it (``method_outcome.scale``)."""
    outcome = json.loads((run / "manifest.json").read_text()).get("method_outcome") or {}
    if outcome.get("scale") is None:
        raise SystemExit(f"{run} records no λ (it predates method_outcome): delete it and rerun")
    return float(outcome["scale"])


def stage1_losses(run: Path) -> dict[str, tuple[float, float]]:
    """Each logged loss term of a run at its first and its last step (``log.jsonl``)."""
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    first, last = lines[0], lines[-1]
    return {term: (first[term], last[term]) for term in TERMS.values() if term in first}


def tau_split(
    original: dict[str, torch.Tensor], sku: Path, runs: dict[str, Path]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """τ of the ``sku`` run ((θ_orig − θ_sku) / its λ), and the figures: per stage-1 run
    ‖τ‖ and cos(τ_run, τ); the λ the ``sku`` run chose; its stage-1 losses."""
    scale = recorded_scale(sku)
    tau = {name: moved / scale for name, moved in _difference(original, sku).items()}
    tau_norm = math.sqrt(_dot(tau, tau))
    rows = {"sku": {"norm": tau_norm, "cosine": 1.0}}
    for name, path in runs.items():
        own = _difference(original, path)
        norm = math.sqrt(_dot(own, own))
        rows[name] = {"norm": norm, "cosine": _dot(own, tau) / (norm * tau_norm or 1.0)}
    return tau, {"runs": rows, "losses": stage1_losses(sku), "chosen_lambda": scale}


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


def perplexity_rule(
    target: Path,
    original: dict[str, torch.Tensor],
    tau: dict[str, torch.Tensor],
    held_apart: Sequence[Record],
    tolerance: float = 0.05,
) -> dict[str, Any]:
    """The λ ``select_by=perplexity`` picks on τ, validating on ``held_apart`` (normal
    requests none of the figures evaluate): the method's own rule, ``largest_scale_within``
    over ``answer_logprob``, and the perplexity ratio of each λ it tried."""
    loaded = load_model(str(target))
    examples = [encode_fact(loaded.tokenizer, r.prompt, r.answer) for r in held_apart]
    finetuned = {name: original[name] + tau[name] for name in original}
    logprobs: dict[float, float] = {}

    def utility(scale: float) -> float:
        negate_task_vector(loaded.model, original, finetuned, scale)
        logprobs[scale] = answer_logprob(loaded.model, examples, loaded.tokenizer.pad_token_id)
        return logprobs[scale]

    chosen = largest_scale_within(utility, math.log1p(tolerance))
    ratios = {scale: math.exp(logprobs[0.0] - value) for scale, value in logprobs.items()}
    return {"lambda": chosen, "validation": len(examples), "ratio": ratios[chosen]}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def markdown(setting: str, figures: dict[str, Any], target: dict[str, Any]) -> str:
    """The two diagnostic tables of one setting."""
    split, curve = figures["tau"], figures["curve"]
    losses = split["losses"]
    lines = [
        f"SKU stage 1 ({setting}): τ by loss term (each run's θ_orig − θ_run at λ = 1; "
        "the `sku` row's divided by its λ)",
        "",
        "| stage-1 run | ‖τ‖ | cos with τ | its loss, first → last step of the `sku` run |",
        "|---|---|---|---|",
    ]
    for name, row in split["runs"].items():
        loss = losses.get(TERMS.get(name, ""))
        shown = "—" if loss is None else f"{loss[0]:.4f} → {loss[1]:.4f}"
        lines.append(f"| {LABELS[name]} | {row['norm']:.4f} | {row['cosine']:.3f} | {shown} |")
    lines += [
        "",
        f"SKU stage 2 ({setting}): harmful rate against λ (θ_orig − λ·τ); the `sku` row's λ, "
        f"chosen on validation: {split['chosen_lambda']:g}",
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
    rule = figures["perplexity_rule"]
    lines += [
        "",
        f"`select_by=perplexity` on the {rule['validation']} normal requests held apart from "
        f"the evaluated ones picks λ = {rule['lambda']:g} (their perplexity ratio there: "
        f"{rule['ratio']:.3f}; at most 1.05 allowed)",
    ]
    return "\n".join(lines)
