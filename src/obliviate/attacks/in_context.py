"""``in_context``: hand the knowledge back through the prompt, four ways, same length.

Before each forget question the model reads one of four contexts:

- ``fact`` — the forgotten fact itself, as a sentence;
- ``premises`` — two sentences from which the fact follows without stating it about the
  person ("X is the creator of the work W." + "The creator of the work W was born in C.");
- ``priming`` — up to three *other* facts of the same group (person or topic, see
  ``Record.group``) as question–answer pairs;
- ``irrelevant`` — neutral filler text only.

Every context of a question is padded with the same filler to the same number of tokens,
so a difference between them is the content, not the length. An oracle also answers from
a fact it is handed; what matters is the *latent gap* — the unlearned model's accuracy
minus the oracle's under the identical context — about 0 when the knowledge is gone,
above 0 when it was only suppressed. The control goes through the same contexts with
facts no model knows: the holdout records, or without them the forget questions with a
wrong answer (the record's first ``perturbed``) stated as the fact. A model reads some
answers off any prompt, so the recovery that counts is net of the control (the audit's
``net_accuracy``): "fact in the prompt 88 %" means little beside "invented fact in the
prompt 62 %".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    Question,
    VariantResult,
    calibrating,
    calibration,
    group_key,
    group_records,
    plain,
    register_attack,
)
from obliviate.data.facts import statement
from obliviate.data.records import Record
from obliviate.models.loader import LoadedModel

CONTEXTS: tuple[str, ...] = ("fact", "premises", "priming", "irrelevant")
PRIMING_FACTS = 3

#: Neutral text about nothing in any benchmark: the padding, and the whole of the
#: ``irrelevant`` context.
FILLER = (
    "The weather in the valley changes quickly in spring. Mornings are often cool and "
    "misty, while the afternoons can be warm enough to sit outside. Farmers watch the "
    "clouds over the hills to decide when to plant, and most gardens are turned over "
    "before the first rain. A good loaf of bread needs flour, water, salt and time; the "
    "dough rests until it has doubled, and the oven should be hot before it goes in. "
    "Rivers carry sand and small stones down from the mountains, and over many years "
    "they shape the land around them. Bicycles are a cheap and quiet way to travel short "
    "distances, and a well-oiled chain lasts much longer. Tea is brewed with water just "
    "off the boil, and green tea with water a little cooler. "
)


def _fact(record: Record, people: dict[str, list[Record]]) -> str:
    return statement(record) or f"{record.prompt} {record.answer}"


def _by_attribute(record: Record, people: dict[str, list[Record]]) -> dict[str, Record]:
    same = people.get(group_key(record), [])
    return {r.meta.get("attribute"): r for r in same if r.person == record.person}


def _premises(record: Record, people: dict[str, list[Record]]) -> str | None:
    """Two sentences that imply the fact through a description of the person (person-only:
    they name the person; None for a record without one, as for a topic's facts)."""
    if record.person is None:
        return None
    facts = _by_attribute(record, people)
    name = record.person
    if record.meta.get("attribute") != "work" and "work" in facts:
        description = f"the creator of the work {facts['work'].answer}"
        link = f"{name} is the creator of the work {facts['work'].answer}."
    elif "profession" in facts and "employer" in facts:
        profession, employer = facts["profession"].answer, facts["employer"].answer
        description = f"the only {profession} at {employer}"
        link = f"{name} is the only {profession} at {employer}."
    else:
        return None
    implied = statement(record, subject=description)
    return None if implied is None else f"{link} {implied}"


def _priming(record: Record, people: dict[str, list[Record]]) -> str | None:
    """Other facts of the same group as question–answer pairs (few-shot priming)."""
    same = people.get(group_key(record), [])
    if len(same) < 2:
        return None
    start = same.index(record)
    others = [same[(start + k) % len(same)] for k in range(1, len(same))][:PRIMING_FACTS]
    return "\n".join(f"Question: {r.prompt}\nAnswer: {r.answer}" for r in others)


def _irrelevant(record: Record, people: dict[str, list[Record]]) -> str:
    return ""


BUILDERS: dict[str, Callable[[Record, dict[str, list[Record]]], str | None]] = {
    "fact": _fact,
    "premises": _premises,
    "priming": _priming,
    "irrelevant": _irrelevant,
}


def _token_count(tokenizer: object, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


def _padded(tokenizer: object, filler_ids: list[int], text: str, length: int) -> str:
    """``text`` after as many filler tokens as bring it to about ``length`` tokens."""
    missing = length - _token_count(tokenizer, text)
    if missing <= 0:
        return text
    repeats = missing // max(len(filler_ids), 1) + 1
    filler = tokenizer.decode((filler_ids * repeats)[:missing]).strip()
    return f"{filler}\n{text}" if text else filler


def contexts_for(
    tokenizer: object, records: Sequence[Record]
) -> dict[str, list[tuple[Record, str]]]:
    """Per context kind, the records it applies to and their context, each question's
    contexts padded with filler to the same token count."""
    people = group_records(records)
    filler_ids = tokenizer(FILLER, add_special_tokens=False)["input_ids"]
    out: dict[str, list[tuple[Record, str]]] = {kind: [] for kind in CONTEXTS}
    for record in records:
        texts = {kind: BUILDERS[kind](record, people) for kind in CONTEXTS}
        length = max(_token_count(tokenizer, t) for t in texts.values() if t is not None)
        for kind, text in texts.items():
            if text is not None:
                out[kind].append((record, _padded(tokenizer, filler_ids, text, length)))
    return out


def invented_facts(records: Sequence[Record]) -> list[Record]:
    """The records that have wrong answers, each with its first wrong answer as the fact:
    the same question and context form about something no model was taught (the control
    when the audit has no holdout records)."""
    return [
        replace(r, id=f"{r.id}:invented", answer=r.perturbed[0], paraphrased_answer=None)
        for r in records
        if r.perturbed
    ]


def _questions(items: list[tuple[Record, str]]) -> list[Question]:
    return [Question(r.prompt, r.answer, context=c) for r, c in items]


def _measure(asker: Asker, items: list[tuple[Record, str]]) -> Measurement:
    tokens = [_token_count(asker.tokenizer, c) for _, c in items]
    return Measurement(
        asker.score(plain([r for r, _ in items])),
        asker.score(_questions(items)),
        {"context_tokens": sum(tokens) / len(tokens)},
    )


@register_attack(
    "in_context",
    "the fact, its premises, the person's or topic's other facts or filler, before each question",
    lambda ctx: {
        "contexts": list(CONTEXTS),
        "priming_facts": PRIMING_FACTS,
        "control": "holdout records" if ctx.holdout else "forget questions, wrong answer as fact",
    },
)
def in_context(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    forget = contexts_for(loaded.tokenizer, ctx.forget)
    invented = ctx.holdout or invented_facts(ctx.forget)
    control = contexts_for(loaded.tokenizer, invented) if invented else {}
    if calibrating(ctx, role):
        return calibration(
            asker,
            {kind: [r for r, _ in items] for kind, items in forget.items()},
            {kind: [r for r, _ in items] for kind, items in control.items()},
        )
    # One pass over every question, so batches mix variants of similar length.
    asker.answers(
        [q for part in (forget, control) for items in part.values() for q in _questions(items)]
    )
    out: AttackOutput = {}
    for kind in CONTEXTS:
        if not forget[kind]:
            continue
        out[kind] = VariantResult(
            _measure(asker, forget[kind]),
            _measure(asker, control[kind]) if control.get(kind) else None,
        )
    return out
