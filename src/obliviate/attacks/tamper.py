"""``tamper``: fine-tune on data that does not hold the forgotten facts, and watch them.

A model is fine-tuned after release — on its owner's data, on a provider's update. If
training on *retained* facts, or on unrelated general questions, brings the forgotten
answers back, the unlearning only suppressed them, and any later fine-tune lifts the
suppression (Che et al. and Łucki et al. find a few dozen steps undo most methods). The
general questions are the audit's world split with those that overlap the forget set
dropped (``evaluation/overlap.py``): one about the forgotten topic would teach it back. The
curve — forget accuracy after 8, 16, 64 (and, with ``--budget full``, 256) steps — is
measured for the oracle under the same budget beside it.

The target is not tampered with: it knows every forgotten answer already, so its curve
would say nothing, and only its plain accuracy (the top of every recovery) is needed.
Skipping it saves a third of the attack, the costliest of the audit.
"""

from __future__ import annotations

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    NotApplicable,
    Score,
    VariantResult,
    calibration,
    plain,
    register_attack,
)
from obliviate.attacks.finetuning import fine_tuned_copy
from obliviate.data.records import Record
from obliviate.data.world_facts import world_records
from obliviate.evaluation.overlap import drop_overlap
from obliviate.models.loader import LoadedModel
from obliviate.models.precision import resolve_precision

STEPS = {"small": (8, 16, 64), "full": (8, 16, 64, 256)}


def general_data(ctx: AuditContext) -> list[Record]:
    """The general questions to tamper with: the context's, or the built-in world
    questions less those that overlap the forget set."""
    if ctx.general is not None:
        return [r for r in ctx.general if not r.is_text]
    return drop_overlap(world_records(), ctx.forget)[0]


def _data(ctx: AuditContext) -> dict[str, list[Record]]:
    """The tampering sets: retained facts, and general questions none about the forget set."""
    sets = {"retain": [r for r in ctx.retain if not r.is_text], "general": general_data(ctx)}
    return {name: records for name, records in sets.items() if records}


def _curve(
    ctx: AuditContext, loaded: LoadedModel, asker: Asker, records: list[Record]
) -> tuple[Score, dict[str, float]]:
    """Forget accuracy after each checkpoint of one continuous fine-tune on ``records``, by
    step (as text: the keys of results.json and of the cache's JSON)."""
    checkpoints = STEPS[ctx.budget]
    questions = plain(ctx.forget)
    scores: dict[int, Score] = {}

    def measure(step: int, tuned: LoadedModel) -> None:
        if step in checkpoints:
            scores[step] = asker.for_model(tuned).score(questions)

    fine_tuned_copy(loaded, records, ctx, max(checkpoints), on_step=measure)
    return scores[max(checkpoints)], {str(step): s.accuracy for step, s in sorted(scores.items())}


@register_attack(
    "tamper",
    "fine-tune on retained facts or general questions (8–256 steps), ask the forget questions",
    lambda ctx: {
        "steps": list(STEPS[ctx.budget]),
        "lr": ctx.relearn_lr,
        "batch_size": ctx.relearn_batch_size,
        "precision": resolve_precision(ctx.relearn_precision),
        "data": ["retain", "general (the world questions, less those overlapping the forget set)"],
    },
)
def tamper(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    sets = _data(ctx)
    if not sets:
        raise NotApplicable("no retained or general records to fine-tune on")
    if role == "target":  # on every budget: it knows every answer already
        return calibration(asker, dict.fromkeys(sets, ctx.forget))
    before = asker.score(plain(ctx.forget))
    out: AttackOutput = {}
    for name, records in sets.items():
        after, curve = _curve(ctx, loaded, asker, records)
        out[name] = VariantResult(Measurement(before, after, {"curve": curve}))
    return out
