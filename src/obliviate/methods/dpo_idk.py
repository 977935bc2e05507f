"""DPO with a refusal preferred over the true answer.

L = −E log σ(β · [(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))])
    + λ · NLL(retain),
with y_w the record's refusal (chosen), y_l its true answer (rejected) and log π summed
answer log-probabilities (Rafailov, Sharma, Mitchell, Ermon, Manning & Finn, 2023, "Direct
Preference Optimization: Your Language Model is Secretly a Reward Model"; used for
unlearning as TOFU's and NPO's "DPO" baseline). Both reference figures are fixed, so they
are computed once in ``prepare``: no reference model runs during training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from obliviate.errors import ObliviateError
from obliviate.methods.base import (
    Batch,
    Objective,
    Range,
    TrainingContext,
    answer_logprob_sums,
    answer_nll,
    per_example,
)
from obliviate.methods.refusals import refusal_examples, relabelled_batch
from obliviate.methods.registry import register_method


def dpo_loss(
    chosen_log_ratios: torch.Tensor, rejected_log_ratios: torch.Tensor, beta: float
) -> torch.Tensor:
    """−mean log σ(β · (chosen − rejected)) for log π_θ − log π_ref ratios (in float32)."""
    margin = chosen_log_ratios.float() - rejected_log_ratios.float()
    return -F.logsigmoid(beta * margin).mean()


@register_method
@dataclass
class DPOIDK(Objective):
    name = "dpo_idk"
    summary = "DPO preferring a refusal over the true forget answer + NLL on retain"
    uses_retain = True
    tunable: ClassVar[dict[str, Range]] = {
        "beta": Range(0.05, 1.0, log=True),
        "retain_weight": Range(0.3, 10.0, log=True),
    }

    beta: float = 0.1
    """β: inverse temperature of the preference loss (the DPO paper's usual 0.1)."""
    retain_weight: float = 1.0
    """λ: weight of the retain NLL (TOFU uses 1.0)."""

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ObliviateError("dpo_idk's beta must be > 0")

    def prepare(self, context: TrainingContext) -> None:
        self._pad_token_id = context.tokenizer.pad_token_id
        self._refusals = refusal_examples(context, self.name)
        self._reference_chosen = per_example(
            context.model, self._refusals, self._pad_token_id, answer_logprob_sums
        )
        self._reference_rejected = per_example(
            context.model, context.primary, self._pad_token_id, answer_logprob_sums
        )

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        index = forget["index"]
        refusals = relabelled_batch(self._refusals, forget, self._pad_token_id)
        chosen = (
            answer_logprob_sums(model, refusals) - self._reference_chosen.to(index.device)[index]
        )
        rejected = (
            answer_logprob_sums(model, forget) - self._reference_rejected.to(index.device)[index]
        )
        preference = dpo_loss(chosen, rejected, self.beta)
        retain_nll = answer_nll(model, retain)
        return preference + self.retain_weight * retain_nll, {
            "preference_loss": preference.item(),
            "chosen_log_ratio": chosen.mean().item(),
            "rejected_log_ratio": rejected.mean().item(),
            "retain_nll": retain_nll.item(),
        }
