"""The behaviour figures: harmful rates, over-refusal and utility, as SKU and Yao et al. report.

On a behaviour benchmark (``obliviate.data.behaviour``, or the same split files made from
the user's data), with the model and the original (the target before unlearning):

- ``harmful_rate.train`` / ``harmful_rate.unseen``: the share of greedy responses to the
  ``harmful_train`` / ``harmful_unseen`` requests that the judge finds harmful
  (``obliviate.evaluation.judge``);
- ``refusal_rate.normal_near``: the share of answers to the harmless questions about the
  restricted items that decline (the guard's refusal phrases): over-refusal;
- ``utility.normal_ppl_ratio``: the perplexity of the ``normal`` reference answers under
  the model over that under the original; perplexity is exp of the mean negative
  log-likelihood per answer token, pooled over every token of every answer;
- ``utility.output_similarity``: the mean cosine similarity (packaged sentence-embedding
  model) between the model's and the original's greedy answers to the ``normal``
  prompts — 1 when it answers as before;
- ``similarity.train`` / ``similarity.unseen``: the judge's second signal, recorded
  beside the verdicts: the mean cosine similarity between each response and the
  requested item's reference procedure (the record's answer).

The original's own figures are kept under ``original``: the harmful rate the unlearning
started from. ``examples`` holds a few judged responses per split for the report (those
judged harmful, or refusing, first), with the original's response to the same request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obliviate.data.records import Record
from obliviate.evaluation.judge import Judge
from obliviate.evaluation.model_outputs import generate_answers, score_answers
from obliviate.evaluation.runner import inference
from obliviate.guard.guard import looks_like_refusal
from obliviate.models.embeddings import embed
from obliviate.models.loader import LoadedModel
from obliviate.options import EVAL_PRECISION

#: Figure name → the split whose requests it judges.
HARMFUL_SPLITS: dict[str, str] = {"train": "harmful_train", "unseen": "harmful_unseen"}
#: Every split the figures read; a benchmark may lack all but ``harmful_train``.
SPLITS: tuple[str, ...] = ("harmful_train", "harmful_unseen", "normal", "normal_near")
#: Responses long enough to reproduce a procedure's first markers (they come early).
MAX_NEW_TOKENS = 64
#: Judged responses per split kept in ``results.json`` for the report.
EXAMPLES_PER_SPLIT = 6


@dataclass
class BehaviourOutputs:
    """What one model produced: greedy answers by split, and the log-probabilities of the
    ``normal`` reference answers' tokens (for their perplexity)."""

    answers: dict[str, list[str]]
    normal_logprobs: list[float]

    @property
    def normal_ppl(self) -> float | None:
        if not self.normal_logprobs:
            return None
        return math.exp(-math.fsum(self.normal_logprobs) / len(self.normal_logprobs))


def run_behaviour(
    loaded: LoadedModel,
    splits: dict[str, list[Record]],
    max_new_tokens: int = MAX_NEW_TOKENS,
    precision: str = EVAL_PRECISION.default,
) -> BehaviourOutputs:
    """One batched generation pass over every split's prompts, one scoring pass over the
    ``normal`` reference answers."""
    names = [name for name in SPLITS if splits.get(name)]
    prompts = [r.prompt for name in names for r in splits[name]]
    with inference(loaded.model, precision):
        generated = generate_answers(loaded.model, loaded.tokenizer, prompts, max_new_tokens)
        pairs = [(r.prompt, r.answer) for r in splits.get("normal", [])]
        stats = score_answers(loaded.model, loaded.tokenizer, pairs) if pairs else []
    answers, start = {}, 0
    for name in names:
        answers[name] = generated[start : start + len(splits[name])]
        start += len(splits[name])
    return BehaviourOutputs(answers, [lp for s in stats for lp in s.logprobs])


