"""Read run directories into the models a report compares.

A report shows each run given plus the target (the model before unlearning) and the oracle
(retrained without the forget set) that its ``results.json`` carries under ``reference``.
Several runs usually share one target and one oracle, so references are de-duplicated by
their ``model`` field. A document needs ``splits`` (an evaluation, ``obliviate eval``),
``attacks`` (``obliviate audit``) or ``behaviour`` (``obliviate eval`` on a behaviour
benchmark, see ``report.behaviour``), ``tune`` (``obliviate tune``, see ``report.tune``)
or a sequence's ``steps`` and ``requests`` (``obliviate sequence``, see ``report.sequence``),
or several: every other figure may be missing, and the report shows it as "—". Either may
carry ``guard``: the figures of the model behind an inference-time guard, which the report
shows apart so they are not read as the bare model's, and ``verdict`` (``eval`` and
``audit`` write one since issue 28), which the report shows first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from obliviate.errors import ObliviateError

Role = Literal["target", "run", "oracle"]

#: Splits in the order the report shows them (those missing everywhere are left out).
SPLITS = ("forget", "retain", "neighbors", "holdout", "world", "real_authors", "world_facts")

#: The per-example scores the ROC curves use; the other attacks appear in the AUC table.
ROC_ATTACK = "minkpp"
ATTACKS = ("loss", "zlib", "mink", "minkpp")


@dataclass(frozen=True)
class Outcome:
    """One model's forget accuracy before and after an audit attack, and how far the attack
    moved it back toward the target (its recovery)."""

    before: float | None
    after: float | None
    recovery: float | None


@dataclass(frozen=True)
class Variant:
    """One variant of an audit attack: the unlearned model's and the oracle's outcomes, and
    the same attack on holdout people (``control``) where the attack runs one."""

    name: str
    model: Outcome
    oracle: Outcome
    uplift: float | None
    control: Variant | None = None


@dataclass(frozen=True)
class Attack:
    """One ``obliviate audit`` attack (not a membership-inference attack of ``ATTACKS``) and
    its worst variant's figures, which stand for the attack in the plot and the Markdown."""

    name: str
    description: str
    #: ``steps=16, lr=2e-05``: what the attack was run with, as the document gives it.
    settings: str
    #: Why the audit did not run the attack on these models (it has no variants then).
    skipped: str | None
    variants: tuple[Variant, ...]
    worst_variant: str | None
    recovery: float | None
    oracle_recovery: float | None
    uplift: float | None


@dataclass(frozen=True)
class Calibration:
    """A guard filter's threshold and how it was set: the lowest at which ``rate`` (at
    most ``target_rate``) of ``n`` retained calibration questions are refused."""

    threshold: float | None
    target_rate: float | None
    rate: float | None
    n: float | None


@dataclass(frozen=True)
class Guard:
    """What a run's ``guard`` part says: the guard's make-up and calibration, and the
    leak and false-refusal rates of the model behind it (``None`` or empty when missing)."""

    components: tuple[str, ...]
    #: The false-refusal rate the filters were calibrated to (``config.false_refusal_rate``).
    target_rate: float | None
    #: ``input_filter`` and/or ``output_filter``, those the guard had on.
    filters: dict[str, Calibration]
    #: The instruction put before every question, shown so a reader can judge it.
    context: str
    #: Fraction of forget questions whose answer still holds the fact, per question set
    #: (eval) or attack variant (audit).
    leak_rate: dict[str, float | None]
    #: Fraction of answers that decline, per retained or general split.
    false_refusal_rate: dict[str, float | None]
    #: How many questions or answers each filter replaced.
    filtered: dict[str, float | None]
    filter_ms: float | None
    #: Time per question with the guard minus without (audit only).
    added_latency_ms: float | None

    @property
    def worst_leak(self) -> tuple[str, float] | None:
        """The highest leak rate and its key (the first on a tie), or None without any."""
        rates = [(key, rate) for key, rate in self.leak_rate.items() if rate is not None]
        return max(rates, key=lambda item: item[1]) if rates else None


@dataclass(frozen=True)
class Check:
    """One check of a verdict: a figure against the bound its rule gives."""

    name: str
    value: float | None
    reference: float | None
    bound: float | None
    rule: str
    passed: bool | None
    note: str | None


@dataclass(frozen=True)
class Verdict:
    """What a run's ``verdict`` says: the line to read first, whether it passed, and the
    checks of its two groups (``forgotten``, ``collateral``), each group's outcome too."""

    line: str
    passed: bool | None
    against: str
    groups: dict[str, tuple[bool | None, tuple[Check, ...]]]


