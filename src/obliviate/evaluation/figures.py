"""The one registry of how each figure is shown: its label, where it sits in a results
document, which way is better, its number format and what it means.

The terminal tables (``report/terminal.py``), the HTML and Markdown report (``report/``)
and the sequence tables (``report/sequence.py``) take every heading, arrow and number
format from here, so a figure reads the same wherever it appears. Standard library only:
the report and the command line import this without numpy or torch.

A per-split metric of ``evaluation/metrics.py`` has one figure per split
(``forget_accuracy``, ``retain_accuracy``…), declared here with ``register_split_figures``
so that the report, which never imports the metrics, can show them; ``register_metric``
refuses a metric whose figures are not declared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MISSING = "—"
VERDICT_MARKS = {True: "✓", False: "✗"}


def _probability(value: float) -> str:
    """Three decimals; a small non-zero value in scientific form, so it does not read as 0."""
    return f"{value:.1e}" if value != 0 and abs(value) < 1e-3 else f"{value:.3f}"


def _pvalue(value: float) -> str:
    """Three significant digits; scientific below 0.001 (forget quality reaches 1e-20)."""
    return f"{value:.2e}" if value != 0 and abs(value) < 1e-3 else f"{value:#.3g}"


#: How each style writes a number: ``0.4`` as ``40.0 %``, ``0.1234`` as ``0.123``…
FORMATS: dict[str, Callable[[float], str]] = {
    "percent": lambda v: f"{100 * v:.1f} %",  # a rate: the aims' 2 % sits between 1.5 and 2.5
    "probability": _probability,  # a score in [0, 1]
    "pvalue": _pvalue,
    "signed": lambda v: f"{v:+.3f}",  # a difference: +0.020 and -0.020 read apart
    "ratio": lambda v: f"{v:.3f}",  # near 1, or a fraction that is never tiny
    "number": lambda v: f"{v:.2f}",  # unbounded (perplexity)
    "seconds": lambda v: f"{v:.1f}",
    "milliseconds": lambda v: f"{v:.1f} ms",
    "count": lambda v: f"{v:.0f}",
}
#: Every style; ``verdict`` writes a bool as ✓ or ✗.
STYLES = (*FORMATS, "verdict")
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Figure:
    """How one figure of a results document is shown."""

    key: str
    """Stable name: ``forget_quality``, ``retain_accuracy``…"""
    label: str
    """Short heading without the arrow: ``forget quality``."""
    path: tuple[str, ...]
    """Keys from the results entry the figure belongs to (see each group below)."""
    better: str | float
    """``higher``, ``lower``, or a number the figure is best close to (privleak: 0)."""
    style: str
    """One of ``STYLES``: how its numbers are written, in every table."""
    meaning: str
    """One line: what the number is."""

    def __post_init__(self) -> None:
        target = isinstance(self.better, int | float) and not isinstance(self.better, bool)
        if not (target or self.better in DIRECTIONS):
            raise ValueError(f"figure {self.key!r}: better must be higher, lower or a number")
        if self.style not in STYLES:
            raise ValueError(f"figure {self.key!r}: style must be one of {', '.join(STYLES)}")
        if not (self.key and self.label and self.path and self.meaning):
            raise ValueError(f"figure {self.key!r} needs a key, label, path and meaning")


FIGURES: dict[str, Figure] = {}


def register_figure(
    key: str, label: str, path: tuple[str, ...], better: str | float, style: str, meaning: str
) -> Figure:
    """Add a figure; a key registered twice is refused."""
    if key in FIGURES:
        raise ValueError(f"figure {key!r} registered twice")
    FIGURES[key] = Figure(key, label, tuple(path), better, style, meaning)
    return FIGURES[key]


def figure(key: str) -> Figure:
    try:
        return FIGURES[key]
    except KeyError:
        raise KeyError(f"no figure {key!r}; register it in evaluation/figures.py") from None


def arrow(fig: Figure) -> str:
    """``↑``, ``↓``, or ``→ 0.5`` for a figure best close to 0.5."""
    if fig.better == "higher":
        return "↑"
    if fig.better == "lower":
        return "↓"
    return f"→ {fig.better:g}"


def heading(fig: Figure) -> str:
    """``forget quality ↑``: the label and the way a reader should want it to go. A verdict
    has no arrow: its ✓ says it."""
    return fig.label if fig.style == "verdict" else f"{fig.label} {arrow(fig)}"


def format_value(fig_or_style: Figure | str, value: Any) -> str:
    """``value`` as every table writes it: by the figure's style (or the style named).
    ``—`` for None and anything that is not a finite number (a verdict: not a bool)."""
    style = fig_or_style.style if isinstance(fig_or_style, Figure) else fig_or_style
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; one of {', '.join(STYLES)}")
    if style == "verdict":
        return VERDICT_MARKS[value] if isinstance(value, bool) else MISSING
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return MISSING
    return FORMATS[style](float(value))


def show(key: str, value: Any) -> str:
    """``value`` formatted as the figure ``key`` is."""
    return format_value(figure(key), value)


def lookup(entry: Any, path: tuple[str, ...]) -> Any:
    """``entry[k1][k2]…``, or None where a key is missing or a part is not a mapping."""
    for key in path:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    return entry


def cell(fig: Figure, entry: Any) -> str:
    """The figure of a results entry, formatted."""
    return format_value(fig, lookup(entry, fig.path))


# -- per-split metrics (paths from a model's results entry: splits.<split>.<metric>) -------

#: Splits whose figures are shown: forget, where the model should no longer know, and those
#: it should keep knowing (``real_authors`` and ``world_facts``: TOFU's, when given).
#: (holdout, the people no model learned, has no better way to go.)
FORGET_SPLIT = "forget"
KEPT_SPLITS = ("retain", "neighbors", "world", "real_authors", "world_facts")
#: Probe kinds with an accuracy metric; "paraphrase" is the record's own question reworded.
PROBE_KINDS: tuple[str, ...] = ("paraphrase", "multihop", "crosslingual")
#: Metric name → split → its figure there.
SPLIT_FIGURES: dict[str, dict[str, Figure]] = {}


def register_split_figures(
    metric: str,
    label: str,
    better: str,
    style: str,
    meaning: str,
    forget_better: str | None = None,
) -> dict[str, Figure]:
    """The figures ``<split>_<metric>`` of a per-split metric: ``better`` on the splits kept,
    the other way on forget (the model should no longer know) unless ``forget_better``."""
    if forget_better is None:
        forget_better = "lower" if better == "higher" else "higher"
    SPLIT_FIGURES[metric] = {
        split: register_figure(
            f"{split}_{metric}",
            f"{split} {label}",
            ("splits", split, metric),
            forget_better if split == FORGET_SPLIT else better,
            style,
            f"{meaning} ({split} split)",
        )
        for split in (FORGET_SPLIT, *KEPT_SPLITS)
    }
    return SPLIT_FIGURES[metric]


register_split_figures(
    "accuracy", "accuracy", "higher", "percent", "share of greedy answers holding the gold answer"
)
register_split_figures(
    "prob", "prob", "higher", "probability", "mean length-normalised probability of the answer"
)
register_split_figures(
    "rouge_l",
    "ROUGE-L",
    "higher",
    "probability",
    "ROUGE-L recall of greedy vs gold answers, Porter stemmer (TOFU's ROUGE)",
)
register_split_figures(
    "knowmem",
    "KnowMem",
    "higher",
    "probability",
    "ROUGE-L F1 of greedy vs gold answers, no stemmer (MUSE's KnowMem)",
)
register_split_figures(
    "truth_ratio",
    "truth ratio",
    "higher",
    "probability",
    "TOFU's truth ratio: mean min(R, 1/R) on forget, mean max(0, 1 − 1/R) elsewhere",
    forget_better="higher",
)
register_split_figures(
    "truth_ratio_prob_mean",
    "truth ratio (prob mean)",
    "higher",
    "probability",
    "open-unlearning's prob_mean truth ratio: mean p / (p + p_wrong), 0.5 indifferent",
)
register_split_figures(
    "exact_memorization",
    "exact memorisation",
    "higher",
    "probability",
    "share of gold answer tokens that are the model's argmax after the gold prefix "
    "(open-unlearning's EM)",
)
register_split_figures(
    "extraction_strength",
    "extraction strength",
    "higher",
    "probability",
    "1 − k/|y|, k the fewest gold tokens after which the argmax gives the rest "
    "(open-unlearning's ES)",
)
register_split_figures(
    "prob_normalized",
    "normalised prob",
    "higher",
    "probability",
    "the answer's share of probability among it and the wrong answers, p / (p + Σ p_j)",
)
for _kind in PROBE_KINDS:
    register_split_figures(
        f"{_kind}_accuracy",
        f"{_kind} accuracy",
        "higher",
        "percent",
        f"accuracy on the records' {_kind} questions (hard in-scope probes)",
    )
#: Per-split figures computed from answer likelihoods. Where the main ones score the
#: starting model's own statement of the answer (``evaluation/own_phrasing.py``), these on
#: the bare gold answer keep their names with ``_gold`` added.
LIKELIHOOD_FIGURES = (
    "prob",
    "truth_ratio",
    "truth_ratio_prob_mean",
    "prob_normalized",
    "exact_memorization",
    "extraction_strength",
)
for _metric in LIKELIHOOD_FIGURES:
    _main = SPLIT_FIGURES[_metric]["retain"]
    _forget = SPLIT_FIGURES[_metric][FORGET_SPLIT]
    register_split_figures(
        f"{_metric}_gold",
        f"{_main.label.removeprefix('retain ')} (bare gold)",
        _main.better,
        _main.style,
        _main.meaning.removesuffix(" (retain split)") + ", on the bare gold answer",
        forget_better=_forget.better,
    )
register_split_figures(
    "degenerate",
    "degenerate answers",
    "lower",
    "percent",
    "share of greedy answers that are empty, loop on a repeated n-gram or are mostly "
    "outside the script the facts (or the target) answer in",
    forget_better="lower",
)

# -- a model's results entry (results.json, or its reference.target / reference.oracle) ----

register_figure(
    "forget_quality",
    "forget quality",
    ("forget_quality",),
    "higher",
    "pvalue",
    "KS-test p-value of the forget truth ratios against the oracle's (TOFU)",
)
register_figure(
    "forget_quality_ks",
    "KS statistic",
    ("forget_quality_ks",),
    "lower",
    "ratio",
    "largest gap between the model's and the oracle's forget truth-ratio distributions",
)
register_figure(
    "forget_quality_n",
    "forget n",
    ("forget_quality_n", "model"),
    "higher",
    "count",
    "forget truth ratios in the KS test (forget quality falls with n at a fixed gap)",
)
register_figure(
    "forget_quality_target",
    "target's forget quality",
    ("forget_quality_target",),
    "lower",
    "pvalue",
    "the target's forget quality against the same oracle at the same n (no unlearning at all)",
)
register_figure(
    "model_utility",
    "model utility",
    ("model_utility",),
    "higher",
    "probability",
    "TOFU's: harmonic mean of probability, ROUGE-L and truth ratio on retain, Real Authors, "
    "World Facts",
)
register_figure(
    "model_utility_neighbors",
    "model utility (neighbours)",
    ("model_utility_neighbors",),
    "higher",
    "probability",
    "harmonic mean of probability, ROUGE-L and truth ratio on retain, neighbors, world "
    "(TOFU's with neighbors for Real Authors)",
)
for _key in ("forget_quality", "model_utility", "model_utility_neighbors"):
    _main = FIGURES[_key]
    register_figure(
        f"{_key}_gold",
        f"{_main.label} (bare gold)",
        (f"{_key}_gold",),
        _main.better,
        _main.style,
        f"{_main.meaning}; on the bare gold answers where the main figure scores the "
        "starting model's own statements",
    )
#: The membership-inference attacks (evaluation/mia.py) and their names in a heading.
MIA_ATTACKS = {"loss": "loss", "zlib": "zlib", "mink": "Min-K%", "minkpp": "Min-K%++"}
for _attack, _name in MIA_ATTACKS.items():
    register_figure(
        f"{_attack}_auc",
        f"{_name} AUC",
        ("mia", f"{_attack}_auc"),
        0.5,
        "probability",
        f"ROC AUC of the {_name} attack telling forget answers from holdout ones (0.5: chance)",
    )
register_figure(
    "privleak",
    "privleak",
    ("privleak",),
    0,
    "signed",
    "Min-K% (k = 0.4) AUC's gap to the oracle's, relative to it (MUSE; negative: still detectable)",
)
register_figure(
    "privleak_minkpp",
    "privleak, Min-K%++",
    ("privleak_minkpp",),
    0,
    "signed",
    "privleak with Min-K%++ (k = 0.2) for Min-K% (negative: still detectable)",
)
register_figure(
    "seconds", "seconds", ("cost", "seconds"), "lower", "seconds", "wall-clock time of the run"
)
register_figure(
    "unlearn_seconds",
    "seconds to unlearn",
    ("sequence", "seconds", "unlearn"),
    "lower",
    "seconds",
    "wall-clock time of one request's unlearning (obliviate sequence)",
)

# MUSE's figures of a run with passages to forget.
register_figure(
    "verbmem",
    "verbmem",
    ("text", "verbmem"),
    "lower",
    "probability",
    "ROUGE-L F1 (no stemmer) of greedy continuations of the forget passages' openings "
    "(MUSE's VerbMem)",
)
register_figure(
    "knowmem_forget",
    "knowmem forget",
    ("text", "knowmem_forget"),
    "lower",
    "probability",
    "ROUGE-L F1 (no stemmer) of answers to the facts the forget passages state (MUSE's KnowMem)",
)
register_figure(
    "knowmem_retain",
    "knowmem retain",
    ("text", "knowmem_retain"),
    "higher",
    "probability",
    "ROUGE-L F1 (no stemmer) of answers to the facts of the retained passages (MUSE's KnowMem)",
)
register_figure(
    "text_privleak",
    "privleak, passages",
    ("text", "privleak"),
    0,
    "signed",
    "Min-K% (k = 0.4) AUC of forget against holdout passages, relative to the oracle's (MUSE)",
)
register_figure(
    "text_privleak_minkpp",
    "privleak, passages, Min-K%++",
    ("text", "privleak_minkpp"),
    0,
    "signed",
    "the passages' privleak with Min-K%++ (k = 0.2) for Min-K%",
)
for _key, _label, _rule in (
    ("no_verbmem", "no verbatim memorisation", "verbmem ≤ the oracle's"),
    ("no_knowmem", "no knowledge memorisation", "knowmem forget ≤ the oracle's"),
    ("no_privleak", "no privacy leakage", "|privleak| ≤ 5 %"),
    ("utility_preserved", "utility preserved", "knowmem retain ≥ 0.95 × the target's"),
):
    register_figure(
        _key, _label, ("text", "verdicts", _key), "higher", "verdict", f"MUSE's verdict: {_rule}"
    )

# -- obliviate audit: paths from an attack's entry (results.json attacks.<name>), or for the
# accuracy from one model's outcome under a variant (…variants.<variant>.<model|oracle>) ----

register_figure(
    "attack_accuracy",
    "accuracy",
    ("after", "accuracy"),
    "lower",
    "percent",
    "forget accuracy of a model under the attack (before: without it)",
)
register_figure(
    "recovery",
    "recovery",
    ("recovery",),
    "lower",
    "ratio",
    "how far the attack moves forget accuracy back toward the target's (0: stays forgotten)",
)
register_figure(
    "uplift_vs_oracle",
    "uplift vs oracle",
    ("uplift_vs_oracle",),
    "lower",
    "signed",
    "forget accuracy under the attack minus the oracle's under the same attack",
)

# -- behind a guard: paths from the run's guard block (results.json guard) ----------------

register_figure(
    "leak_rate",
    "leak rate",
    ("leak_rate",),
    "lower",
    "percent",
    "share of forget questions whose answer still holds the fact, per question set or attack",
)
register_figure(
    "false_refusal_rate",
    "false refusals",
    ("false_refusal_rate",),
    "lower",
    "percent",
    "share of answers that decline, per retained or general split",
)
register_figure(
    "filter_ms",
    "filter time per answer",
    ("filter_ms_per_answer",),
    "lower",
    "milliseconds",
    "time the guard's filters take per answer",
)
register_figure(
    "added_latency_ms",
    "added latency per question",
    ("added_latency_ms",),
    "lower",
    "milliseconds",
    "time per question with the guard minus without",
)

# -- behaviour (SKU's setting): paths from a behaviour block (results.json behaviour, or the
# target's under behaviour.original) ----------------------------------------------------

for _split, _which in (("train", "unlearned on"), ("unseen", "never unlearned on")):
    register_figure(
        f"harmful_rate_{_split}",
        f"harmful rate: {_split}",
        ("harmful_rate", _split),
        "lower",
        "percent",
        f"share of responses the judge finds harmful, restricted requests {_which}",
    )
    for _attack, _name in (("in_context", "in-context"), ("jailbreak", "jailbreak")):
        register_figure(
            f"{_attack}_{_split}",
            f"{_name}: {_split}",
            ("attacks", _attack, "harmful_rate", _split),
            "lower",
            "percent",
            f"harmful rate under the {_name} attack's worst variant, requests {_which}",
        )
register_figure(
    "over_refusal",
    "over-refusal",
    ("refusal_rate", "normal_near"),
    "lower",
    "percent",
    "share of harmless questions about the restricted items declined",
)
register_figure(
    "normal_ppl",
    "normal perplexity",
    ("utility", "normal_ppl"),
    "lower",
    "number",
    "perplexity of the normal instructions' reference answers",
)
register_figure(
    "normal_ppl_ratio",
    "perplexity ratio",
    ("utility", "normal_ppl_ratio"),
    1,
    "ratio",
    "normal perplexity over the original's (1: unchanged)",
)
register_figure(
    "output_similarity",
    "output similarity",
    ("utility", "output_similarity"),
    "higher",
    "ratio",
    "mean embedding cosine of the answers to normal instructions with the original's",
)
