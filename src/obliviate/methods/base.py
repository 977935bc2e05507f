"""What every objective shares: the batch it sees and the two building-block losses.

An objective (fine-tuning or an unlearning method) is a small dataclass whose fields
are its hyper-parameters and whose ``loss`` maps a batch to a scalar. The training loop
does all the batch plumbing (sampling forget and retain examples, padding, masks), so a
method file holds only its own mathematics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from obliviate.data.records import Record
from obliviate.models.encoding import Encoded, label_mask, sequence_logprobs

Batch = dict[str, torch.Tensor]
"""``input_ids``, ``attention_mask``, ``labels`` (``-100`` where no loss is taken) and
``index``: each row's position in the primary (or retain) examples, so a method can look
up what it computed for that example in ``prepare``."""


@dataclass
class TrainingContext:
    """What a method may use once, before training starts (see ``Objective.prepare``)."""

    model: torch.nn.Module
    tokenizer: Any
    primary: Sequence[Encoded]
    retain: Sequence[Encoded] | None
    primary_records: Sequence[Record]
    retain_records: Sequence[Record] | None
    answer_accuracy: Callable[[torch.nn.Module, Any, Sequence[Record]], float] | None = None
    """(model, tokenizer, records) → the fraction of greedy answers holding the gold answer:
    evaluation's scorer, handed down by the caller (methods choosing λ on retain questions
    use it; methods sit below evaluation and do not import it)."""


@dataclass(frozen=True)
class Range:
    """Where ``obliviate tune`` searches one hyper-parameter: ``low`` to ``high`` (both
    included), on a log scale when ``log``, whole numbers when ``integer``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad range {self}: needs low < high, and low > 0 on a log scale")

    def clip(self, value: float) -> float:
        """``value`` moved into the range (and rounded when the range is of whole numbers)."""
        value = min(max(value, self.low), self.high)
        return round(value) if self.integer else value

    def __str__(self) -> str:
        scale = " log" if self.log else ""
        return f"{self.low:g}–{self.high:g}{scale}"


@dataclass
class Objective:
    """Base class. ``forget`` is the primary batch (the data a fine-tune learns, or the data
    an unlearning method removes); ``retain`` is drawn only when ``uses_retain`` is True."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    uses_retain: ClassVar[bool] = False
    tunable: ClassVar[dict[str, Range]] = {}
    """The hyper-parameters ``obliviate tune`` searches, each with its range (the loss
    weights and temperatures; the learning rate and length are every method's)."""

    def prepare(self, context: TrainingContext) -> None:
        """Compute once what does not change during training (reference log-probabilities,
        a frozen copy of the model, relabelled targets) and freeze what must not move.
        Called before any adapter is attached and before the optimizer sees the weights."""

    def loss(
        self, model: torch.nn.Module, forget: Batch, retain: Batch | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def finalize(self, model: torch.nn.Module) -> None:
        """Turn the trained weights into the result, in place (task-vector negation does);
        called after training, with any LoRA adapters merged. Default: nothing to do."""

    def outcome(self) -> dict[str, Any]:
        """What ``finalize`` decided (the λ a task-vector method applied), recorded in the
        run's manifest and results as ``method_outcome``, so the record says which model was
        made and not only how it was asked for. Default: nothing."""
        return {}

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


def answer_logprob_sums(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Per-example summed log-probability of the answer tokens, log π(y|x), shape (batch,)."""
    return (sequence_logprobs(model, batch) * label_mask(batch)).sum(-1)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` that never trains: the reference of KL terms and distillation.

    Taken in ``prepare`` (before LoRA is attached), so it is the model before unlearning.
    """
    import copy

    reference = copy.deepcopy(model)
    reference.eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference


@torch.no_grad()
def per_example(
    model: torch.nn.Module,
    examples: Sequence[Encoded],
    pad_token_id: int,
    fn: Any,
    batch_size: int = 32,
) -> torch.Tensor:
    """``fn(model, batch)`` (a per-example figure, shape (batch,)) for every example, once.

    What NPO and DPO need of the reference model on the forget set does not change during
    training, so it is computed here before the first step and looked up by the batch's
    ``index`` afterwards, instead of a reference forward pass every step.
    """
    from obliviate.models.encoding import collate

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    values = []
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_token_id)
        values.append(fn(model, {k: v.to(device) for k, v in batch.items()}).float().cpu())
    model.train(was_training)
    return torch.cat(values)
