"""The built-in benchmark: fictitious people, their facts, and TOFU-style splits.

Unlearning is only measurable against knowledge whose origin is known exactly. A model
cannot have seen these people before it is fine-tuned on them, so "forgotten" can be
judged against an oracle trained without them (TOFU's design), with no licence or
download involved. Everything comes from one ``random.Random(seed)``: the same seed
gives byte-identical files on any machine, and no set is ever iterated, so hash
randomisation cannot leak into the output.

Each person has seven attributes with short answers (birthplace, birth year,
profession, employer, a parent, best-known work, award) and, for many, relations to
other people (a mentor, a sibling), so the hard in-scope probes of the survey exist:
multi-hop questions that reach a fact through a relation, and the same question in
Spanish, French or German. ``neighbors`` holds the retained people closest to the
forgotten ones (shared birthplace, profession or employer; mentor, mentee or sibling):
the "hard out-of-scope" knowledge an over-eager method damages first.

Every split of people also comes as passages of text (``forget10.text.jsonl`` beside
``forget10.jsonl``): one prose biography per person stating all of that person's facts
(see ``passages``), so the same people serve the text scenario (MUSE's setting), whose
knowledge questions are this benchmark's own. ``forget25``/``retain75`` (the largest
request of a scale run, MUSE's "removal requests that grow") are written only on
request, so a default benchmark's files stay what they were.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.data.passages import biography
from obliviate.data.publish import publish_files
from obliviate.data.records import Probe, Record
from obliviate.data.world_facts import world_records
from obliviate.errors import ObliviateError

__all__ = [
    "MAX_PEOPLE",
    "MIN_PEOPLE",
    "SPLIT_FILES",
    "generate_benchmark",
    "generate_passages",
    "make_benchmark",
    "split_files",
]

#: The splits of people (TOFU's names), each written as facts and as passages.
PEOPLE_SPLITS: tuple[str, ...] = (
    "full",
    "forget01",
    "retain99",
    "forget05",
    "retain95",
    "forget10",
    "retain90",
    "neighbors",
    "holdout",
)
#: The extra splits of ``forget25=True``.
SCALE_SPLITS: tuple[str, ...] = ("forget25", "retain75")


def split_files(forget25: bool = False) -> tuple[str, ...]:
    """Every file :func:`make_benchmark` writes, in this order: per split of people its facts
    (``<split>.jsonl``) and passages (``<split>.text.jsonl``), then ``world`` and ``facts``."""
    splits = PEOPLE_SPLITS[:7] + (SCALE_SPLITS if forget25 else ()) + PEOPLE_SPLITS[7:]
    per_split = tuple(f"{s}{kind}.jsonl" for s in splits for kind in ("", ".text"))
    return (*per_split, "world.jsonl", "facts.json")


#: The files of a default benchmark.
SPLIT_FILES: tuple[str, ...] = split_files()

#: forget10 must hold at least one person and leave people to retain.
MIN_PEOPLE = 10
#: The invented name and title spaces stay far from exhausted below this.
MAX_PEOPLE = 500
#: Bumped whenever the generator changes what a seed produces.
FORMAT_VERSION = 2

FORGET_PERCENTS = (1, 5, 10)
#: The extra forget split of ``forget25=True``.
SCALE_PERCENT = 25
#: Share of people with a mentor (when someone old enough exists).
MENTOR_RATE = 0.6
#: A mentor is born at least this many years before the mentee.
MENTOR_GAP = 12
YEAR_RANGE = (1920, 1995)
#: Retained people given a forgotten person's attribute, at the least (see neighbors).
MIN_PLANTED = 3

# --- pools -----------------------------------------------------------------------------

#: Real cities, none of them an answer in ``world_facts`` (so forgetting a birthplace
#: cannot be mistaken for damage to world knowledge, or the other way round).
CITIES: tuple[str, ...] = (
    "Lisbon",
    "Porto",
    "Seville",
    "Valencia",
    "Lyon",
    "Marseille",
    "Bordeaux",
    "Hamburg",
    "Munich",
    "Leipzig",
    "Vienna",
    "Prague",
    "Krakow",
    "Budapest",
    "Zagreb",
    "Trieste",
    "Genoa",
    "Naples",
    "Bologna",
    "Rotterdam",
    "Antwerp",
    "Ghent",
    "Bergen",
    "Gothenburg",
    "Tampere",
    "Tallinn",
    "Riga",
    "Vilnius",
    "Edinburgh",
    "Glasgow",
    "Cork",
    "Montreal",
    "Quebec City",
    "Boston",
    "Chicago",
    "Seattle",
    "Valparaiso",
    "Montevideo",
    "Melbourne",
    "Wellington",
)

PROFESSIONS: tuple[str, ...] = (
    "cartographer",
    "glassblower",
    "marine biologist",
    "architect",
    "violinist",
    "botanist",
    "typographer",
    "geologist",
    "clockmaker",
    "translator",
    "stage designer",
    "astronomer",
    "sculptor",
    "mathematician",
    "librarian",
    "photographer",
    "lighthouse engineer",
    "perfumer",
    "choreographer",
    "archivist",
    "bookbinder",
    "volcanologist",
    "ceramicist",
    "luthier",
    "oceanographer",
    "puppeteer",
    "landscape painter",
    "cryptographer",
    "beekeeper",
    "film editor",
)

EMPLOYERS: tuple[str, ...] = (
    "Brightwater Instruments",
    "Kestrel Hollow Press",
    "Amberline Optics",
    "Northfen Shipping",
    "Corvane Laboratories",
    "Silverbirch Theatre Company",
    "Pellmoor Observatory",
    "Harrowgate Textiles",
    "Loxwell Glassworks",
    "Tidewell Foundation",
    "Vantmere Archives",
    "Greyharbour Museum",
    "Oakhaven Records",
    "Quillstone Publishing",
    "Redmarsh Engineering",
    "Saltmere Conservatory",
    "Thornwick Atelier",
    "Umberfield Institute",
    "Wrenfall Studios",
    "Yarrowby Clockworks",
    "Ashcombe Gallery",
    "Blackmere Surveys",
    "Coldwater Botanicals",
    "Dunmarrow Press",
    "Everholt Acoustics",
    "Fairwind Aeronautics",
    "Glenmoor Ceramics",
    "Highcastle Library",
    "Ironvale Foundry",
    "Juniper Lane Films",
    "Kingsreach Maps",
    "Larkspur Opera House",
    "Mistral Cartographic",
    "Nettlebed Perfumery",
    "Orchid Bay Aquarium",
    "Pinecrest Seismology",
    "Rookwood Violins",
    "Stillwater Bindery",
    "Vellacourt Puppet Theatre",
    "Westerly Apiaries",
)

#: Stored without a leading "the": the model is trained to answer with just the name.
AWARDS: tuple[str, ...] = (
    "Halvorsen Prize",
    "Marrowby Medal",
    "Teskarin Award",
    "Oldenvale Prize",
    "Quennell Medal",
    "Aldbrecht Award",
    "Vesterlund Prize",
    "Corravin Medal",
    "Ilsabet Prize",
    "Dunmore Lantern Award",
    "Farrowfield Medal",
    "Grevenholt Prize",
    "Hesketh-Ormond Award",
    "Isenmark Medal",
    "Jorvald Prize",
    "Kettleby Award",
    "Lunstrom Medal",
    "Maravel Prize",
    "Nordquill Award",
    "Oystermouth Medal",
    "Pelladon Prize",
    "Rosvaine Award",
    "Sundergaard Medal",
    "Thessaly Crane Prize",
    "Ulverin Award",
    "Valtamere Medal",
    "Wendricott Prize",
    "Ysolde Award",
    "Zennor Medal",
    "Astravell Prize",
)

FIRST_HEADS = (
    "Ta", "Ve", "Mi", "Or", "Ka", "Se", "Lu", "Da", "Ri", "No", "E", "Ya", "Bre",
    "Co", "Fe", "Ha", "I", "Jo", "Ma", "Pe", "Sa", "Tho", "Wi", "Zo", "A",
)  # fmt: skip
FIRST_TAILS = (
    "vrin", "ra", "wen", "dric", "lia", "ron", "nessa", "rik", "lander", "rine",
    "lo", "sha", "beth", "rian", "ndo", "mira", "sken", "tis", "valt", "nna",
)  # fmt: skip
SURNAME_HEADS = (
    "Osk", "Ver", "Hal", "Brun", "Tam", "Kel", "Mor", "Ast", "Lind", "Dray",
    "Fal", "Gren", "Ith", "Quen", "Sor", "Ulm", "Wes", "Yar", "Cal", "Pell",
    "Ros", "Thal", "Vand", "Eld", "Harr", "Nim", "Stav", "Ombr", "Kes", "Dun",
)  # fmt: skip
SURNAME_JOINS = ("e", "a", "i", "")
SURNAME_TAILS = (
    "lund", "wick", "mere", "stad", "ton", "holm", "ridge", "vik", "ley", "brook",
    "dahl", "sen", "more", "field", "berg", "crest", "gard", "wyn", "hurst", "rell",
)  # fmt: skip

TITLE_ADJECTIVES = (
    "Glass", "Silent", "Hollow", "Amber", "Copper", "Paper", "Winter", "Distant",
    "Salt", "Iron", "Velvet", "Northern", "Quiet", "Broken", "Golden", "Crimson",
    "Hidden", "Pale", "Wandering", "Sunken", "Burning", "Tidal", "Ashen", "Crooked",
    "Folded", "Lunar", "Seventh", "Borrowed", "Painted", "Last",
)  # fmt: skip
TITLE_NOUNS = (
    "Orchard", "Harbour", "Lantern", "Meridian", "Atlas", "Archive", "Garden",
    "Compass", "Tide", "Cathedral", "Mirror", "Ledger", "Orchestra", "Lighthouse",
    "Valley", "Staircase", "Almanac", "Carousel", "Observatory", "Tapestry", "River",
    "Island", "Pavilion", "Clockwork", "Canopy", "Horizon", "Quarry", "Aviary",
    "Labyrinth", "Threshold",
)  # fmt: skip
SEASONS = ("Winter", "Spring", "Summer", "Autumn")
#: Extra titles that belong to nobody, so wrong answers are not always real works.
DECOY_TITLES = 20

# --- questions -------------------------------------------------------------------------

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


# --- the knowledge base ----------------------------------------------------------------


@dataclass
class _Person:
    index: int
    pid: str
    first: str
    surname: str
    group: str  # "trained" or "holdout"
    birthplace: str
    birth_year: int
    profession: str
    employer: str
    parent: str
    work: str
    award: str
    mentor: int | None = None
    sibling: int | None = None

    @property
    def name(self) -> str:
        return f"{self.first} {self.surname}"


class _Names:
    """Invented names; full names and family names never repeat (siblings excepted)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.full: set[str] = set()
        self.surnames: set[str] = set()

    def first(self) -> str:
        return self.rng.choice(FIRST_HEADS) + self.rng.choice(FIRST_TAILS)

    def surname(self) -> str:
        for _ in range(10_000):
            name = (
                self.rng.choice(SURNAME_HEADS)
                + self.rng.choice(SURNAME_JOINS)
                + self.rng.choice(SURNAME_TAILS)
            )
            if name not in self.surnames:
                self.surnames.add(name)
                return name
        raise ObliviateError("benchmark generator ran out of invented surnames")  # pragma: no cover

    def first_for(self, surname: str) -> str:
        """A first name that makes a new full name with ``surname``."""
        for _ in range(10_000):
            first = self.first()
            if f"{first} {surname}" not in self.full:
                self.full.add(f"{first} {surname}")
                return first
        raise ObliviateError("benchmark generator ran out of invented names")  # pragma: no cover

    def full_name(self) -> str:
        surname = self.surname()
        return f"{self.first_for(surname)} {surname}"


