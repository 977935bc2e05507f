"""Prose biographies of the benchmark's fictitious people: the text scenario's passages.

MUSE-style unlearning removes *text*, and judges it by whether the model still knows
what the text said. So each person gets one short biography (about 150-250 tokens of
SmolLM2's tokenizer) that states every one of their facts in running prose, in words
other than the benchmark's questions: the questions then measure knowledge learnt from
the passage, not recall of the question. Sentences are drawn from several templates per
fact, with fact-free connective sentences between them, by a ``random.Random`` seeded
from the benchmark seed and the person's id alone, so a passage never changes because
another person was added or a split was drawn differently.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

__all__ = ["biography"]

#: Where the person was born, when, and who raised them: the opening sentence.
BIRTH = (
    "{name} was born in {birthplace} in {birth_year}, the child of {parent}.",
    "Born in {birthplace} in {birth_year}, {name} was raised by {parent}.",
    "{name} came into the world in {birth_year} in the city of {birthplace}, where {parent} "
    "raised the family.",
    "The life of {name} began in {birthplace} in {birth_year}, in the home of {parent}.",
)
SIBLING = (
    "{short} grew up next to a sibling, {sibling}, and the two stayed close for life.",
    "A sibling, {sibling}, shared that childhood home and most of its adventures.",
    "The house was shared with {sibling}, a sibling who remained a confidant for decades.",
)
MENTOR = (
    "In early adulthood {short} found a mentor in {mentor}, whose guidance shaped the years "
    "that followed.",
    "{mentor} took the young {short} under wing and taught lessons that lasted a lifetime.",
    "Much of what {short} later knew came from {mentor}, a mentor who insisted on patience "
    "and precision.",
)
#: Profession and employer in one sentence ...
CAREER = (
    "{short} went on to become {a_profession}, and spent the central decades of a long "
    "career at {employer}.",
    "Working as {a_profession}, {short} joined the staff of {employer} and stayed there for "
    "many years.",
)
#: ... or in two.
PROFESSION = (
    "{short} chose the path of {a_profession} and never seriously considered another trade.",
    "By the age of thirty, {short} had made a name as {a_profession}.",
)
EMPLOYER = (
    "A long position at {employer} followed, with its steady routines and demanding standards.",
    "The steadiest employer in those years was {employer}, where {short} held a post for "
    "more than a decade.",
)
WORK = (
    '{short} is remembered above all for "{work}", a piece admired for its clarity and ambition.',
    'The most celebrated achievement of {short} is "{work}", which is still discussed today.',
    'Of everything {short} produced, "{work}" drew the widest attention.',
)
AWARD = (
    "In recognition of that achievement, {short} was honoured with the {award}.",
    "The {award} followed, an honour that {short} accepted with characteristic modesty.",
    "Later came the {award}, the distinction {short} valued most.",
)

#: Connective prose, stating no fact, for the childhood, career and closing parts.
CHILDHOOD = (
    "As a child, {short} filled notebooks with sketches and lists, and spent long "
    "afternoons wandering the streets near home.",
    "Teachers remembered a quiet pupil who asked unexpected questions and rarely let a "
    "subject drop before understanding it.",
    "The household was modest but full of books, and evenings were often spent reading "
    "aloud by the stove.",
    "Summers were spent outdoors, and the habit of careful observation formed then never faded.",
)
WORKING_LIFE = (
    "The work was slow and exacting, and colleagues recall long days, careful notes and a "
    "habit of checking every detail twice.",
    "Assignments took {short} across several countries, though home always meant the same "
    "small flat and the same worn desk.",
    "Younger colleagues often sought advice, and {short} gave it freely, if sometimes bluntly.",
)
CLOSING = (
    "Even in later years, {short} kept a notebook within reach and rarely turned away a "
    "curious visitor.",
    "Those who knew {short} speak of generosity, stubbornness and an unusual gift for friendship.",
    "Today the name {short} still comes up whenever people talk about craft, patience and "
    "persistence.",
)


def _with_article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def biography(name: str, facts: Mapping[str, str], rng: random.Random) -> str:
    """A biography of ``name`` stating every fact of ``facts`` verbatim.

    ``facts`` maps the benchmark's attributes to their answers; ``sibling`` and
    ``mentor`` are optional. A person without a sibling gets a second childhood sentence,
    one without a mentor a second working-life sentence, so passages stay about the same
    length.
    """
    values = dict(facts) | {
        "name": name,
        "short": name.split()[0],
        "a_profession": _with_article(facts["profession"]),
    }
    parts = [rng.choice(BIRTH)]
    if "sibling" in facts:
        parts.append(rng.choice(SIBLING))
    parts += rng.sample(CHILDHOOD, 1 if "sibling" in facts else 2)
    if "mentor" in facts:
        parts.append(rng.choice(MENTOR))
    if rng.random() < 0.5:
        parts.append(rng.choice(CAREER))
    else:
        parts += [rng.choice(PROFESSION), rng.choice(EMPLOYER)]
    parts += rng.sample(WORKING_LIFE, 1 if "mentor" in facts else 2)
    parts += [rng.choice(WORK), rng.choice(AWARD), rng.choice(CLOSING)]
    return " ".join(part.format(**values) for part in parts)
