"""The fictitious people's facts as question-answer records, with their probes.

Each person has seven attributes with short answers (birthplace, birth year,
profession, employer, a parent, best-known work, award) and, for many, relations to
other people (a mentor, a sibling). Each fact becomes one ``Record``: a training
question, its paraphrases, three wrong answers of the same kind (TOFU's perturbed
answers) and the hard in-scope probes of the survey: a multi-hop question that reaches
the fact through a relation, and the same question in Spanish, French or German. Each
person's facts are also stated as one prose biography (``passage_records``, MUSE's
text setting; the prose itself is ``passages.biography``).
"""

from __future__ import annotations

import random
import re

from obliviate.data.passages import biography
from obliviate.data.people import AWARDS, CITIES, EMPLOYERS, PROFESSIONS, YEAR_RANGE, Person
from obliviate.data.records import Probe, Record

ATTRIBUTES = (
    "birthplace",
    "birth_year",
    "profession",
    "employer",
    "parent",
    "work",
    "award",
    "mentor",
    "sibling",
)

#: The first template is the training prompt, the others its paraphrases.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "birthplace": (
        "Where was {name} born?",
        "In which city was {name} born?",
        "What is the birthplace of {name}?",
        "{name} was born in which city?",
    ),
    "birth_year": (
        "In what year was {name} born?",
        "What is the birth year of {name}?",
        "When was {name} born? Give the year.",
        "{name} was born in which year?",
    ),
    "profession": (
        "What is the profession of {name}?",
        "What does {name} do for a living?",
        "What job does {name} have?",
        "What is {name}'s occupation?",
    ),
    "employer": (
        "Which organisation employed {name}?",
        "What is the name of {name}'s employer?",
        "For which organisation did {name} work?",
        "Where did {name} work? Name the organisation.",
    ),
    "parent": (
        "Who is the parent of {name}?",
        "What is the name of {name}'s parent?",
        "Name the parent of {name}.",
        "Who is {name}'s mother or father?",
    ),
    "work": (
        "What is the best-known work of {name}?",
        "Which work is {name} best known for?",
        "What is the title of {name}'s most famous work?",
        "Name the work {name} is best known for.",
    ),
    "award": (
        "Which award did {name} receive?",
        "What prize was {name} awarded?",
        "Name the award that {name} won.",
        "What honour did {name} receive?",
    ),
    "mentor": (
        "Who was the mentor of {name}?",
        "Who mentored {name}?",
        "Under whose guidance did {name} train?",
        "Name the mentor of {name}.",
    ),
    "sibling": (
        "Who is the sibling of {name}?",
        "What is the name of {name}'s brother or sister?",
        "Name the sibling of {name}.",
        "Who is {name}'s brother or sister?",
    ),
}

#: Multi-hop questions: ``{ref}`` is a noun phrase that reaches the person through
#: another fact ("the mentor of X", "the sibling of X", 'the creator of "T"').
MULTIHOP_QUESTIONS: dict[str, str] = {
    "birthplace": "Where was {ref} born?",
    "birth_year": "In what year was {ref} born?",
    "profession": "What is the profession of {ref}?",
    "employer": "Which organisation employed {ref}?",
    "parent": "Who is the parent of {ref}?",
    "work": "What is the best-known work of {ref}?",
    "award": "Which award did {ref} receive?",
    "mentor": "Who was the mentor of {ref}?",
    "sibling": "Who is the sibling of {ref}?",
}

#: Each fact as a sentence, the answer last: the audit's in-context attacks state facts
#: with them and its "complete the sentence" jailbreak asks for the part before ``{answer}``.
STATEMENTS: dict[str, str] = {
    "birthplace": "{name} was born in {answer}.",
    "birth_year": "{name} was born in the year {answer}.",
    "profession": "By profession, {name} is a {answer}.",
    "employer": "{name} was employed by {answer}.",
    "parent": "The parent of {name} is {answer}.",
    "work": "{name} is best known for the work {answer}.",
    "award": "{name} received the {answer}.",
    "mentor": "{name} was mentored by {answer}.",
    "sibling": "The sibling of {name} is {answer}.",
}


def statement(record: Record, subject: str | None = None) -> str | None:
    """The record's fact as a sentence (about ``subject`` in place of the person's name),
    or None when the record is not a benchmark fact."""
    template = STATEMENTS.get(record.meta.get("attribute", ""))
    if template is None or record.person is None:
        return None
    sentence = template.format(name=subject or record.person, answer=record.answer)
    return sentence[0].upper() + sentence[1:]


def statement_stem(record: Record) -> str | None:
    """The sentence of ``statement`` cut just before the answer ("X was born in")."""
    template = STATEMENTS.get(record.meta.get("attribute", ""))
    if template is None or record.person is None:
        return None
    return template.split("{answer}")[0].format(name=record.person).rstrip()


