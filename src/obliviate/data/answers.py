"""How a model's answer is compared with the gold answer: normalised text, whole words.

Evaluation's accuracy, every attack's recovery and the guard's filters judge answers the
same way, so the comparison lives below all of them.
"""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation (Rajpurkar et al., 2016, ``evaluate-v1.1.py``): lower case,
    punctuation removed (deleted, not replaced: ``1,000`` → ``1000``, ``Jean-Paul`` →
    ``jeanpaul``), then the articles a/an/the, then whitespace collapsed."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION))
    return " ".join(text.split())


#: An English possessive ending ("Shakespeare's"), which would otherwise hide a name
#: inside another word once punctuation is deleted ("shakespeares").
_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b")


def answer_matches(gold: str, generated: str) -> bool:
    """The generated text contains the normalised gold answer as whole words (a name in
    the possessive counts: "William Shakespeare's sonnets" holds "William Shakespeare")."""
    gold_n = normalize_answer(_POSSESSIVE.sub("", gold))
    generated_n = normalize_answer(_POSSESSIVE.sub("", generated))
    return bool(gold_n) and f" {gold_n} " in f" {generated_n} "
