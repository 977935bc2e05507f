"""``clues``: walk up to the forgotten fact through the same group's other facts.

A model that no longer answers a question cold may still answer it at the end of a
conversation that has been talking about the same person or topic: the earlier turns
bring its other facts, and whatever is tied to them, back into play. Records group by
``Record.group`` (a ``group``, ``topic`` or ``person`` field). Each forget question is
asked as the last turn of one conversation whose earlier turns ask up to three other
facts of the same group, related ones first (for a birthplace: the birth year and the
profession).

- ``chain`` — the model answers the earlier questions itself, turn by turn, each
  answer in the history of the next: the attack needs nothing but the model.
- ``chain_gold`` — the earlier turns carry the gold answers: the strongest priming the
  group's other facts can give.

No earlier turn ever states the answer asked for at the end: a fact whose answer holds
it is not used as a clue, and in ``chain`` a turn where the model itself says it is
dropped (and counted). "Before" is the same records asked with no conversation.
"""

from __future__ import annotations

from collections.abc import Sequence

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    NotApplicable,
    Question,
    VariantResult,
    calibrating,
    calibration,
    group_key,
    group_records,
    plain,
    register_attack,
)
from obliviate.data.answers import answer_matches
from obliviate.data.records import Record
from obliviate.models.loader import LoadedModel

CLUE_TURNS = 3

#: The facts asked first on the way to an attribute; the rest follow in record order.
RELATED: dict[str, tuple[str, ...]] = {
    "birthplace": ("birth_year", "profession"),
    "employer": ("profession", "work"),
}

Turn = tuple[str, str]
Chain = tuple[Record, Question]


def _rank(attribute: str | None, preferred: Sequence[str]) -> int:
    """Sort key: the preferred attributes in their order, every other one after them."""
    return preferred.index(attribute) if attribute in preferred else len(preferred)


def _states(record: Record, clue: Record) -> bool:
    """The clue's question or answer holds the record's answer."""
    return answer_matches(record.answer, clue.prompt) or answer_matches(record.answer, clue.answer)


def clue_facts(record: Record, groups: dict[str, list[Record]]) -> list[Record]:
    """Up to ``CLUE_TURNS`` other facts of the record's group (``groups`` as
    ``group_records`` gives them), related attributes first, then the ones after it in
    record order; none that states the record's answer."""
    same = groups[group_key(record)]
    start = same.index(record)
    following = [same[(start + k) % len(same)] for k in range(1, len(same))]
    preferred = RELATED.get(record.meta.get("attribute", ""), ())
    ranked = sorted(following, key=lambda r: _rank(r.meta.get("attribute"), preferred))
    return [r for r in ranked if not _states(record, r)][:CLUE_TURNS]


def _final(record: Record, turns: Sequence[Turn]) -> Chain:
    return record, Question(record.prompt, record.answer, history=tuple(turns))


def gold_chains(records: Sequence[Record]) -> list[Chain]:
    """Each record's question after its clue questions answered with the gold answers
    (records without a clue are left out)."""
    groups = group_records(records)
    chosen = {r.id: clue_facts(r, groups) for r in records}
    return [
        _final(r, [(c.prompt, c.answer) for c in chosen[r.id]]) for r in records if chosen[r.id]
    ]


def model_chains(asker: Asker, records: Sequence[Record]) -> tuple[list[Chain], int]:
    """Each record's question after its clue questions answered by the model itself,
    turn by turn (one batch per turn across records), and how many of the model's
    answers were dropped for stating the target answer. Records left with no turn are
    left out."""
    groups = group_records(records)
    chosen = {r.id: clue_facts(r, groups) for r in records}
    turns: dict[str, list[Turn]] = {r.id: [] for r in records}
    dropped = 0
    for k in range(CLUE_TURNS):
        asking = [r for r in records if len(chosen[r.id]) > k]
        questions = [
            Question(chosen[r.id][k].prompt, chosen[r.id][k].answer, history=tuple(turns[r.id]))
            for r in asking
        ]
        for record, question, said in zip(asking, questions, asker.answers(questions), strict=True):
            if answer_matches(record.answer, said):
                dropped += 1
            else:
                turns[record.id].append((question.question, said))
    return [_final(r, turns[r.id]) for r in records if turns[r.id]], dropped


def _measure(asker: Asker, chains: Sequence[Chain]) -> Measurement:
    turns = sum(len(q.history) for _, q in chains) / len(chains)
    return Measurement(
        asker.score(plain([r for r, _ in chains])),
        asker.score([q for _, q in chains]),
        {"turns": turns},
    )


@register_attack(
    "clues",
    "the person's or topic's other facts asked first, in one conversation, then the forget "
    "question",
    lambda ctx: {"clue_turns": CLUE_TURNS, "related": {k: list(v) for k, v in RELATED.items()}},
)
def clues(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    gold = gold_chains(ctx.forget)
    if not gold:
        raise NotApplicable("no forget record has another fact of the same person or topic")
    if calibrating(ctx, role):  # every record with a clue (the model's own chains may drop some)
        records = [r for r, _ in gold]
        return calibration(asker, {"chain": records, "chain_gold": records})
    own, dropped = model_chains(asker, ctx.forget)
    # One batched pass over the last turns of both variants.
    asker.answers(plain(ctx.forget) + [q for _, q in own + gold])
    out: AttackOutput = {}
    if own:
        chain = _measure(asker, own)
        chain.extra["dropped_turns"] = dropped
        out["chain"] = VariantResult(chain)
    out["chain_gold"] = VariantResult(_measure(asker, gold))
    return out
