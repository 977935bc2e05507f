"""What every attack shares: the questions it asks, how a model answers them, the scores.

An attack turns the forget records into ``Question``s (a question, possibly with a
context before it or the start of the answer forced), asks a model, and reports for each
of its variants the forget accuracy and probability before and after the attack. The
``Asker`` remembers what one model answered, so the plain questions that several attacks
use as their "before" are asked once.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from obliviate.data.answers import answer_matches
from obliviate.data.records import Record
from obliviate.errors import ObliviateError
from obliviate.evaluation import statistics
from obliviate.evaluation.model_outputs import generate_and_score, mean_logprob, score_encoded
from obliviate.guard.guard import Guard
from obliviate.models.encoding import (
    IGNORE_INDEX,
    Encoded,
    format_answer,
    format_prompt,
    uses_chat_template,
)
from obliviate.models.loader import LoadedModel
from obliviate.models.precision import autocast_dtype
from obliviate.options import (
    AUDIT_SEED,
    BUDGET,
    EVAL_PRECISION,
    RELEARN_LR,
    RELEARN_PRECISION,
    RELEARN_STEPS,
)


@dataclass(frozen=True)
class Question:
    """One question put to a model: ``context`` goes before it in the same user turn,
    ``prefill`` is the forced start of the answer (the model continues from it) and
    ``history`` holds earlier (user, assistant) turns of the same conversation."""

    question: str
    answer: str
    context: str | None = None
    prefill: str = ""
    history: tuple[tuple[str, str], ...] = ()

    @property
    def asked(self) -> Question:
        """The question without its expected answer: what generation depends on."""
        return replace(self, answer="")


def plain(records: Sequence[Record]) -> list[Question]:
    """The records' own questions, asked as evaluation asks them."""
    return [Question(r.prompt, r.answer) for r in records]


@dataclass(frozen=True)
class Score:
    """Forget accuracy (gold answer in the greedy answer) and TOFU's probability."""

    accuracy: float
    prob: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        return {"accuracy": self.accuracy, "prob": self.prob, "n": self.n}


@dataclass
class Measurement:
    """One model under one attack variant: its score without and with the attack
    (``after`` is None where the model was only asked plainly, see ``calibration``)."""

    before: Score
    after: Score | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class VariantResult:
    """A variant's measurement on the forget records, and on holdout people as a control."""

    forget: Measurement
    control: Measurement | None = None


AttackOutput = dict[str, VariantResult]


@dataclass
class AuditContext:
    """The records under attack and the attack settings, the same for every model."""

    forget: list[Record]
    holdout: list[Record]
    retain: list[Record] = field(default_factory=list)
    """Retained facts (the tamper attack fine-tunes on them)."""
    general: list[Record] | None = None
    """General questions, those that overlap the forget set dropped (tamper's general
    data: the world split); None: the built-in world questions, dropped the same way."""
    target: str | None = None
    """The target's spec, for attacks that compare weights with it (quantize)."""
    seed: int = AUDIT_SEED.default
    precision: str = EVAL_PRECISION.default
    utility: dict[str, list[Record]] = field(default_factory=dict)
    """Retained and general questions (retain, neighbors, world): a guard's false refusals."""
    budget: str = BUDGET.default
    """``small`` or ``full``: step counts and sample sizes of the costlier attacks."""
    relearn_steps: int = RELEARN_STEPS.default
    relearn_lr: float = RELEARN_LR.default
    relearn_batch_size: int = 4
    relearn_precision: str = RELEARN_PRECISION.default
    """Autocast of the attacker's fine-tunes (relearn, tamper). ``auto`` trains in bf16
    where the hardware computes it natively, as an attacker would and as obliviate's own
    training does (half the time of fp32 on a bf16 CPU); ``fp32`` makes those two attacks'
    figures the same on every machine, as ``precision`` does for the questions."""
    max_new_tokens: int = 24
    shared: dict[Any, Any] = field(default_factory=dict)
    """Figures an attack computes of a model other than the attacked one (the target, in
    ``diff``), kept here for the next attacked model instead of computed again."""