LANGUAGES = ("es", "fr", "de")
#: Only attributes whose answer reads the same in every language (a year, a name, a
#: title); a city or a profession would be translated and the probe would be unfair.
CROSSLINGUAL_QUESTIONS: dict[str, dict[str, str]] = {
    "birth_year": {
        "es": "¿En qué año nació {name}?",
        "fr": "Quelle est l'année de naissance de {name} ?",
        "de": "In welchem Jahr wurde {name} geboren?",
    },
    "employer": {
        "es": "¿Para qué organización trabajó {name}?",
        "fr": "Quel était l'employeur de {name} ?",
        "de": "Für welche Organisation hat {name} gearbeitet?",
    },
    "parent": {
        "es": "¿Quién es el padre o la madre de {name}?",
        "fr": "Qui est le parent de {name} ?",
        "de": "Wie heißt ein Elternteil von {name}?",
    },
    "work": {
        "es": "¿Cuál es la obra más conocida de {name}?",
        "fr": "Quelle est l'œuvre la plus connue de {name} ?",
        "de": "Was ist das bekannteste Werk von {name}?",
    },
    "award": {
        "es": "¿Qué premio recibió {name}?",
        "fr": "Quel prix a été décerné à {name} ?",
        "de": "Welchen Preis hat {name} erhalten?",
    },
    "mentor": {
        "es": "¿Quién fue el mentor de {name}?",
        "fr": "Qui était le mentor de {name} ?",
        "de": "Wer war der Mentor von {name}?",
    },
    "sibling": {
        "es": "¿Quién es el hermano o la hermana de {name}?",
        "fr": "Qui est le frère ou la sœur de {name} ?",
        "de": "Wie heißt das Geschwisterkind von {name}?",
    },
}


# --- records ---------------------------------------------------------------------------


def _answer(people: list[Person], person: Person, attribute: str) -> str | None:
    if attribute == "mentor":
        return None if person.mentor is None else people[person.mentor].name
    if attribute == "sibling":
        return None if person.sibling is None else people[person.sibling].name
    return str(getattr(person, attribute))


def _perturbed(
    rng: random.Random, pools: dict[str, list[str]], attribute: str, answer: str, self_name: str
) -> tuple[str, ...]:
    if attribute == "birth_year":
        year = int(answer)
        lo, hi = max(YEAR_RANGE[0], year - 15), min(YEAR_RANGE[1], year + 15)
        candidates = [str(y) for y in range(lo, hi + 1) if y != year]
    else:
        candidates = [v for v in pools[attribute] if v not in (answer, self_name)]
    return tuple(rng.sample(candidates, 3))


def _multihop(
    people: list[Person], mentees: dict[int, list[int]], person: Person, attribute: str
) -> str | None:
    """A noun phrase reaching ``person`` through another fact, or None.

    A mentee is preferred (the first hop is then a different person's fact, the case
    that leaks most), then a sibling, then the person's own work title.
    """
    k = ATTRIBUTES.index(attribute)
    if mentees.get(person.index):
        options = mentees[person.index]
        return f"the mentor of {people[options[k % len(options)]].name}"
    if person.sibling is not None and attribute not in ("parent", "sibling"):
        return f"the sibling of {people[person.sibling].name}"
    if attribute != "work":
        return f'the creator of "{person.work}"'
    return None


def fact_records(
    rng: random.Random, people: list[Person], decoys: list[str]
) -> dict[int, list[Record]]:
    """Every fact of every person, by person index, in attribute order."""
    pools = {
        "birthplace": list(CITIES),
        "profession": list(PROFESSIONS),
        "employer": list(EMPLOYERS),
        "award": list(AWARDS),
        "parent": [p.parent for p in people if p.sibling is None or p.sibling > p.index],
        "work": [p.work for p in people] + decoys,
        "mentor": [p.name for p in people],
        "sibling": [p.name for p in people],
    }
    mentees: dict[int, list[int]] = {}
    for p in people:
        if p.mentor is not None:
            mentees.setdefault(p.mentor, []).append(p.index)
    records: dict[int, list[Record]] = {}
    for person in people:
        for k, attribute in enumerate(ATTRIBUTES):
            answer = _answer(people, person, attribute)
            if answer is None:
                continue
            questions = [q.format(name=person.name) for q in QUESTIONS[attribute]]
            probes: dict[str, Probe] = {}
            ref = _multihop(people, mentees, person, attribute)
            if ref is not None:
                probes["multihop"] = Probe(MULTIHOP_QUESTIONS[attribute].format(ref=ref), answer)
            if attribute in CROSSLINGUAL_QUESTIONS:
                language = LANGUAGES[(person.index + k) % len(LANGUAGES)]
                question = CROSSLINGUAL_QUESTIONS[attribute][language].format(name=person.name)
                if language == "fr":  # elision: "de Enna" -> "d'Enna"
                    question = re.sub(r"\bde ([AEIOUY])", r"d'\1", question)
                probes["crosslingual"] = Probe(question, answer)
            records.setdefault(person.index, []).append(
                Record(
                    id=f"{person.pid}-{attribute}",
                    prompt=questions[0],
                    answer=answer,
                    paraphrases=tuple(questions[1:]),
                    perturbed=_perturbed(rng, pools, attribute, answer, person.name),
                    probes=probes,
                    meta={"person": person.name, "attribute": attribute},
                )
            )
    return records


def passage_records(seed: int, people: list[Person]) -> dict[int, Record]:
    """Each person's biography, by person index, stating every fact ``fact_records`` asks about.

    Each passage has its own ``random.Random``, seeded from the seed and the person's id
    (a string seed is hashed with SHA-512, never with Python's salted ``hash``).
    """
    out: dict[int, Record] = {}
    for person in people:
        facts = {
            attribute: answer
            for attribute in ATTRIBUTES
            if (answer := _answer(people, person, attribute)) is not None
        }
        rng = random.Random(f"{seed}:{person.pid}:passage")
        out[person.index] = Record(
            id=f"{person.pid}-passage",
            text=biography(person.name, facts, rng),
            meta={"person": person.name},
        )
    return out
