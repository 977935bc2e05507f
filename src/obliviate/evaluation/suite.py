"""Evaluate several models on the same splits and turn the outputs into results.json.

The per-split figures come from the metric registry (``runner``); this module adds the
whole-run figures, which compare splits or models: forget quality against the oracle,
model utility (TOFU's, and ours with neighbours), membership inference and PrivLeak, the
cost of the run that made the model and, when there are passages to forget, MUSE's text
figures (``text``).
Definitions are in ``docs/evaluation.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from obliviate.cache import load_entry, store_entry
from obliviate.data.records import Record
from obliviate.evaluation import mia, statistics, text
from obliviate.evaluation.cache import KIND, evaluation_key
from obliviate.evaluation.metrics import degenerate_share, dominant_script
from obliviate.evaluation.own_phrasing import stated_splits
from obliviate.evaluation.runner import (
    PreparedSplits,
    SplitResult,
    prepare_splits,
    run_model,
    split_results,
    tokenizer_key,
)
from obliviate.evaluation.verdict import verdict
from obliviate.guard.guard import Guard, looks_like_refusal
from obliviate.models.loader import load_model, smollm2_gguf_path
from obliviate.options import EVAL_PRECISION
from obliviate.progress import progress_bar, say
from obliviate.rundir import peak_rss_mb

#: TOFU's Model Utility: the harmonic mean of these nine numbers, {Probability, ROUGE,
#: Truth Ratio} on the retain split and on TOFU's Real Authors and World Facts, where the
#: probability is the normalised one, p / (p + Σ wrong), as TOFU scores those
#: multiple-choice splits (``aggregate_eval_stat.py``).
UTILITY_FIGURES: tuple[tuple[str, str], ...] = (
    ("retain", "prob"),
    ("retain", "rouge_l"),
    ("retain", "truth_ratio"),
    ("real_authors", "prob_normalized"),
    ("real_authors", "rouge_l"),
    ("real_authors", "truth_ratio"),
    ("world_facts", "prob_normalized"),
    ("world_facts", "rouge_l"),
    ("world_facts", "truth_ratio"),
)
#: ``model_utility_neighbors``: the same nine with our ``neighbors`` split in the place of
#: Real Authors (its plain probability: neighbours are fictitious people, answered as
#: retain is) and our ``world`` for World Facts (normalised probability: a chat model
#: answers in full sentences, so the raw probability of the bare answer says little).
NEIGHBOR_UTILITY_FIGURES: tuple[tuple[str, str], ...] = (
    ("retain", "prob"),
    ("retain", "rouge_l"),
    ("retain", "truth_ratio"),
    ("neighbors", "prob"),
    ("neighbors", "rouge_l"),
    ("neighbors", "truth_ratio"),
    ("world", "prob_normalized"),
    ("world", "rouge_l"),
    ("world", "truth_ratio"),
)

#: Membership inference: forget answers are the members, holdout answers the non-members.
MEMBER_SPLIT, NONMEMBER_SPLIT = "forget", "holdout"
#: PrivLeak as MUSE computes it by default (``forget_holdout_Min-40%``, and
#: open-unlearning's ``privleak.yaml``): Min-K% Prob over the lowest 40 % of tokens.
PRIVLEAK_ATTACK, PRIVLEAK_K = "mink", 0.4
#: ``privleak_minkpp``: Min-K%++ at the fraction ``mia`` uses for every attack.
PRIVLEAK_MINKPP_ATTACK, PRIVLEAK_MINKPP_K = "minkpp", 0.2


@dataclass
class ModelEvaluation:
    """One model's outputs on the splits, and what evaluating it cost."""

    name: str
    spec: str
    splits: dict[str, SplitResult]
    eval_seconds: float
    eval_peak_rss_mb: float
    passages: text.PassageOutputs | None = None
    cached: bool = False
    """Read back from the evaluation cache (the seconds are those of the first run)."""


