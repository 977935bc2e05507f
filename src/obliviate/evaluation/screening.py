"""Which candidate facts a model really knows: its greedy answers, checked as evaluation does.

A benchmark of knowledge the model already has (``data/known.py``) only measures
forgetting on facts the starting model answers, so every candidate question (and each
paraphrase, whose accuracy is recorded too) is asked the way evaluation asks it: through
the model's chat template, greedy, with evaluation's token budget (``generate_from_ids``),
and judged by evaluation's ``answer_matches``.

Each question's answer is kept in the result cache (``$OBLIVIATE_CACHE/screening``, JSON)
under the hash of the model's content, the question, the generation code and the library
versions, so screening again after a candidate is added or reworded asks only the new
questions, and an interrupted screening resumes where it stopped. The cached answer is the
generated text, not the verdict: changing a gold answer re-judges without asking again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from obliviate.cache import cache_root, code_fingerprint, content_key, load_entry, store_entry
from obliviate.data.answers import answer_matches
from obliviate.data.known import Screened
from obliviate.data.records import Record
from obliviate.evaluation.model_outputs import GENERATION_BATCH, generate_from_ids, tokenize_prompts
from obliviate.models.loader import LoadedModel
from obliviate.rundir import package_versions

#: The folder of the result cache that holds screening answers.
KIND = "screening"
#: The code a greedy answer depends on: how prompts are formatted, models loaded, answers
#: generated.
_CODE = ("evaluation/model_outputs.py", "models/encoding.py", "models/loader.py")


def greedy_answers(
    loaded: LoadedModel,
    fingerprint: str,
    questions: Sequence[str],
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Question → the model's greedy answer, read from the cache where asked before.

    ``fingerprint`` names the model's content (``models.loader.model_fingerprint``).
    ``on_progress(n)`` is told how many questions are answered so far (cached ones at once).
    """
    base = {"model": fingerprint, "code": code_fingerprint(_CODE), "versions": package_versions()}
    root = cache_root()
    keys = {q: content_key({**base, "question": q}) for q in dict.fromkeys(questions)}
    answers: dict[str, str] = {}
    for question, key in keys.items():
        cached = load_entry(root, KIND, key, str)
        if cached is not None:
            answers[question] = cached
    if on_progress and answers:
        on_progress(len(answers))
    missing = [q for q in keys if q not in answers]
    for start in range(0, len(missing), GENERATION_BATCH):
        batch = missing[start : start + GENERATION_BATCH]
        ids = tokenize_prompts(loaded.tokenizer, batch)
        for question, text in zip(
            batch, generate_from_ids(loaded.model, loaded.tokenizer, ids), strict=True
        ):
            answers[question] = text
            store_entry(root, KIND, keys[question], text)
        if on_progress:
            on_progress(len(answers))
    return answers


def screen_records(
    loaded: LoadedModel,
    fingerprint: str,
    records: Sequence[Record],
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Screened]:
    """Record id → whether the model answers its question and how many of its paraphrases
    (see ``greedy_answers`` for ``fingerprint`` and ``on_progress``)."""
    questions = [q for r in records for q in (r.prompt, *r.paraphrases)]
    answers = greedy_answers(loaded, fingerprint, questions, on_progress)
    return {
        r.id: Screened(
            answered=answer_matches(r.answer, answers[r.prompt]),
            paraphrases_answered=sum(answer_matches(r.answer, answers[p]) for p in r.paraphrases),
        )
        for r in records
    }


def questions_of(records: Sequence[Record]) -> int:
    """How many distinct questions screening ``records`` asks (for a progress bar's total)."""
    return len({q for r in records for q in (r.prompt, *r.paraphrases)})