def calibrating(ctx: AuditContext, role: str) -> bool:
    """Whether this model is only calibrated, not attacked: under the small budget the
    target is asked its plain questions alone. Its plain accuracy on each variant's
    records is the top of every recovery, the one figure the audit's verdicts take from
    it; attacking it too (``--budget full``) shows each attack's ceiling, at a third of
    the audit's time."""
    return role == "target" and ctx.budget == "small"


def calibration(
    asker: Asker,
    variants: dict[str, Sequence[Record]],
    controls: dict[str, Sequence[Record]] | None = None,
) -> AttackOutput:
    """Each variant's records (and its control's) asked plainly, with no attack: the
    variant's ``before``, and ``after`` None. Variants without records are left out."""
    controls = controls or {}
    asker.answers(  # one batched pass over every plain question
        plain([r for part in (variants, controls) for rs in part.values() for r in rs])
    )

    def unattacked(records: Sequence[Record]) -> Measurement:
        return Measurement(asker.score(plain(records)), None, {"attacked": False})

    return {
        name: VariantResult(
            unattacked(records), unattacked(controls[name]) if controls.get(name) else None
        )
        for name, records in variants.items()
        if records
    }


def conversation_prompt(
    tokenizer: object,
    history: Sequence[tuple[str, str]],
    question: str,
    context: str | None = None,
) -> str:
    """The text before the answer: earlier turns, then ``context`` and the question in the
    last user turn (without history, exactly ``format_prompt``)."""
    if not history:
        return format_prompt(tokenizer, question, context)
    if not uses_chat_template(tokenizer):
        turns = "".join(f"{format_prompt(tokenizer, u)} {a}\n" for u, a in history)
        return turns + format_prompt(tokenizer, question, context)
    messages = [
        message
        for user, assistant in history
        for message in (
            {"role": "user", "content": user},
            {"role": "assistant", "content": assistant},
        )
    ]
    content = f"{context}\n\n{question}" if context else question
    messages.append({"role": "user", "content": content})
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class Asker:
    """Asks one model questions in batches, remembering every answer and score.

    With a ``guard``, every question is asked behind it: the guard's context goes before
    it, and the answer is what the guard's filters let through.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        precision: str = EVAL_PRECISION.default,
        max_new_tokens: int = 24,
        guard: Guard | None = None,
    ):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.precision = precision
        self.max_new_tokens = max_new_tokens
        self.guard = guard
        self.dtype = autocast_dtype(precision)
        self._generated: dict[Question, str] = {}
        self._logprob: dict[Question, float] = {}

    def for_model(self, loaded: LoadedModel) -> Asker:
        """An asker with the same settings (and guard) for another model, such as this
        one after an attack changed its weights."""
        return Asker(loaded, self.precision, self.max_new_tokens, self.guard)

    def _prompt_ids(self, q: Question) -> list[int]:
        context = self.guard.wrap(q.context) if self.guard else q.context
        text = conversation_prompt(self.tokenizer, q.history, q.question, context) + q.prefill
        special = not uses_chat_template(self.tokenizer)
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def _answer_ids(self, q: Question) -> list[int]:
        answer = format_answer(self.tokenizer, q.answer)
        if q.prefill and not answer.startswith(" "):
            answer = " " + answer
        return self.tokenizer(answer, add_special_tokens=False)["input_ids"]

    def _encode(self, q: Question) -> Encoded:
        prompt_ids, answer_ids = self._prompt_ids(q), self._answer_ids(q)
        return Encoded(
            input_ids=tuple(prompt_ids + answer_ids),
            labels=tuple([IGNORE_INDEX] * len(prompt_ids) + answer_ids),
        )

    def _fill(self, questions: Sequence[Question]) -> None:
        was_training = self.model.training
        self.model.eval()
        autocast = torch.autocast(
            self.model.device.type, dtype=self.dtype, enabled=self.dtype is not None
        )
        try:
            with autocast:
                new = list(
                    dict.fromkeys(q.asked for q in questions if q.asked not in self._generated)
                )
                if new:
                    # Each new prompt is scored, in the same pass, with the first answer
                    # still unscored after it.
                    along: dict[Question, Question] = {}
                    for q in questions:
                        if q not in self._logprob:
                            along.setdefault(q.asked, q)
                    paired = [along.get(a) for a in new]
                    texts, means = generate_and_score(
                        self.model,
                        self.tokenizer,
                        [self._prompt_ids(q) for q in new],
                        [self._answer_ids(q) if q is not None else [] for q in paired],
                        self.max_new_tokens,
                    )
                    if self.guard is not None:
                        texts = self.guard.filter(
                            [q.question for q in new], [q.context for q in new], texts
                        )
                    self._generated.update(zip(new, texts, strict=True))
                    self._logprob.update(
                        (q, mean) for q, mean in zip(paired, means, strict=True) if q is not None
                    )
                unscored = list(dict.fromkeys(q for q in questions if q not in self._logprob))
                if unscored:
                    stats = score_encoded(
                        self.model,
                        [self._encode(q) for q in unscored],
                        [q.answer for q in unscored],
                        self.tokenizer.pad_token_id,
                    )
                    self._logprob.update(
                        (q, mean_logprob(s)) for q, s in zip(unscored, stats, strict=True)
                    )
        finally:
            self.model.train(was_training)

    def answers(self, questions: Sequence[Question]) -> list[str]:
        """The greedy continuation of each question (after its prefill), in order."""
        self._fill(questions)
        return [self._generated[q.asked] for q in questions]

    def score(self, questions: Sequence[Question]) -> Score:
        """Accuracy and probability of the expected answers (0 questions: an error)."""
        if not questions:
            raise ObliviateError("an attack had no questions to ask; check the forget records")
        answers = self.answers(questions)
        hits = [answer_matches(q.answer, a) for q, a in zip(questions, answers, strict=True)]
        prob = statistics.answer_probability([-self._logprob[q] for q in questions])
        return Score(accuracy=sum(hits) / len(hits), prob=prob, n=len(questions))


class NotApplicable(Exception):
    """An attack that the records give nothing to work with (no paraphrases, say); the
    audit records the reason and goes on with the other attacks."""


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack: ``run(context, loaded, asker, role)`` gives its variants."""

    name: str
    description: str
    run: Callable[[AuditContext, LoadedModel, Asker, str], AttackOutput]
    settings: Callable[[AuditContext], dict[str, Any]] = lambda ctx: {}