def evaluate_models(
    models: dict[str, str | Path],
    splits: dict[str, list[Record]],
    on_model: Callable[[str], None] | None = None,
    precision: str = EVAL_PRECISION.default,
    guards: dict[str, Guard] | None = None,
    passages: dict[str, list[Record]] | None = None,
    text_settings: text.TextSettings | None = None,
    cache: Path | None = None,
    own_phrasing: bool = True,
) -> dict[str, ModelEvaluation]:
    """Evaluate each model (name → spec) on the same splits, one model in memory at a time.

    The splits are prepared (collected, de-duplicated, tokenised) once and reused by every
    model whose tokenizer is the same. A model named in ``guards`` is evaluated behind
    its guard: the guard's context before every question, its filters on every answer.
    ``passages`` (by role: ``forget``, ``retain``, ``holdout``) with forget passages add
    the work of MUSE's text figures; it is done on the bare model, guard or not, since a
    guard acts on questions and a passage's opening is none.

    With ``cache`` (a directory), the evaluation of a model evaluated before (a model
    directory, a GGUF file, the built-in ``smollm2``) with the same records, settings and
    code is read back (``evaluation.cache``); a guarded model is always evaluated.

    With ``own_phrasing`` and a model named ``target`` (the starting model), the target
    is evaluated first, and where it answers in sentences its statements are what every
    model's likelihood figures score (``evaluation.own_phrasing``).
    """
    prepared: PreparedSplits | None = None
    passages = passages if passages and passages.get("forget") else None
    settings = text_settings or text.TextSettings()
    evaluations = {}
    guards = guards or {}
    stated: dict[str, dict[str, Record]] = {}
    states = own_phrasing and "target" in models
    for name in sorted(models, key=lambda n: n != "target" or not states):
        spec = models[name]
        if on_model:
            on_model(name)
        guard = guards.get(name)
        key = None
        weights = _weights(str(spec))
        if cache is not None and guard is None and weights is not None:
            keyed = splits | {f"{split}.stated": list(s.values()) for split, s in stated.items()}
            key = evaluation_key(weights, keyed, precision, passages, settings)
            stored = load_entry(cache, KIND, key, ModelEvaluation)
            if isinstance(stored, ModelEvaluation):
                say(f"reused the cached evaluation of {name} (same weights, records and code)")
                evaluations[name] = replace(stored, name=name, spec=str(spec), cached=True)
                if states and name == "target":
                    stated = stated_splits(splits, _answers(stored))
                continue
        started = time.perf_counter()
        loaded = load_model(str(spec))
        if guard is not None:
            work = prepare_splits(splits, loaded.tokenizer, context=guard.context, stated=stated)
        elif prepared is None or tokenizer_key(loaded.tokenizer) != prepared.tokenizer_key:
            work = prepared = prepare_splits(splits, loaded.tokenizer, stated=stated)
        else:
            work = prepared
        text_work = None
        if passages is not None:
            text_work = text.prepare_passages(loaded.tokenizer, passages, settings)
        size = work.size + (text_work.size if text_work else 0)
        with progress_bar(f"evaluate {name}", size) as advance:
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                advance(done)

            outputs = run_model(
                loaded.model, loaded.tokenizer, work, on_progress=step, precision=precision
            )
            if states and name == "target":
                stated = stated_splits(splits, outputs.answers)
                if stated:  # only its statements are scored: the rest is in ``outputs``
                    work = prepared = prepare_splits(splits, loaded.tokenizer, stated=stated)
                    outputs = run_model(
                        loaded.model,
                        loaded.tokenizer,
                        work,
                        precision=precision,
                        earlier=outputs,
                    )
            passage_outputs = None
            if text_work is not None:
                passage_outputs = text.run_passages(
                    loaded.model, loaded.tokenizer, text_work, precision, on_progress=step
                )
        if guard is not None:
            shown = guard.filter(
                work.questions,
                [None] * len(work.questions),
                [outputs.answers[q] for q in work.questions],
            )
            outputs.answers = dict(zip(work.questions, shown, strict=True))
        evaluations[name] = ModelEvaluation(
            name=name,
            spec=str(spec),
            splits=split_results(work, outputs),
            eval_seconds=time.perf_counter() - started,
            eval_peak_rss_mb=peak_rss_mb(),
            passages=passage_outputs,
        )
        if key is not None:
            store_entry(cache, KIND, key, evaluations[name])
        del loaded
    return {name: evaluations[name] for name in models}


def _weights(spec: str) -> Path | None:
    """What a cached evaluation of ``spec`` is keyed by: a model or run directory, a GGUF
    file, the built-in default model's GGUF; None for what has no file to hash (``tiny``,
    made in memory; a Hub id)."""
    if spec == "smollm2":
        return smollm2_gguf_path()
    path = Path(spec).expanduser()
    return path if path.is_dir() or (path.is_file() and path.suffix == ".gguf") else None


