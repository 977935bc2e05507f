"""``relearn``: a few fine-tuning steps on half the forget groups, then ask about the rest.

Records group by ``Record.group`` (a person, a topic or any ``group`` field), and no group
is in both halves: the facts of the held-out half, and everything else about their person
or topic, are never shown. A forget set that is one group has nothing to split: the
attack says so and the audit goes on without it. If they come back anyway, the
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
    split_groups,
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
        "trained_on": "half of the forget groups (people or topics, their records)",
        "asked": "the other half",
    }


@register_attack(
    "relearn",
    "fine-tune a copy on half the forget groups for a fixed step budget, ask about the rest",
    _settings,
)
def relearn(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    shown, held_out = split_groups(ctx.forget, ctx.seed)
    if calibrating(ctx, role):
        return calibration(asker, {"default": held_out})
    before = asker.score(plain(held_out))
    relearned = fine_tuned_copy(loaded, shown, ctx, ctx.relearn_steps)
    after = asker.for_model(relearned).score(plain(held_out))
    return {"default": VariantResult(Measurement(before, after, {"trained_records": len(shown)}))}
