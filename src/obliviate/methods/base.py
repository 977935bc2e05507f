"""What every objective shares: the batch it sees and the two building-block losses.

An objective (fine-tuning or an unlearning method) is a small dataclass whose fields
are its hyper-parameters and whose ``loss`` maps a batch to a scalar. The training loop
does all the batch plumbing (sampling forget and retain examples, padding, masks), so a
method file holds only its own mathematics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from obliviate.models.encoding import label_mask, sequence_logprobs

Batch = dict[str, torch.Tensor]


@dataclass
class Objective:
    """Base class. ``forget`` is the primary batch (the data a fine-tune learns, or the data
    an unlearning method removes); ``retain`` is drawn only when ``uses_retain`` is True."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    uses_retain: ClassVar[bool] = False

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Hyper-parameters and their values (what ``obliviate methods`` and manifests show)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def answer_nll(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean negative log-likelihood over all label tokens of the batch (the usual LM loss)."""
    logprobs = sequence_logprobs(model, batch)
    mask = label_mask(batch)
    return -(logprobs * mask).sum() / mask.sum().clamp(min=1)


def mean_answer_logprob(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Per-example mean log-probability of the answer tokens, shape (batch,)."""
    logprobs = sequence_logprobs(model, batch)
    mask = label_mask(batch)
    return (logprobs * mask).sum(-1) / mask.sum(-1).clamp(min=1)