def _answers(evaluation: ModelEvaluation) -> dict[str, str]:
    """A model's greedy answer by question, from its per-example rows."""
    return {
        row["question"]: row["generated"]
        for result in evaluation.splits.values()
        for row in result.examples
    }


def _utility_inputs(
    evaluation: ModelEvaluation, figures: tuple[tuple[str, str], ...], gold: bool = False
) -> dict[str, float | None]:
    """The named figures; with ``gold``, a likelihood figure's ``_gold`` twin where the
    split has one (the bare gold answer where the figure scores a statement)."""

    def value(split: str, metric: str) -> float | None:
        own, twin = evaluation.splits[split].figures, f"{metric}_gold"
        return own[twin] if gold and twin in own else own.get(metric)

    return {
        f"{split}.{metric}": value(split, metric)
        for split, metric in figures
        if split in evaluation.splits
    }


def model_utility(
    evaluation: ModelEvaluation, gold: bool = False
) -> tuple[float | None, list[str]]:
    """TOFU's Model Utility, the harmonic mean of all nine ``UTILITY_FIGURES``, and their
    names; (None, []) unless the model was evaluated on retain, Real Authors and World
    Facts with every figure defined. ``gold``: on the bare gold answers."""
    used = _utility_inputs(evaluation, UTILITY_FIGURES, gold)
    if len(used) < len(UTILITY_FIGURES) or None in used.values():
        return None, []
    return statistics.model_utility(list(used.values())), list(used)


def model_utility_neighbors(
    evaluation: ModelEvaluation, gold: bool = False
) -> tuple[float | None, list[str]]:
    """Harmonic mean of ``NEIGHBOR_UTILITY_FIGURES`` (those the splits have) and the names
    used. ``gold``: on the bare gold answers."""
    used = {
        k: v
        for k, v in _utility_inputs(evaluation, NEIGHBOR_UTILITY_FIGURES, gold).items()
        if v is not None
    }
    if not used:
        return None, []
    return statistics.model_utility(list(used.values())), list(used)


@dataclass(frozen=True)
class ForgetQuality:
    """TOFU's Forget Quality and what it depends on: the KS test's statistic and the two
    sample sizes (at a fixed gap between the distributions the p-value falls as n grows)."""

    p_value: float | None = None
    statistic: float | None = None
    n_model: int | None = None
    n_oracle: int | None = None


def forget_quality(
    evaluation: ModelEvaluation, oracle: ModelEvaluation | None, gold: bool = False
) -> ForgetQuality:
    """The KS test of the forget truth ratios against the oracle's (nothing without them);
    ``gold``: the truth ratios of the bare gold answers."""
    if oracle is None or "forget" not in evaluation.splits or "forget" not in oracle.splits:
        return ForgetQuality()
    mine, theirs = evaluation.splits["forget"], oracle.splits["forget"]
    mine, theirs = (mine.bare, theirs.bare) if gold else (mine.outputs, theirs.outputs)
    mine, theirs = mine.truth_ratios(), theirs.truth_ratios()
    if mine is None or theirs is None:
        return ForgetQuality()
    p_value, statistic = statistics.forget_quality(mine, theirs)
    return ForgetQuality(p_value, statistic, len(mine), len(theirs))


def mia_scores(evaluation: ModelEvaluation) -> dict[str, dict[str, list[float]]] | None:
    """Per-example attack scores on members (forget) and non-members (holdout)."""
    if MEMBER_SPLIT not in evaluation.splits or NONMEMBER_SPLIT not in evaluation.splits:
        return None
    members = mia.attack_scores(evaluation.splits[MEMBER_SPLIT].bare.answer)
    nonmembers = mia.attack_scores(evaluation.splits[NONMEMBER_SPLIT].bare.answer)
    return {
        attack: {MEMBER_SPLIT: members[attack], NONMEMBER_SPLIT: nonmembers[attack]}
        for attack in mia.ATTACKS
    }


def _aucs(scores: dict[str, dict[str, list[float]]] | None) -> dict[str, float] | None:
    if scores is None:
        return None
    return mia.mia_aucs(
        {a: s[MEMBER_SPLIT] for a, s in scores.items()},
        {a: s[NONMEMBER_SPLIT] for a, s in scores.items()},
    )


