"""General questions that overlap the forget set, found and dropped.

General knowledge (the world split, tamper's general data) is what unlearning must leave
alone; a general question about the forgotten topic is not. "What is the capital of
France?" among the world questions while France is forgotten counts a success as
collateral damage, and a tamper attack that fine-tunes on it teaches the forgotten fact
back. So a general question is dropped when it overlaps the forget set:

- **similar**: the cosine similarity of its ``question answer`` text to a forget fact's
  (its question or any paraphrase, with its answer), by the packaged sentence embeddings
  (``models/embeddings.py``), is at least ``OVERLAP_THRESHOLD`` (0.75). Measured on real
  pairs: the same fact asked another way scores 0.82–0.98 ("What is the capital of
  France? Paris" and "Which city is the seat of the French government? Paris" 0.825; "In
  which city is the Eiffel Tower? Paris" and "What famous tower stands in Paris? Eiffel
  Tower" 0.916; "Who developed the theory of relativity? Albert Einstein" and "Which
  theory is Albert Einstein famous for? relativity" 0.864), while distinct facts of one
  template stay below 0.73 (the chemical symbols of gold and silver 0.725, the capitals of
  China and Japan 0.587, the 60 built-in world questions among themselves at most 0.725)
  and other facts of the same topic below 0.70 (France's capital and its currency 0.620);
- **named**: a name of the forget set appears, as whole words, in it — a forget answer
  or a forget record's group (its topic or person) in its question or answer, or its own
  answer in a forget question ("Which planet is known as the Red Planet? Mars" when the
  forget questions ask about Mars). Only unambiguous names count: at least four characters
  once normalised, not a number, and (for answers) capitalised as a name is, so "1879",
  "Au" or "water" never match by chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from obliviate.data.answers import answer_matches, normalize_answer
from obliviate.data.records import Record

#: The cosine similarity at or above which a general question is the same fact as a forget
#: one (the measurements behind it are in the module docstring).
OVERLAP_THRESHOLD = 0.75

#: The roles of the evaluation splits that hold general questions.
GENERAL_ROLES: tuple[str, ...] = ("world",)


def _unambiguous(name: str, capitalised: bool) -> bool:
    """A name that cannot match a general question by chance (see the module docstring)."""
    normal = normalize_answer(name)
    if len(normal) < 4 or normal.replace(" ", "").isdigit():
        return False
    return not capitalised or any(c.isupper() for c in name)


def overlap_texts(record: Record) -> list[str]:
    """The texts a fact is compared by: its question with its answer, then each paraphrase
    with its answer."""
    return [f"{q} {record.answer}" for q in (record.prompt, *record.paraphrases)]


def forget_names(forget: Sequence[Record]) -> list[str]:
    """The unambiguous names of the forget set: its answers and its groups (topics or
    people), each once."""
    names = [r.answer for r in forget if r.answer and _unambiguous(r.answer, True)]
    names += [r.group for r in forget if r.group and _unambiguous(r.group, False)]
    return list(dict.fromkeys(names))


def named_overlap(general: Record, forget: Sequence[Record], names: Sequence[str]) -> bool:
    """Whether one of the forget set's ``names`` appears in ``general``'s question or
    answer, or ``general``'s (unambiguous) answer in a forget question."""
    said = (general.prompt or "", general.answer or "")
    if any(answer_matches(name, text) for name in names for text in said):
        return True
    answer = general.answer or ""
    return _unambiguous(answer, True) and any(
        answer_matches(answer, r.prompt or "") for r in forget
    )


def select_overlap(
    general: Sequence[Record],
    forget: Sequence[Record],
    similarity: Sequence[float],
    threshold: float = OVERLAP_THRESHOLD,
) -> list[Record]:
    """The general records that overlap the forget set, in order: ``similarity[i]`` (the
    highest cosine of general record i's text to any forget text) at least ``threshold``,
    or a name of the forget set in it (``named_overlap``). Passages are never dropped."""
    facts = [r for r in forget if not r.is_text]
    names = forget_names(facts)
    return [
        g
        for g, sim in zip(general, similarity, strict=True)
        if not g.is_text and (sim >= threshold or named_overlap(g, facts, names))
    ]


def drop_overlap(
    general: Sequence[Record], forget: Sequence[Record], threshold: float = OVERLAP_THRESHOLD
) -> tuple[list[Record], list[Record]]:
    """(the general records kept, those dropped for overlapping the forget set), each in
    order. The embedding model is loaded only when both sides hold facts."""
    facts = [r for r in forget if not r.is_text]
    if not facts or all(g.is_text for g in general):
        return list(general), []
    from obliviate.models.embeddings import embed  # loads sentence-transformers

    forget_vectors = embed([text for r in facts for text in overlap_texts(r)])
    vectors = embed([overlap_texts(g)[0] if not g.is_text else "" for g in general])
    similarity = (vectors @ forget_vectors.T).max(axis=1).tolist()
    dropped = select_overlap(general, facts, similarity, threshold)
    gone = {r.id for r in dropped}
    return [g for g in general if g.id not in gone], dropped


def without_overlap(
    splits: dict[str, list[Record]], roles: Sequence[str] = GENERAL_ROLES
) -> tuple[dict[str, list[Record]], dict[str, dict[str, Any]]]:
    """``splits`` with the general questions of ``roles`` that overlap the forget split
    dropped (a role left with none is removed), and per role what was dropped:
    ``{"dropped": n, "ids": [...], "threshold": OVERLAP_THRESHOLD}`` (results.json's
    ``overlap``)."""
    out, report = dict(splits), {}
    for role in roles:
        if role not in out:
            continue
        kept, dropped = drop_overlap(out[role], splits.get("forget", []))
        report[role] = {
            "dropped": len(dropped),
            "ids": [r.id for r in dropped],
            "threshold": OVERLAP_THRESHOLD,
        }
        if kept:
            out[role] = kept
        else:
            del out[role]
    return out, report


def dropped_warnings(
    report: dict[str, dict[str, Any]], splits: dict[str, list[Record]]
) -> list[str]:
    """One line per role whose questions overlapped the forget set (``splits`` as
    ``without_overlap`` left them)."""
    lines = []
    for role, part in report.items():
        if part["dropped"]:
            ids = ", ".join(part["ids"][:5]) + (", ..." if part["dropped"] > 5 else "")
            total = part["dropped"] + len(splits.get(role, []))
            lines.append(
                f"{part['dropped']} of the {total} {role} questions overlap the forget set "
                f"and were dropped ({ids}): they ask about what is being forgotten"
            )
    return lines
