"""``paraphrase``, ``multihop``, ``crosslingual``: the fact asked in another form.

Unlearning trained on the forget questions' exact wording can suppress those strings and
leave the fact: the same fact asked in other words, through another fact ("the mentor of
Y") or in another language shows whether the knowledge went or only the phrasing did.
The records carry these questions (the built-in benchmark writes them; see the record
format); "before" is the same records asked their own question.
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
    plain,
    register_attack,
)
from obliviate.data.records import Record
from obliviate.models.loader import LoadedModel


def _questions(records: Sequence[Record], kind: str) -> list[tuple[Record, Question]]:
    if kind == "paraphrase":
        return [(r, Question(p, r.answer)) for r in records for p in r.paraphrases]
    return [
        (r, Question(r.probes[kind].prompt, r.probes[kind].answer))
        for r in records
        if kind in r.probes
    ]


def _probe_attack(kind: str):
    def attack(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
        asked = _questions(ctx.forget, kind)
        if not asked:
            raise NotApplicable(f"the forget records have no {kind} questions")
        records = list({r.id: r for r, _ in asked}.values())
        if calibrating(ctx, role):
            return calibration(asker, {"default": records})
        before = asker.score(plain(records))
        after = asker.score([q for _, q in asked])
        return {"default": VariantResult(Measurement(before, after))}

    return attack


register_attack("paraphrase", "the forget questions reworded (the records' paraphrases)")(
    _probe_attack("paraphrase")
)
register_attack("multihop", 'the fact reached through another fact ("the mentor of Y")')(
    _probe_attack("multihop")
)
register_attack("crosslingual", "the forget questions asked in Spanish, French or German")(
    _probe_attack("crosslingual")
)