def privleak_aucs(evaluation: ModelEvaluation) -> dict[str, float] | None:
    """The AUCs (``mia``'s orientation) PrivLeak compares with the oracle's: ``privleak``,
    MUSE's Min-K% at ``PRIVLEAK_K``, and ``privleak_minkpp``; None without holdout."""
    if MEMBER_SPLIT not in evaluation.splits or NONMEMBER_SPLIT not in evaluation.splits:
        return None
    members = evaluation.splits[MEMBER_SPLIT].bare.answer
    nonmembers = evaluation.splits[NONMEMBER_SPLIT].bare.answer
    return {
        "privleak": mia.attack_auc(members, nonmembers, PRIVLEAK_ATTACK, PRIVLEAK_K),
        "privleak_minkpp": mia.attack_auc(
            members, nonmembers, PRIVLEAK_MINKPP_ATTACK, PRIVLEAK_MINKPP_K
        ),
    }


def _privleak(
    aucs: dict[str, float] | None, oracle_aucs: dict[str, float] | None, key: str
) -> float | None:
    if aucs is None or oracle_aucs is None:
        return None
    return mia.muse_privleak(aucs[key], oracle_aucs[key])


def split_figures(
    evaluation: ModelEvaluation, target: ModelEvaluation | None
) -> dict[str, dict[str, float | None]]:
    """Each split's figures; with the target, ``degenerate`` is judged against the script
    the target answers that split in (its own answers), not the one the records are in."""
    figures = {name: dict(r.figures) for name, r in evaluation.splits.items()}
    for name, own in figures.items():
        theirs = target.splits.get(name) if target is not None else None
        script = dominant_script(theirs.outputs.generated) if theirs is not None else None
        if script is not None:
            own["degenerate"] = degenerate_share(evaluation.splits[name].outputs.generated, script)
    return figures


def mia_applicability(evaluation: ModelEvaluation, mia_note: str | None) -> str | None:
    """Why membership inference says nothing about this run (None: it does). It needs
    holdout records, and holdout and forget drawn at random from one pool: against
    invented facts, or facts picked otherwise, the AUC tells the two sets apart by what
    they are, not by whether the model still holds the forget set (``mia_note``, from
    ``data.scenario.mia_applicability``)."""
    if NONMEMBER_SPLIT not in evaluation.splits:
        return "no holdout records: membership inference needs never-trained facts"
    return mia_note


def run_cost(spec: str) -> dict[str, Any]:
    """Cost of the run that produced the model, from its manifest (nulls for a base model)."""
    manifest = Path(spec) / "manifest.json"
    cost: dict[str, Any] = {"seconds": None, "peak_rss_mb": None, "steps": None, "tokens": None}
    method = None
    if manifest.is_file():
        document = json.loads(manifest.read_text())
        cost.update({k: document.get("cost", {}).get(k) for k in cost})
        method = document.get("method")
    return {"cost": cost, "method": method}


def gold_figures(
    evaluation: ModelEvaluation, oracle: ModelEvaluation | None
) -> dict[str, float | None]:
    """Forget quality and the utilities on the bare gold answers, where the main ones
    score the starting model's statements (none where nothing was restated)."""
    if all(r.gold_outputs is None for r in evaluation.splits.values()):
        return {}
    return {
        "forget_quality_gold": forget_quality(evaluation, oracle, gold=True).p_value,
        "model_utility_gold": model_utility(evaluation, gold=True)[0],
        "model_utility_neighbors_gold": model_utility_neighbors(evaluation, gold=True)[0],
    }