ATTACKS: dict[str, AttackSpec] = {}


def register_attack(
    name: str,
    description: str,
    settings: Callable[[AuditContext], dict[str, Any]] | None = None,
) -> Callable[[Callable[..., AttackOutput]], Callable[..., AttackOutput]]:
    """Decorator: make an attack function selectable as ``--attacks NAME``."""

    def add(fn: Callable[..., AttackOutput]) -> Callable[..., AttackOutput]:
        if name in ATTACKS:
            raise ValueError(f"attack {name!r} is already registered")
        ATTACKS[name] = AttackSpec(name, description, fn, settings or (lambda ctx: {}))
        return fn

    return add


def group_key(record: Record) -> str:
    """The key of the record's group in ``group_records``: its ``group`` (a group, topic or
    person field), or the record alone when it has none."""
    return record.group or f"record:{record.id}"


def group_records(records: Sequence[Record]) -> dict[str, list[Record]]:
    """Records by what they are about (``Record.group``: a group, topic or person), in
    order of first appearance; a record without one is its own group."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(group_key(r), []).append(r)
    return groups


def split_groups(records: Sequence[Record], seed: int) -> tuple[list[Record], list[Record]]:
    """Two halves of the records with no group in both (groups shuffled by ``seed``): what
    one half teaches about a person or topic cannot answer the other half's questions.

    A request about one topic (knowledge from pretraining: "forget Jupiter") has one group;
    its facts are then split one by one, which is the question such a request asks: does
    relearning some facts of the topic bring the others back."""
    groups = list(group_records(records).values())
    if len(groups) < 2:
        groups = [[r] for r in records]
    if len(groups) < 2:
        raise NotApplicable(f"{len(records)} record(s): too few to split in two halves")
    random.Random(seed).shuffle(groups)
    half = len(groups) // 2
    return [r for g in groups[:half] for r in g], [r for g in groups[half:] for r in g]
