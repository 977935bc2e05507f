"""``relearn``: a few fine-tuning steps on half the forget people, then ask about the rest.

The facts of the held-out half are never shown. If they come back anyway, the
unlearning only hid them behind something a little fine-tuning undoes; knowledge truly
removed comes back no faster than in the oracle, which never had it.
"""

from __future__ import annotations

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    VariantResult,
    calibrating,
    calibration,
    plain,
    register_attack,
    split_people,
)
from obliviate.attacks.finetuning import fine_tuned_copy
from obliviate.models.loader import LoadedModel
from obliviate.models.precision import resolve_precision


def _settings(ctx: AuditContext) -> dict:
    return {
        "steps": ctx.relearn_steps,
        "lr": ctx.relearn_lr,
        "batch_size": ctx.relearn_batch_size,
        "precision": resolve_precision(ctx.relearn_precision),
        "scheduler": "constant",
        "trained_on": "half of the forget people (their records)",
        "asked": "the other half",
    }


@register_attack(
    "relearn",
    "fine-tune a copy on half the forget people for a fixed step budget, ask about the rest",
    _settings,
)
def relearn(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    shown, held_out = split_people(ctx.forget, ctx.seed)
    if calibrating(ctx, role):
        return calibration(asker, {"default": held_out})
    before = asker.score(plain(held_out))
    relearned = fine_tuned_copy(loaded, shown, ctx, ctx.relearn_steps)
    after = asker.for_model(relearned).score(plain(held_out))
    return {"default": VariantResult(Measurement(before, after, {"trained_records": len(shown)}))}