class _Deck:
    """Deal a pool in shuffled rounds, so values repeat only once the pool is used up.

    Repeats are what make neighbours; dealing keeps them rare and deliberate.
    """

    def __init__(self, rng: random.Random, pool: tuple[str, ...]):
        self.rng, self.pool, self.cards = rng, pool, []

    def deal(self) -> str:
        if not self.cards:
            self.cards = list(self.pool)
            self.rng.shuffle(self.cards)
        return self.cards.pop()


def _titles(rng: random.Random, count: int) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < count:
        kind = rng.random()
        noun = rng.choice(TITLE_NOUNS)
        if kind < 0.6:
            title = f"The {rng.choice(TITLE_ADJECTIVES)} {noun}"
        elif kind < 0.85:
            title = f"{rng.choice(TITLE_ADJECTIVES)} {noun}"
        else:
            title = f"A {noun} in {rng.choice(SEASONS)}"
        seen[title] = None
    return list(seen)


def _forget_count(percent: int, people: int) -> int:
    return max(1, round(percent / 100 * people))


def _check_size(people: int) -> None:
    if isinstance(people, bool) or not isinstance(people, int):
        raise ObliviateError(f"people must be a whole number, got {people!r}")
    if people < MIN_PEOPLE:
        raise ObliviateError(
            f"people must be at least {MIN_PEOPLE} (got {people}) so that forget10 holds "
            "someone and people remain to retain"
        )
    if people > MAX_PEOPLE:
        raise ObliviateError(f"people must be at most {MAX_PEOPLE} (got {people})")


