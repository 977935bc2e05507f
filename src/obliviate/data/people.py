"""The built-in benchmark's fictitious people: invented names, their attributes, their
relations, and which of them are forgotten, retained or neighbours.

Every value is drawn from the one ``random.Random`` that :mod:`obliviate.data.bench`
passes in, in a fixed order, so the same seed gives the same people on any machine.
Attributes are dealt from pools of real cities, professions, invented employers and
awards (``Deck``), so shared values are rare and deliberate; names and work titles are
assembled from syllables and words and never repeat (siblings share a family name).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from obliviate.errors import ObliviateError

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


# --- the people ------------------------------------------------------------------------


@dataclass
class Person:
    """One fictitious person; ``mentor`` and ``sibling`` are other people's indices."""

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


class Names:
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


class Deck:
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


def work_titles(rng: random.Random, count: int) -> list[str]:
    """``count`` different invented titles of works ("The Amber Atlas")."""
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


def forget_count(percent: int, people: int) -> int:
    """People in a forget split of ``percent`` per cent of ``people`` (at least one)."""
    return max(1, round(percent / 100 * people))


def make_people(rng: random.Random, people: int, holdout: int) -> list[Person]:
    """``people`` trained people then ``holdout`` held-out ones, with siblings and mentors
    inside each group."""
    names = Names(rng)
    decks = {
        "birthplace": Deck(rng, CITIES),
        "profession": Deck(rng, PROFESSIONS),
        "employer": Deck(rng, EMPLOYERS),
        "award": Deck(rng, AWARDS),
    }
    total = people + holdout
    works = work_titles(rng, total)
    out: list[Person] = []
    for i in range(total):
        surname = names.surname()
        out.append(
            Person(
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


def _add_siblings(rng: random.Random, names: Names, group: list[Person]) -> None:
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


def _add_mentors(rng: random.Random, group: list[Person]) -> None:
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


def choose_splits(
    rng: random.Random, people: list[Person], percents: tuple[int, ...]
) -> dict[str, list[int]]:
    """Nested forget splits (the first people of one shuffled order) and their complements."""
    trained = [p.index for p in people if p.group == "trained"]
    order = list(trained)
    rng.shuffle(order)
    splits: dict[str, list[int]] = {"full": trained}
    for percent in percents:
        forget = sorted(order[: forget_count(percent, len(trained))])
        splits[f"forget{percent:02d}"] = forget
        splits[f"retain{100 - percent:02d}"] = [i for i in trained if i not in forget]
    return splits


def plant_neighbours(rng: random.Random, people: list[Person], forget: list[int]) -> None:
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


def neighbours(people: list[Person], forget: list[int]) -> list[int]:
    """Retained people who share a birthplace, profession or employer with a forgotten one,
    or are their mentor, mentee or sibling."""
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
