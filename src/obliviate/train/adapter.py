"""A training run's LoRA adapter kept unmerged (``--keep-adapter``): when it may be, and
what the run records of it.

Merged, the adapter becomes a full copy of the weights; kept, ``model/`` is the adapter
alone (a few MB to share), naming the base model every command loads it over
(``models.loader``).
"""

from __future__ import annotations

from typing import Any

from obliviate.errors import ObliviateError
from obliviate.methods.base import Objective
from obliviate.models.adapters import check_keep_adapter
from obliviate.train.config import TrainConfig


def check_adapter_kept(keep_adapter: bool, config: TrainConfig, objective: Objective) -> None:
    """Refuse ``--keep-adapter`` where the result is no adapter: no LoRA trained, or a method
    that turns the trained weights into its result afterwards (task-vector negation)."""
    check_keep_adapter(keep_adapter, config.lora)
    if keep_adapter and type(objective).finalize is not Objective.finalize:
        raise ObliviateError(
            f"method '{objective.name}' makes its result from the trained weights after "
            "training (task-vector negation), which is no LoRA adapter; leave out "
            "--keep-adapter"
        )


def adapter_record(base: str, config: TrainConfig) -> dict[str, Any]:
    """The manifest's and model card's account of a kept adapter: ``model/`` is a peft LoRA
    adapter, not weights, over ``base``."""
    return {
        "format": "peft LoRA adapter",
        "base_model": base,
        "rank": config.lora_rank,
        "alpha": config.lora_alpha,
    }