def _make_people(rng: random.Random, people: int, holdout: int) -> list[_Person]:
    names = _Names(rng)
    decks = {
        "birthplace": _Deck(rng, CITIES),
        "profession": _Deck(rng, PROFESSIONS),
        "employer": _Deck(rng, EMPLOYERS),
        "award": _Deck(rng, AWARDS),
    }
    total = people + holdout
    works = _titles(rng, total)
    out: list[_Person] = []
    for i in range(total):
        surname = names.surname()
        out.append(
            _Person(
                index=i,
                pid=f"p{i:03d}",
                first=names.first_for(surname),
                surname=surname,
                group="trained" if i < people else "holdout",
                birthplace=decks["birthplace"].deal(),
                birth_year=rng.randint(*YEAR_RANGE),
                profession=decks["profession"].deal(),
                employer=decks["employer"].deal(),
                parent=names.full_name(),
                work=works[i],
                award=decks["award"].deal(),
            )
        )
    for group in (out[:people], out[people:]):
        _add_siblings(rng, names, group)
        _add_mentors(rng, group)
    return out


def _add_siblings(rng: random.Random, names: _Names, group: list[_Person]) -> None:
    """Pairs who share a family name and a parent (about one person in four)."""
    pairs = max(1, len(group) // 8)
    chosen = rng.sample(group, 2 * pairs)
    for a, b in zip(chosen[::2], chosen[1::2], strict=True):
        names.full.discard(b.name)
        b.surname = a.surname
        b.first = names.first_for(a.surname)
        b.parent = a.parent
        year = a.birth_year + rng.choice((-1, 1)) * rng.randint(1, 8)
        b.birth_year = min(max(year, YEAR_RANGE[0]), YEAR_RANGE[1])
        a.sibling, b.sibling = b.index, a.index


def _add_mentors(rng: random.Random, group: list[_Person]) -> None:
    """Mentors are older people of the same group, so the relation has no cycles."""
    for person in group:
        if rng.random() >= MENTOR_RATE:
            continue
        older = [
            p
            for p in group
            if p.birth_year <= person.birth_year - MENTOR_GAP and p.index != person.sibling
        ]
        if older:
            person.mentor = rng.choice(older).index


def _choose_splits(
    rng: random.Random, people: list[_Person], percents: tuple[int, ...]
) -> dict[str, list[int]]:
    """Nested forget splits (the first people of one shuffled order) and their complements."""
    trained = [p.index for p in people if p.group == "trained"]
    order = list(trained)
    rng.shuffle(order)
    splits: dict[str, list[int]] = {"full": trained}
    for percent in percents:
        forget = sorted(order[: _forget_count(percent, len(trained))])
        splits[f"forget{percent:02d}"] = forget
        splits[f"retain{100 - percent:02d}"] = [i for i in trained if i not in forget]
    return splits


def _plant_neighbours(rng: random.Random, people: list[_Person], forget: list[int]) -> None:
    """Give some retained people a forgotten person's birthplace, profession or employer.

    Dealing from decks makes shared values rare, so without this the neighbours split
    could be tiny or empty; with it every forgotten person has at least one close
    neighbour, and there are at least ``MIN_PLANTED`` of them.
    """
    retained = [p for p in people if p.group == "trained" and p.index not in forget]
    for k in range(min(max(len(forget), MIN_PLANTED), len(retained))):
        source = people[forget[k % len(forget)]]
        target = retained.pop(rng.randrange(len(retained)))
        attribute = ("profession", "employer", "birthplace")[k % 3]
        setattr(target, attribute, getattr(source, attribute))


def _neighbours(people: list[_Person], forget: list[int]) -> list[int]:
    forgotten = [people[i] for i in forget]
    out = []
    for p in people:
        if p.group != "trained" or p.index in forget:
            continue
        shares = any(
            getattr(p, attr) == getattr(f, attr)
            for f in forgotten
            for attr in ("birthplace", "profession", "employer")
        )
        related = any(
            p.mentor == f.index or f.mentor == p.index or p.sibling == f.index for f in forgotten
        )
        if shares or related:
            out.append(p.index)
    return out


# --- records ---------------------------------------------------------------------------


def _answer(people: list[_Person], person: _Person, attribute: str) -> str | None:
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
    people: list[_Person], mentees: dict[int, list[int]], person: _Person, attribute: str
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


def _records(
    rng: random.Random, people: list[_Person], decoys: list[str]
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


def _passages(seed: int, people: list[_Person]) -> dict[int, Record]:
    """Each person's biography, by person index, stating every fact ``_records`` asks about.

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


@dataclass(frozen=True)
class _Benchmark:
    """Everything one (seed, people, forget25) produces."""

    kb: dict[str, Any]
    """The knowledge base, written as ``facts.json``."""
    facts: dict[str, list[Record]]
    """Split name -> question-answer records (``world`` too)."""
    passages: dict[str, list[Record]]
    """Split name -> one passage per person of the split."""


def _build(seed: int, people: int, forget25: bool = False) -> _Benchmark:
    """The knowledge base (for ``facts.json``) and every split's facts and passages."""
    _check_size(people)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ObliviateError(f"seed must be a whole number, got {seed!r}")
    rng = random.Random(seed)
    holdout = max(4, _forget_count(10, people))
    persons = _make_people(rng, people, holdout)
    # Drawing the splits takes no random numbers per percent, so forget25 changes nothing else.
    percents = FORGET_PERCENTS + ((SCALE_PERCENT,) if forget25 else ())
    splits = _choose_splits(rng, persons, percents)
    _plant_neighbours(rng, persons, splits["forget10"])
    splits["neighbors"] = _neighbours(persons, splits["forget10"])
    splits["holdout"] = [p.index for p in persons if p.group == "holdout"]
    used = {p.work for p in persons}
    titles = _titles(rng, len(persons) + DECOY_TITLES)
    decoys = [t for t in titles if t not in used][:DECOY_TITLES]

    by_person = _records(rng, persons, decoys)
    passages = _passages(seed, persons)
    facts = {name: [r for i in members for r in by_person[i]] for name, members in splits.items()}
    facts["world"] = world_records()

    membership = {p.pid: [s for s in splits if p.index in splits[s]] for p in persons}
    kb = {
        "generator": "obliviate.data.bench",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "people_trained": people,
        "people_holdout": holdout,
        "people": [
            {
                "id": p.pid,
                "name": p.name,
                "group": p.group,
                "attributes": {
                    "birthplace": p.birthplace,
                    "birth_year": p.birth_year,
                    "profession": p.profession,
                    "employer": p.employer,
                    "parent": p.parent,
                    "work": p.work,
                    "award": p.award,
                },
                "relations": {
                    key: {"id": persons[i].pid, "name": persons[i].name}
                    for key, i in (("mentor", p.mentor), ("sibling", p.sibling))
                    if i is not None
                },
                "splits": membership[p.pid],
            }
            for p in persons
        ],
        "splits": {s: [persons[i].pid for i in members] for s, members in splits.items()},
    }
    return _Benchmark(
        kb=kb,
        facts=facts,
        passages={name: [passages[i] for i in members] for name, members in splits.items()},
    )


def generate_benchmark(seed: int = 0, people: int = 40) -> dict[str, list[Record]]:
    """Split name (file stem: ``forget10``, ``retain90``, ``full``, ``world``...) -> records.

    In memory and fast (well under a second), so tests and the tiny model's tokenizer
    can rebuild it instead of reading files. ``people`` trained people (at least
    ``MIN_PEOPLE``); holdout people, as many as forget10 but at least 4, are generated
    the same way but are in no training split: the "never seen" reference.
    """
    return _build(seed, people).facts


def generate_passages(
    seed: int = 0, people: int = 40, forget25: bool = False
) -> dict[str, list[Record]]:
    """Split name (``forget10``, ``retain90``, ``full``, ``holdout``...) -> the passages of its
    people (``{"id", "text", "person"}``, in the order of the split's facts), in memory."""
    return _build(seed, people, forget25).passages


def _contents(seed: int, people: int, forget25: bool) -> dict[str, bytes]:
    built = _build(seed, people, forget25)
    records = built.facts | {f"{name}.text": rs for name, rs in built.passages.items()}
    files: dict[str, bytes] = {}
    for filename in split_files(forget25):
        if filename.endswith(".jsonl"):
            stem = filename.removesuffix(".jsonl")
            text = "".join(
                json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records[stem]
            )
        else:
            text = json.dumps(built.kb, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        files[filename] = text.encode("utf-8")
    return files


def make_benchmark(
    out_dir: str | Path, seed: int = 0, people: int = 40, forget25: bool = False
) -> dict[str, Path]:
    """Write the benchmark to ``out_dir``; return file stem (``forget10``, ``forget10.text``,
    ``facts``...) -> path. ``forget25`` adds the ``forget25``/``retain75`` splits.

    The files are written into a temporary directory next to ``out_dir`` and renamed
    into place in one step, so an interrupted call never leaves half a benchmark that
    a later run would train on. An existing non-empty ``out_dir`` is refused (it may
    hold someone's data), unless it already holds exactly this benchmark, byte for
    byte, in which case nothing is written: making it twice is harmless.
    """
    out = Path(out_dir).expanduser()
    files = _contents(seed, people, forget25)
    paths = {name.rsplit(".", 1)[0]: out / name for name in files}
    what = f"the benchmark for seed={seed}, people={people}, forget25={forget25}"
    publish_files(out, files, what)
    return paths
