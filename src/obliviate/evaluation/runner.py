"""Evaluate a model on named splits: every registered metric, plus per-example rows.

The work is laid out once per tokenizer (``prepare_splits``): every question to answer
(the records' own, their paraphrases and probes) and every answer to score (gold,
paraphrased and wrong answers) is collected across all splits, de-duplicated and
tokenised. ``run_model`` then makes one batched generation pass and one batched scoring
pass per model, so target, oracle and unlearned model share the preparation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from obliviate.data.answers import answer_matches
from obliviate.data.records import Record
from obliviate.evaluation.figures import LIKELIHOOD_FIGURES
from obliviate.evaluation.metrics import METRICS, ProbeAnswer, SplitOutputs
from obliviate.evaluation.mia import TokenStats
from obliviate.evaluation.model_outputs import (
    generate_from_ids,
    mean_logprob,
    score_encoded,
    tokenize_prompts,
)
from obliviate.evaluation.statistics import rouge_recall
from obliviate.models.encoding import Encoded, encode_fact
from obliviate.models.precision import autocast_dtype
from obliviate.options import EVAL_PRECISION

Pair = tuple[str, str]


def tokenizer_key(tokenizer: object) -> str:
    """A fingerprint of everything in a tokenizer that changes how text becomes tokens."""
    state = {
        "vocab": sorted(tokenizer.get_vocab().items()),
        "template": getattr(tokenizer, "chat_template", None),
        "eos": tokenizer.eos_token,
        "class": type(tokenizer).__name__,
    }
    return hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()


#: Splits whose records' paraphrases and probes are asked too. They are the hard
#: in-scope questions, so they matter where knowledge should be gone; asking them on
#: every split would triple the generation time for figures nobody reads.
PROBE_SPLITS: tuple[str, ...] = ("forget",)


def _questions(record: Record, with_probes: bool) -> list[str]:
    if not with_probes:
        return [record.prompt]
    return [record.prompt, *record.paraphrases, *(p.prompt for p in record.probes.values())]


def _pairs(record: Record) -> list[Pair]:
    correct = record.paraphrased_answer or record.answer
    return [
        (record.prompt, record.answer),
        (record.prompt, correct),
        *((record.prompt, wrong) for wrong in record.perturbed),
    ]


@dataclass
class PreparedSplits:
    """The splits' questions and answers, de-duplicated and tokenised for one tokenizer."""

    splits: dict[str, list[Record]]
    probe_splits: tuple[str, ...]
    tokenizer_key: str
    questions: list[str]
    prompt_ids: list[list[int]]
    pairs: list[Pair]
    encoded: list[Encoded]
    #: Per split, record id → the record as the starting model states it
    #: (``evaluation.own_phrasing``); its likelihood figures score that statement.
    stated: dict[str, dict[str, Record]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Units of work for a progress bar: answers to generate plus answers to score."""
        return len(self.questions) + len(self.pairs)


def prepare_splits(
    splits: dict[str, list[Record]],
    tokenizer: object,
    probe_splits: tuple[str, ...] = PROBE_SPLITS,
    context: str | None = None,
    stated: dict[str, dict[str, Record]] | None = None,
) -> PreparedSplits:
    """Collect and tokenise the work of every split (passages are skipped: no question).

    ``context`` goes before every question (a guard's prefix or demonstrations).
    ``stated`` (per split, record id → restated record) adds the answers as the starting
    model states them to the answers scored.
    """
    stated = {name: by_id for name, by_id in (stated or {}).items() if by_id}
    facts = {name: [r for r in records if not r.is_text] for name, records in splits.items()}
    facts = {name: records for name, records in facts.items() if records}
    questions = list(
        dict.fromkeys(
            q
            for name, records in facts.items()
            for r in records
            for q in _questions(r, name in probe_splits)
        )
    )
    pairs = list(dict.fromkeys(p for rs in facts.values() for r in rs for p in _pairs(r)))
    restated = [r for by_id in stated.values() for r in by_id.values()]
    pairs = list(dict.fromkeys([*pairs, *(p for r in restated for p in _pairs(r))]))
    return PreparedSplits(
        splits=facts,
        probe_splits=probe_splits,
        tokenizer_key=tokenizer_key(tokenizer),
        questions=questions,
        prompt_ids=tokenize_prompts(tokenizer, questions, context),
        pairs=pairs,
        encoded=[encode_fact(tokenizer, q, a, context) for q, a in pairs],
        stated=stated,
    )


@dataclass
class ModelOutputs:
    """What one model produced for the prepared work: answers by question, stats by pair."""

    answers: dict[str, str]
    stats: dict[Pair, TokenStats]


@contextmanager
def inference(model: torch.nn.Module, precision: str) -> Iterator[None]:
    """The model in eval mode under ``precision``'s autocast, its mode restored after.

    Every evaluation pass goes through here, so figures of one run share one precision.
    """
    dtype = autocast_dtype(precision)
    was_training = model.training
    model.eval()
    try:
        with torch.autocast(model.device.type, dtype=dtype, enabled=dtype is not None):
            yield
    finally:
        model.train(was_training)


def run_model(
    model: torch.nn.Module,
    tokenizer: object,
    prepared: PreparedSplits,
    on_progress: Callable[[int], None] | None = None,
    max_new_tokens: int = 24,
    precision: str = EVAL_PRECISION.default,
    earlier: ModelOutputs | None = None,
) -> ModelOutputs:
    """One batched generation pass and one batched scoring pass over all the splits.

    ``precision`` is ``fp32`` (the default: figures comparable across machines), ``bf16``,
    ``fp16`` or ``auto`` (bf16 where the hardware has it, about 2× faster on such CPUs).
    ``earlier`` (this model's outputs on part of the same work, such as the splits before
    the starting model's statements were added) is kept: its answers are not generated
    again and its answers' scores not computed again, only what it lacks.
    """
    if tokenizer_key(tokenizer) != prepared.tokenizer_key:
        raise ValueError("the splits were prepared with another tokenizer; prepare them again")
    done = earlier or ModelOutputs(answers={}, stats={})
    ask = [i for i, q in enumerate(prepared.questions) if q not in done.answers]
    score = [i for i, pair in enumerate(prepared.pairs) if pair not in done.stats]
    with inference(model, precision):
        generated = generate_from_ids(
            model,
            tokenizer,
            [prepared.prompt_ids[i] for i in ask],
            max_new_tokens,
            on_batch=on_progress,
        )
        stats = score_encoded(
            model,
            [prepared.encoded[i] for i in score],
            [prepared.pairs[i][1] for i in score],
            tokenizer.pad_token_id,
            on_batch=on_progress,
        )
    answers = done.answers | {prepared.questions[i]: a for i, a in zip(ask, generated, strict=True)}
    scored = done.stats | {prepared.pairs[i]: t for i, t in zip(score, stats, strict=True)}
    return ModelOutputs(
        answers={q: answers[q] for q in prepared.questions},
        stats={pair: scored[pair] for pair in prepared.pairs},
    )


@dataclass
class SplitResult:
    """One split's outputs, its figures (metric → value or None) and per-example rows."""

    outputs: SplitOutputs
    figures: dict[str, float | None]
    examples: list[dict] = field(default_factory=list)
    #: The outputs scored on the bare gold answers where ``outputs`` score the starting
    #: model's statements (``evaluation.own_phrasing``); None where they are the same.
    gold_outputs: SplitOutputs | None = None

    @property
    def bare(self) -> SplitOutputs:
        """The outputs on the bare gold answers (membership inference reads these)."""
        return self.gold_outputs or self.outputs


def _split_outputs(
    name: str,
    records: list[Record],
    out: ModelOutputs,
    with_probes: bool,
    stated: dict[str, Record] | None = None,
) -> SplitOutputs:
    """One split's outputs; with ``stated``, the answers scored are those statements
    (a record's own where it has none), the answers generated are judged on the gold."""
    scored = [(stated or {}).get(r.id, r) for r in records]
    probes: dict[str, list[ProbeAnswer]] = {}
    for i, r in enumerate(records if with_probes else []):
        asked = [("paraphrase", q, r.answer) for q in r.paraphrases]
        asked += [(kind, p.prompt, p.answer) for kind, p in r.probes.items()]
        for kind, question, expected in asked:
            probes.setdefault(kind, []).append(
                ProbeAnswer(i, question, expected, out.answers[question])
            )
    return SplitOutputs(
        split=name,
        records=records,
        generated=[out.answers[r.prompt] for r in records],
        answer=[out.stats[(r.prompt, r.answer)] for r in scored],
        paraphrased=[out.stats[_pairs(r)[1]] for r in scored],
        perturbed=[[out.stats[p] for p in _pairs(r)[2:]] for r in scored],
        probes=probes,
    )


def _examples(outputs: SplitOutputs) -> list[dict]:
    ratios = outputs.truth_ratios()
    by_record: dict[int, list[tuple[str, ProbeAnswer]]] = {}
    for kind, answers in outputs.probes.items():
        for answer in answers:
            by_record.setdefault(answer.record_index, []).append((kind, answer))
    rows = []
    for i, (r, g, stats) in enumerate(
        zip(outputs.records, outputs.generated, outputs.answer, strict=True)
    ):
        row = {
            "id": r.id,
            "question": r.prompt,
            "answer": r.answer,
            "generated": g,
            "correct": answer_matches(r.answer, g),
            "rouge_l": rouge_recall(r.answer, g),
            "answer_logprob": mean_logprob(stats),
            "truth_ratio": float(ratios[i]) if ratios is not None else None,
        }
        probes: dict[str, list[dict]] = {}
        for kind, answer in by_record.get(i, []):
            probes.setdefault(kind, []).append(
                {
                    "question": answer.question,
                    "generated": answer.generated,
                    "correct": answer_matches(answer.expected, answer.generated),
                }
            )
        if probes:
            row["probes"] = probes
        rows.append(row)
    return rows


def score_split(outputs: SplitOutputs) -> SplitResult:
    """Every registered metric and the per-example rows of one split's outputs."""
    figures = {metric: fn(outputs) for metric, fn in METRICS.items()}
    figures["n"] = len(outputs.records)
    return SplitResult(outputs, figures, _examples(outputs))


def split_results(prepared: PreparedSplits, out: ModelOutputs) -> dict[str, SplitResult]:
    """Every registered metric and the per-example rows of every split; a split with
    statements (``prepared.stated``) also keeps its likelihood figures on the bare gold
    answers, as ``<figure>_gold``."""
    results = {}
    for name, records in prepared.splits.items():
        probes = name in prepared.probe_splits
        bare = _split_outputs(name, records, out, probes)
        if name not in prepared.stated:
            results[name] = score_split(bare)
            continue
        result = score_split(_split_outputs(name, records, out, probes, prepared.stated[name]))
        gold = {metric: METRICS[metric](bare) for metric in LIKELIHOOD_FIGURES}
        result.figures |= {f"{metric}_gold": value for metric, value in gold.items()}
        result.gold_outputs = bare
        for row in result.examples:
            if row["id"] in prepared.stated[name]:
                row["statement"] = prepared.stated[name][row["id"]].answer
        results[name] = result
    return results


def evaluate_splits(
    model: torch.nn.Module, tokenizer: object, splits: dict[str, list[Record]]
) -> tuple[dict[str, dict[str, float | None]], dict[str, list[dict]]]:
    """Figures per split (``{split: {metric: value, "n": count}}``) and per-example rows."""
    prepared = prepare_splits(splits, tokenizer)
    results = split_results(prepared, run_model(model, tokenizer, prepared))
    return (
        {name: r.figures for name, r in results.items()},
        {name: r.examples for name, r in results.items()},
    )