def results_entry(
    evaluation: ModelEvaluation,
    oracle: ModelEvaluation | None,
    split: str,
    target: ModelEvaluation | None = None,
    mia_note: str | None = None,
) -> dict[str, Any]:
    """One model's results in the contract's shape (see ``docs/evaluation.md``); the oracle
    is the yardstick of forget quality and PrivLeak, the target's forget quality against
    it (the same n) is given beside the model's. With ``mia_note`` (why forget and
    holdout are not a random split of one pool), ``mia`` and the PrivLeaks are null."""
    utility, utility_inputs = model_utility(evaluation)
    neighbor_utility, neighbor_inputs = model_utility_neighbors(evaluation)
    quality = forget_quality(evaluation, oracle)
    target_quality = forget_quality(target, oracle) if target is not None else ForgetQuality()
    not_applicable = mia_applicability(evaluation, mia_note)
    scores = mia_scores(evaluation) if not_applicable is None else None
    aucs = _aucs(scores)
    leak_aucs = privleak_aucs(evaluation) if not_applicable is None else None
    oracle_leak_aucs = privleak_aucs(oracle) if oracle is not None and leak_aucs else None
    provenance = run_cost(evaluation.spec)
    cost = provenance["cost"] | {
        "eval_seconds": round(evaluation.eval_seconds, 2),
        "eval_peak_rss_mb": round(evaluation.eval_peak_rss_mb, 1),
        "eval_cached": evaluation.cached,
    }
    return {
        "model": evaluation.spec,
        "method": provenance["method"],
        "split": split,
        "splits": split_figures(evaluation, target),
        "forget_quality": quality.p_value,
        "forget_quality_ks": quality.statistic,
        "forget_quality_n": (
            None
            if quality.n_model is None
            else {"model": quality.n_model, "oracle": quality.n_oracle}
        ),
        "forget_quality_target": target_quality.p_value,
        "model_utility": utility,
        "model_utility_inputs": utility_inputs,
        "model_utility_neighbors": neighbor_utility,
        "model_utility_neighbors_inputs": neighbor_inputs,
        "mia_applicable": not_applicable is None,
        "mia_note": not_applicable,
        "mia": aucs,
        "mia_scores": scores,
        "privleak": _privleak(leak_aucs, oracle_leak_aucs, "privleak"),
        "privleak_minkpp": _privleak(leak_aucs, oracle_leak_aucs, "privleak_minkpp"),
        "privleak_aucs": leak_aucs,
        **gold_figures(evaluation, oracle),
        "cost": cost,
        "examples": {name: r.examples for name, r in evaluation.splits.items()},
    }


def guard_figures(evaluation: ModelEvaluation, guard: Guard) -> dict[str, Any]:
    """A guarded model's leak rates (forget accuracy, plain and per probe kind) and false
    refusals (answers that decline, by a filter or in the model's words) per other split."""
    forget = evaluation.splits.get("forget")
    leak = {}
    if forget is not None:
        leak["plain"] = forget.figures["accuracy"]
        for kind in ("paraphrase", "multihop", "crosslingual"):
            if forget.figures.get(f"{kind}_accuracy") is not None:
                leak[kind] = forget.figures[f"{kind}_accuracy"]
    refused = {
        name: sum(map(looks_like_refusal, result.outputs.generated)) / len(result.outputs.generated)
        for name, result in evaluation.splits.items()
        if name != "forget" and result.outputs.generated
    }
    return guard.to_json() | {
        "leak_rate": leak,
        "false_refusal_rate": refused,
        "filtered": dict(guard.filtered),
        "filter_ms_per_answer": guard.filter_ms(),
    }


def results_document(
    evaluations: dict[str, ModelEvaluation],
    main: str,
    split: str,
    mia_note: str | None = None,
) -> dict[str, Any]:
    """results.json: the main model's entry at the top level, the others under ``reference``,
    and the ``verdict`` (``evaluation.verdict``).

    ``evaluations`` may hold ``oracle`` and ``target`` beside ``main``; the oracle is the
    yardstick of forget quality and PrivLeak for every model, itself included (1.0 and 0),
    and of the text verdicts, the target of ``utility_preserved`` and the forget quality
    every entry shows beside its own. ``mia_note`` says why membership inference does not
    apply (see ``results_entry``).
    """
    oracle, target = evaluations.get("oracle"), evaluations.get("target")
    entries = {
        name: results_entry(evaluation, oracle, split, target, mia_note)
        for name, evaluation in evaluations.items()
    }
    figures = {
        name: text.text_figures(e.passages, {s: r.outputs for s, r in e.splits.items()})
        for name, e in evaluations.items()
        if e.passages is not None
    }
    for name, own in figures.items():
        entries[name]["text"] = text.text_entry(
            evaluations[name].passages, own, figures.get("oracle"), figures.get("target")
        )
    document = entries.pop(main)
    if entries:
        document["reference"] = entries
    document["verdict"] = verdict(document)
    return document
