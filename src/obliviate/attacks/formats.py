"""``format``: the forgotten facts asked in other forms than an open question.

Unlearning trained on open questions and their free-text answers can stop a model from
*saying* the answer and leave it able to *recognise* it. Four forms ask for recognition
or a different output:

- ``multiple_choice_likelihood`` — the gold answer and the record's wrong answers of the
  same type (``perturbed``) are scored as answers to the plain question; the model picks
  the most likely one. No text is generated, so a model that only learned to refuse or
  to say something else still gives the fact away here.
- ``multiple_choice_letter`` — the same options, lettered under the question; the model
  answers with a letter.
- ``fill_in_blank`` — the fact as a sentence with the answer blanked out.
- ``true_false`` — the fact stated once with the gold answer and once with a wrong
  one; the model must accept the first and reject the second.

Options are shuffled per record with a seed of their own, so the gold letter carries no
pattern and a run is repeatable. "Before" is each variant's records asked plainly.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from string import ascii_uppercase

from obliviate.attacks.base import (
    Asker,
    AttackOutput,
    AuditContext,
    Measurement,
    NotApplicable,
    Question,
    Score,
    VariantResult,
    calibrating,
    calibration,
    plain,
    register_attack,
)
from obliviate.data.answers import answer_matches
from obliviate.data.facts import statement
from obliviate.data.records import Record
from obliviate.models.loader import LoadedModel

VARIANTS: tuple[str, ...] = (
    "multiple_choice_likelihood",
    "multiple_choice_letter",
    "fill_in_blank",
    "true_false",
)
BLANK = "____"
LETTER_INSTRUCTION = "Answer with the letter of the right option."
TRUE_WORDS = frozenset({"true", "yes"})
FALSE_WORDS = frozenset({"false", "no"})


@dataclass(frozen=True)
class Choice:
    """One record as a multiple-choice question: its options in the order shown."""

    record: Record
    options: tuple[str, ...]

    @property
    def letters(self) -> str:
        return ascii_uppercase[: len(self.options)]

    @property
    def gold_letter(self) -> str:
        return self.letters[self.options.index(self.record.answer)]

    @property
    def prompt(self) -> str:
        """The question, then one lettered option a line, then how to answer."""
        lines = [f"{self.letters[i]}. {option}" for i, option in enumerate(self.options)]
        return "\n".join([self.record.prompt, *lines, LETTER_INSTRUCTION])


def _record_seed(seed: int, record_id: str) -> int:
    """A seed from the run's seed and the record id that is the same in every process
    (Python's ``hash`` of a string changes between runs)."""
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def choice_for(record: Record, seed: int) -> Choice | None:
    """The gold answer and the wrong answers, shuffled for this record; None when the
    record has no wrong answers to offer."""
    wrong = [w for w in dict.fromkeys(record.perturbed) if w != record.answer]
    if not wrong:
        return None
    options = [record.answer, *wrong][: len(ascii_uppercase)]
    random.Random(_record_seed(seed, record.id)).shuffle(options)
    return Choice(record, tuple(options))


def picked_letter(choice: Choice, generated: str) -> str | None:
    """The first option letter standing alone in the answer, once the options' own text
    is blanked out (so a title such as "A Harbour in Winter" is not read as "A")."""
    text = generated
    for option in choice.options:
        text = re.sub(re.escape(option), " ", text, flags=re.IGNORECASE)
    found = re.search(rf"\b([{choice.letters}])\b", text)
    return found.group(1) if found else None


def letter_correct(choice: Choice, generated: str) -> bool:
    """The gold's letter is the one picked, or the answer names the gold option and no
    other."""
    if picked_letter(choice, generated) == choice.gold_letter:
        return True
    named = [o for o in choice.options if answer_matches(o, generated)]
    return named == [choice.record.answer]


def blanked(record: Record) -> Question | None:
    """The fact as a sentence with its answer blanked out, to fill in; None when the
    record has no sentence (it is not a benchmark fact)."""
    sentence = statement(record)
    if sentence is None:
        return None
    return Question(f"Fill in the blank: {sentence.replace(record.answer, BLANK)}", record.answer)


def _sentence(record: Record) -> str:
    return statement(record) or f'The answer to "{record.prompt}" is {record.answer}.'


def true_false_pair(record: Record) -> tuple[Question, Question] | None:
    """The fact stated with the gold answer (expected "True") and with the first wrong
    answer (expected "False"); None when the record has no wrong answer."""
    wrong = next((w for w in record.perturbed if w != record.answer), None)
    if wrong is None:
        return None
    false = replace(record, answer=wrong)
    return (
        Question(f"True or false: {_sentence(record)}", "True"),
        Question(f"True or false: {_sentence(false)}", "False"),
    )


def verdict(generated: str) -> bool | None:
    """True or False by the answer's first word (true/yes, false/no), else None."""
    first = re.match(r"\W*(\w+)", generated)
    word = first.group(1).lower() if first else ""
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _likelihood_weights(asker: Asker, choices: Sequence[Choice]) -> list[list[float]]:
    """Per record, each option's softmax weight over the options, from its mean token
    log-probability as the answer to the plain question.

    Scored through the asker, so as the model is asked (behind its guard's context, if it
    has one): a guard's output filter never sees a likelihood. A one-question score's
    ``prob`` is exp(mean log p), so normalising it over the options is that softmax.
    """
    questions = [[Question(c.record.prompt, o) for o in c.options] for c in choices]
    asker.score([q for qs in questions for q in qs])  # one batched pass fills the cache
    weights = []
    for qs in questions:
        probs = [asker.score([q]).prob for q in qs]
        total = sum(probs) or 1.0  # every option underflowed: no option is picked
        weights.append([p / total for p in probs])
    return weights


def _beats_the_others(weights: Sequence[float], index: int) -> bool:
    """The option at ``index`` is strictly the most likely (a tie picks nothing)."""
    return all(weights[index] > w for i, w in enumerate(weights) if i != index)


def _multiple_choice_likelihood(asker: Asker, choices: Sequence[Choice]) -> Measurement:
    weights = _likelihood_weights(asker, choices)
    gold = [c.options.index(c.record.answer) for c in choices]
    hits = [_beats_the_others(w, g) for w, g in zip(weights, gold, strict=True)]
    gold_weight = [w[g] for w, g in zip(weights, gold, strict=True)]
    after = Score(sum(hits) / len(hits), sum(gold_weight) / len(gold_weight), len(choices))
    return Measurement(asker.score(plain([c.record for c in choices])), after)


def _multiple_choice_letter(asker: Asker, choices: Sequence[Choice]) -> Measurement:
    questions = [Question(c.prompt, c.gold_letter) for c in choices]
    answers = asker.answers(questions)
    hits = [letter_correct(c, a) for c, a in zip(choices, answers, strict=True)]
    after = Score(sum(hits) / len(hits), asker.score(questions).prob, len(choices))
    return Measurement(asker.score(plain([c.record for c in choices])), after)


def _true_false(
    asker: Asker, pairs: Sequence[tuple[Record, tuple[Question, Question]]]
) -> Measurement:
    statements = [q for _, pair in pairs for q in pair]
    verdicts = [verdict(a) for a in asker.answers(statements)]
    hits = [t is True and f is False for t, f in zip(verdicts[::2], verdicts[1::2], strict=True)]
    after = Score(sum(hits) / len(hits), asker.score(statements).prob, len(pairs))
    return Measurement(asker.score(plain([r for r, _ in pairs])), after)


@register_attack(
    "format",
    "multiple choice (by likelihood and by letter), fill in the blank, true or false",
    lambda ctx: {"variants": list(VARIANTS)},
)
def formats(ctx: AuditContext, loaded: LoadedModel, asker: Asker, role: str) -> AttackOutput:
    choices = [c for c in (choice_for(r, ctx.seed) for r in ctx.forget) if c is not None]
    blanks = [(r, q) for r in ctx.forget if (q := blanked(r)) is not None]
    pairs = [(r, p) for r in ctx.forget if (p := true_false_pair(r)) is not None]
    if not (choices or blanks or pairs):
        raise NotApplicable("the forget records have neither wrong answers nor sentences")
    if calibrating(ctx, role):
        chosen = [c.record for c in choices]
        return calibration(
            asker,
            {
                "multiple_choice_likelihood": chosen,
                "multiple_choice_letter": chosen,
                "fill_in_blank": [r for r, _ in blanks],
                "true_false": [r for r, _ in pairs],
            },
        )
    asker.answers(  # one batched pass over every generation of the attack
        plain(ctx.forget)
        + [Question(c.prompt, c.gold_letter) for c in choices]
        + [q for _, q in blanks]
        + [q for _, pair in pairs for q in pair]
    )
    out: AttackOutput = {}
    if choices:
        out["multiple_choice_likelihood"] = VariantResult(
            _multiple_choice_likelihood(asker, choices)
        )
        out["multiple_choice_letter"] = VariantResult(_multiple_choice_letter(asker, choices))
    if blanks:
        out["fill_in_blank"] = VariantResult(
            Measurement(
                asker.score(plain([r for r, _ in blanks])), asker.score([q for _, q in blanks])
            )
        )
    if pairs:
        out["true_false"] = VariantResult(_true_false(asker, pairs))
    return out
