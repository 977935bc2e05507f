"""Fine-tuning a copy of the attacked model: what the relearn and tamper attacks share."""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from obliviate.attacks.base import AuditContext
from obliviate.data.records import Record
from obliviate.methods import FineTune
from obliviate.models.encoding import encode_fact
from obliviate.models.loader import LoadedModel
from obliviate.train.config import TrainConfig
from obliviate.train.loop import train


def fine_tuned_copy(
    loaded: LoadedModel,
    records: Sequence[Record],
    ctx: AuditContext,
    steps: int,
    on_step: Callable[[int, LoadedModel], None] | None = None,
) -> LoadedModel:
    """A copy of the model fine-tuned on ``records`` (NLL on the answers) for ``steps``
    steps at ``ctx.relearn_lr`` with a constant schedule, in ``ctx.relearn_precision``;
    the original is untouched.

    ``on_step(step, copy)`` is called after every step, so a caller can measure the copy
    along the way (a recovery curve) without restarting the optimiser.
    """
    attacked = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    config = TrainConfig(
        max_steps=steps,
        lr=ctx.relearn_lr,
        batch_size=ctx.relearn_batch_size,
        scheduler="constant",
        seed=ctx.seed,
        precision=ctx.relearn_precision,
        checkpoint_every=0,
    )
    encoded = [encode_fact(loaded.tokenizer, r.prompt, r.answer) for r in records]
    callback = None if on_step is None else (lambda step, _, __: on_step(step, attacked))
    with tempfile.TemporaryDirectory(prefix="obliviate-attack-") as work:
        train(
            attacked.model,
            FineTune(),
            encoded,
            None,
            config,
            loaded.tokenizer.pad_token_id,
            Path(work),
            on_step=callback,
        )
    return attacked