@dataclass(frozen=True)
class ReportModel:
    """One model's results and how the report names and marks it."""

    name: str
    role: Role
    results: dict[str, Any]
    #: The run whose ``reference`` this came from (for a run, its own name).
    source: str
    #: The audit attacks of a run's ``attacks``, in the order the document lists them.
    attacks: tuple[Attack, ...] = ()
    #: The guard the run's model was evaluated or attacked behind, if any.
    guard: Guard | None = None
    #: The run's verdict, if its results carry one.
    verdict: Verdict | None = None

    @property
    def evaluated(self) -> bool:
        """Whether this model has an evaluation (``splits``), not only an audit."""
        return isinstance(self.results.get("splits"), dict)

    def figure(self, *keys: str) -> float | None:
        """The number at ``results[k1][k2]…``, or None when missing, null or not a number."""
        value: Any = self.results
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return number(value)

    def split(self, name: str, metric: str) -> float | None:
        return self.figure("splits", name, metric)

    def examples(self, split: str) -> list[dict[str, Any]]:
        rows = mapping(self.results.get("examples")).get(split)
        return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []

    def attack_scores(self, attack: str) -> tuple[list[float], list[float]] | None:
        """Per-example (member, non-member) scores of one attack, or None without both."""
        scores = mapping(mapping(self.results.get("mia_scores")).get(attack))
        members = _finite(scores.get("forget"))
        nonmembers = _finite(scores.get("holdout"))
        if not members or not nonmembers:
            return None
        return members, nonmembers


def number(value: Any) -> float | None:
    """A finite float, or None (JSON null, strings and booleans are not figures)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (a malformed part is missing)."""
    return value if isinstance(value, dict) else {}


def read_attacks(document: dict[str, Any]) -> tuple[Attack, ...]:
    """The audit attacks of a results document; one whose entry is null or malformed is
    kept with its figures missing, so the report still lists it."""
    return tuple(
        _attack(str(name), mapping(entry))
        for name, entry in mapping(document.get("attacks")).items()
    )


def _attack(name: str, entry: dict[str, Any]) -> Attack:
    worst = entry.get("worst_variant")
    skipped = entry.get("skipped")
    return Attack(
        name=name,
        description=str(entry.get("description") or ""),
        settings=", ".join(f"{k}={v}" for k, v in mapping(entry.get("settings")).items()),
        skipped=str(skipped) if skipped else None,
        variants=tuple(
            _variant(str(variant), mapping(figures))
            for variant, figures in mapping(entry.get("variants")).items()
        ),
        worst_variant=str(worst) if worst is not None else None,
        recovery=number(entry.get("recovery")),
        oracle_recovery=number(entry.get("oracle_recovery")),
        uplift=number(entry.get("uplift_vs_oracle")),
    )


def _variant(name: str, figures: dict[str, Any]) -> Variant:
    control = figures.get("control")
    return Variant(
        name=name,
        model=_outcome(figures.get("model")),
        oracle=_outcome(figures.get("oracle")),
        uplift=number(figures.get("uplift_vs_oracle")),
        control=_variant(name, control) if isinstance(control, dict) else None,
    )


def _outcome(value: Any) -> Outcome:
    """A model's outcome; all None when the model was not attacked (no oracle given)."""
    side = mapping(value)
    return Outcome(
        before=number(mapping(side.get("before")).get("accuracy")),
        after=number(mapping(side.get("after")).get("accuracy")),
        recovery=number(side.get("recovery")),
    )


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def read_verdict(document: dict[str, Any]) -> Verdict | None:
    """The run's ``verdict``, or None when it has none (a run from before verdicts)."""
    verdict = document.get("verdict")
    if not isinstance(verdict, dict) or not verdict.get("line"):
        return None
    groups = {}
    for name in ("forgotten", "collateral"):
        group = mapping(verdict.get(name))
        checks = group.get("checks") if isinstance(group.get("checks"), list) else []
        groups[name] = (
            _flag(group.get("passed")),
            tuple(
                Check(
                    name=str(check.get("name") or ""),
                    value=number(check.get("value")),
                    reference=number(check.get("reference")),
                    bound=number(check.get("bound")),
                    rule=str(check.get("rule") or ""),
                    passed=_flag(check.get("passed")),
                    note=str(check["note"]) if check.get("note") else None,
                )
                for check in map(mapping, checks)
            ),
        )
    return Verdict(
        line=str(verdict["line"]),
        passed=_flag(verdict.get("passed")),
        against=str(verdict.get("against") or ""),
        groups=groups,
    )


def read_guard(document: dict[str, Any]) -> Guard | None:
    """The run's ``guard`` part, or None when the model ran bare (no or a null ``guard``)."""
    guard = document.get("guard")
    if not isinstance(guard, dict):
        return None
    config = mapping(guard.get("config"))
    components = config.get("components")
    filters = {
        name: _calibration(guard[name])
        for name in ("input_filter", "output_filter")
        if isinstance(guard.get(name), dict)
    }
    # The filters' own record of the target stands in when the config's is missing.
    targets = [number(config.get("false_refusal_rate"))] + [f.target_rate for f in filters.values()]
    return Guard(
        components=tuple(map(str, components)) if isinstance(components, list) else (),
        target_rate=next((t for t in targets if t is not None), None),
        filters=filters,
        context=str(guard.get("context") or ""),
        leak_rate=_figures(guard.get("leak_rate")),
        false_refusal_rate=_figures(guard.get("false_refusal_rate")),
        filtered=_figures(guard.get("filtered")),
        filter_ms=number(guard.get("filter_ms_per_answer")),
        added_latency_ms=number(guard.get("added_latency_ms")),
    )


