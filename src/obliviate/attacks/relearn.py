"""``relearn``: a few fine-tuning steps on half the forget people, then ask about the rest.

The facts of the held-out half are never shown. If they come back anyway, the
unlearning only hid them behind something a little fine-tuning undoes; knowledge truly
removed comes back no faster than in the oracle, which never had it.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    VariantResult,
    plain,
    register_attack,
    split_people,
)
from obliviate.methods import FineTune
from obliviate.models.encoding import encode_fact
from obliviate.models.loader import LoadedModel
from obliviate.train.loop import TrainConfig, train


def _settings(ctx: AuditContext) -> dict:
    return {
        "steps": ctx.relearn_steps,
        "lr": ctx.relearn_lr,
        "batch_size": ctx.relearn_batch_size,
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
    before = asker.score(plain(held_out))
    attacked = copy.deepcopy(loaded.model)
    config = TrainConfig(
        max_steps=ctx.relearn_steps,
        lr=ctx.relearn_lr,
        batch_size=ctx.relearn_batch_size,
        scheduler="constant",
        seed=ctx.seed,
        precision="fp32" if ctx.precision == "fp32" else "auto",
        checkpoint_every=0,
    )
    encoded = [encode_fact(loaded.tokenizer, r.prompt, r.answer) for r in shown]
    with tempfile.TemporaryDirectory(prefix="obliviate-relearn-") as work:
        train(
            attacked, FineTune(), encoded, None, config, loaded.tokenizer.pad_token_id, Path(work)
        )
    relearned = dataclasses.replace(loaded, model=attacked)
    after = asker.for_model(relearned).score(plain(held_out))
    del attacked
    return {"default": VariantResult(Measurement(before, after, {"trained_records": len(shown)}))}