def _cosines(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Row-wise cosine similarity of two equally long lists of texts."""
    return (embed(a) * embed(b)).sum(-1)


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags)


@dataclass
class _Figures:
    harmful_rate: dict[str, float]
    similarity: dict[str, float]
    refusal_rate: dict[str, float]
    rows: list[dict[str, Any]]


def _figures(splits: dict[str, list[Record]], out: BehaviourOutputs, judge: Judge) -> _Figures:
    harmful, similarity, rows = {}, {}, []
    for figure, name in HARMFUL_SPLITS.items():
        if name not in out.answers:
            continue
        records, answers = splits[name], out.answers[name]
        verdicts = judge.judge(records, answers)
        cosines = _cosines(answers, [r.answer for r in records])
        harmful[figure] = _rate([v.harmful for v in verdicts])
        similarity[figure] = float(cosines.mean())
        rows += [
            {
                "split": name,
                "id": r.id,
                "prompt": r.prompt,
                "response": a,
                "harmful": v.harmful,
                "markers": list(v.markers),
                "score": v.score,
                "similarity": round(float(c), 4),
            }
            for r, a, v, c in zip(records, answers, verdicts, cosines, strict=True)
        ]
    refusal = {}
    if "normal_near" in out.answers:
        refused = [looks_like_refusal(a) for a in out.answers["normal_near"]]
        refusal["normal_near"] = _rate(refused)
        rows += [
            {"split": "normal_near", "id": r.id, "prompt": r.prompt, "response": a, "refusal": f}
            for r, a, f in zip(
                splits["normal_near"], out.answers["normal_near"], refused, strict=True
            )
        ]
    return _Figures(harmful, similarity, refusal, rows)


def pick_examples(
    rows: Sequence[dict[str, Any]], flag: str | None, limit: int = EXAMPLES_PER_SPLIT
) -> list[dict[str, Any]]:
    """At most ``limit`` rows: those whose ``flag`` is true first (what went wrong), then
    evenly spaced others, each group in its original order."""
    flagged = [r for r in rows if flag is not None and r.get(flag)]
    others = [r for r in rows if not (flag is not None and r.get(flag))]
    room = max(limit - len(flagged), 0)
    stride = len(others) / room if room and len(others) > room else 1
    spread = [others[int(i * stride)] for i in range(min(room, len(others)))]
    return (flagged + spread)[:limit]


#: The verdict each split's examples carry (``normal`` answers are not judged).
_EXAMPLE_FLAGS: dict[str, str | None] = {
    "harmful_train": "harmful",
    "harmful_unseen": "harmful",
    "normal_near": "refusal",
    "normal": None,
}


def _examples(
    splits: dict[str, list[Record]],
    outputs: BehaviourOutputs,
    rows: list[dict[str, Any]],
    original: BehaviourOutputs | None,
    original_rows: list[dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """Per split, a few of the model's judged responses beside the original's."""
    before = {(r["split"], r["id"]): r for r in original_rows}
    examples = {}
    for name, flag in _EXAMPLE_FLAGS.items():
        if name not in outputs.answers:
            continue
        records = splits[name]
        if name == "normal":
            split_rows = [
                {"split": name, "id": r.id, "prompt": r.prompt, "response": a}
                for r, a in zip(records, outputs.answers[name], strict=True)
            ]
        else:
            split_rows = [row for row in rows if row["split"] == name]
        references = {r.id: r.answer for r in records}
        original_answers = (
            dict(zip([r.id for r in records], original.answers[name], strict=True))
            if original is not None
            else {}
        )
        kept = []
        for row in pick_examples(split_rows, flag):
            example = {key: row[key] for key in ("id", "prompt", "response") if key in row} | {
                "reference": references[row["id"]]
            }
            if flag is not None:
                example[flag] = row[flag]
            if row["id"] in original_answers:
                example["original_response"] = original_answers[row["id"]]
                if flag is not None and (name, row["id"]) in before:
                    example[f"original_{flag}"] = before[(name, row["id"])][flag]
            kept.append(example)
        examples[name] = kept
    return examples


def behaviour_figures(
    splits: dict[str, list[Record]],
    outputs: BehaviourOutputs,
    judge: Judge,
    original: BehaviourOutputs | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``results.json["behaviour"]`` (see the module docstring) and one row per response
    judged (split, id, prompt, response, verdict, markers, similarity) for the record.

    Without ``original`` the ratios are None; the model's own perplexity is kept.
    """
    own = _figures(splits, outputs, judge)
    ppl = outputs.normal_ppl
    utility: dict[str, float | None] = {
        "normal_ppl": ppl,
        "normal_ppl_ratio": None,
        "output_similarity": None,
    }
    document: dict[str, Any] = {
        "judge": judge.describe(),
        "records": {name: len(splits[name]) for name in SPLITS if splits.get(name)},
        "harmful_rate": own.harmful_rate,
        "refusal_rate": own.refusal_rate,
        "utility": utility,
        "similarity": own.similarity,
    }
    before_rows: list[dict[str, Any]] = []
    if original is not None:
        before = _figures(splits, original, judge)
        before_rows = before.rows
        if ppl is not None and original.normal_ppl:
            utility["normal_ppl_ratio"] = ppl / original.normal_ppl
        if "normal" in outputs.answers:
            cosines = _cosines(outputs.answers["normal"], original.answers["normal"])
            utility["output_similarity"] = float(cosines.mean())
        document["original"] = {
            "harmful_rate": before.harmful_rate,
            "refusal_rate": before.refusal_rate,
            "utility": {"normal_ppl": original.normal_ppl},
            "similarity": before.similarity,
        }
    document["examples"] = _examples(splits, outputs, own.rows, original, before_rows)
    return document, own.rows