def _calibration(entry: dict[str, Any]) -> Calibration:
    calibration = mapping(entry.get("calibration"))
    return Calibration(
        threshold=number(entry.get("threshold")),
        target_rate=number(calibration.get("target_rate")),
        rate=number(calibration.get("rate")),
        n=number(calibration.get("n")),
    )


def _figures(value: Any) -> dict[str, float | None]:
    """A JSON object of figures by name, each a number or None (null or malformed)."""
    return {str(key): number(figure) for key, figure in mapping(value).items()}


def _finite(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [v for v in (number(x) for x in values) if v is not None]


def read_results(run: Path) -> dict[str, Any]:
    """``RUN/results.json`` as a dict, or an ObliviateError that says how to get a valid one."""
    path = Path(run) / "results.json"
    if not path.is_file():
        raise ObliviateError(
            f"{path} not found; pass run directories that `obliviate eval`, `audit`, `demo`, "
            "`tune` or `sequence` wrote"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ObliviateError(
            f"{path} is not valid JSON ({error}); re-run `obliviate eval` to rewrite it"
        ) from error
    if not isinstance(document, dict) or not (
        any(
            isinstance(document.get(key), dict)
            for key in ("splits", "attacks", "behaviour", "tune")
        )
        or is_sequence(document)
    ):
        raise ObliviateError(
            f"{path} has no 'splits' or 'attacks' (nor 'behaviour', 'tune' or a sequence's "
            "'steps'), so it is not the results of `obliviate eval`, `audit`, `tune` or "
            "`sequence`; run `obliviate eval` or `obliviate audit` on the model and pass that "
            "run directory"
        )
    return document


def is_sequence(document: dict[str, Any]) -> bool:
    """Whether ``document`` is an ``obliviate sequence`` summary (``summarise`` in
    ``workflows/sequence.py``): a list of steps, the requests, and which stay forgotten."""
    steps, requests = document.get("steps"), document.get("requests")
    return (
        isinstance(steps, list)
        and bool(steps)
        and all(isinstance(step, dict) for step in steps)
        and isinstance(requests, list)
        and all(isinstance(request, dict) for request in requests)
        and isinstance(document.get("stays_forgotten"), dict)
    )


def run_name(run: Path) -> str:
    """The run directory's name; a run's staging directory ``.NAME.partial`` is named NAME."""
    name = Path(run).resolve().name
    if name.startswith(".") and name.endswith(".partial"):
        return name[1 : -len(".partial")]
    return name


def load_models(runs: list[Path]) -> list[ReportModel]:
    """The target(s), then the runs in the order given, then the oracle(s)."""
    if not runs:
        raise ObliviateError("no run directories given; pass at least one RUN with results.json")
    names = _unique_names([Path(run) for run in runs])
    documents = [read_results(Path(run)) for run in runs]
    loaded = [
        ReportModel(
            name,
            "run",
            document,
            name,
            read_attacks(document),
            read_guard(document),
            read_verdict(document),
        )
        for name, document in zip(names, documents, strict=True)
    ]
    seen = {str(document.get("model")) for document in documents if document.get("model")}
    references: dict[Role, list[ReportModel]] = {"target": [], "oracle": []}
    for run in loaded:
        for role, models in references.items():
            reference = mapping(run.results.get("reference")).get(role)
            if not isinstance(reference, dict) or not isinstance(reference.get("splits"), dict):
                continue
            # A reference without a model spec cannot be matched: keep it, under its run.
            key = str(reference.get("model") or f"{run.name}/{role}")
            if key not in seen:
                seen.add(key)
                models.append(ReportModel(role, role, reference, run.name))
    return [
        *_label_sources(references["target"], names),
        *loaded,
        *_label_sources(references["oracle"], names),
    ]


def _label_sources(models: list[ReportModel], run_names: list[str]) -> list[ReportModel]:
    """Several distinct targets (or oracles), or one named like a run, are told apart by
    the run that brought them."""
    if len(models) == 1 and models[0].name not in run_names:
        return models
    return [ReportModel(f"{m.role} ({m.source})", m.role, m.results, m.source) for m in models]


def _unique_names(runs: list[Path]) -> list[str]:
    """Directory names; two runs of one name are told apart by their parent directories."""
    names = [run_name(run) for run in runs]
    names = [
        f"{Path(run).resolve().parent.name}/{name}" if names.count(name) > 1 else name
        for run, name in zip(runs, names, strict=True)
    ]
    return [
        name if name not in names[:index] else f"{name} #{index + 1}"
        for index, name in enumerate(names)
    ]
