"""The report's summary as GitHub Markdown, for pasting into a pull request."""

from __future__ import annotations

from obliviate.evaluation.figures import MISSING, figure, format_value, heading, show
from obliviate.report.behaviour import has_behaviour, markdown_section
from obliviate.report.load import Guard, ReportModel, Verdict
from obliviate.report.sequence import has_sequence
from obliviate.report.sequence import markdown_section as sequence_section
from obliviate.report.summary import (
    TEXT_COLUMNS,
    TEXT_RULES,
    TEXT_VERDICTS,
    VERDICT_CAPTION,
    VERDICT_HEADINGS,
    VERDICT_WORDS,
    aim_figures,
    aim_met,
    columns,
    has_text,
    mia_note,
    summary_rows,
    text_rows,
    verdict,
    verdict_rows,
    worst_case,
)
from obliviate.report.tune import has_tune
from obliviate.report.tune import markdown_section as tune_section

#: The aim verdict's words, by ``aim_met``'s answer.
AIM_MARKS = {True: "✓ met", False: "✗ missed", None: "not judged"}


def render(models: list[ReportModel]) -> str:
    """Each run's verdict first, then the summary table and one line per run (forget
    quality and utility vs its target) for the evaluated models, MUSE's text figures of
    those evaluated on passages, each tune and sequence run's tables, the behaviour figures
    of those evaluated on a behaviour benchmark, then each audited run's attacks, then each
    guarded run."""
    evaluated = [m for m in models if m.evaluated]
    judged = [(m.name, m.verdict) for m in models if m.verdict is not None]
    sections = [_verdicts(judged)] if judged else []
    sections += [_summary(evaluated)] if evaluated else []
    with_text = [m for m in models if has_text(m)]
    sections += [_text(with_text)] if with_text else []
    sections += [tune_section(models)] if any(has_tune(m) for m in models) else []
    sections += [sequence_section(models)] if any(has_sequence(m) for m in models) else []
    sections += [markdown_section(models)] if any(has_behaviour(m) for m in models) else []
    sections += [_attacks(run) for run in models if run.attacks]
    sections += [_guard(run.name, run.guard) for run in models if run.guard is not None]
    return "\n\n".join(["## Unlearning report", *("\n".join(s) for s in sections)]) + "\n"


def _verdicts(runs: list[tuple[str, Verdict]]) -> list[str]:
    """Per run its verdict's line and outcome, then the table of its checks."""
    lines = ["### Verdict", ""]
    for name, judged in runs:
        against = f", against the {judged.against}" if judged.against else ""
        lines += [
            f"**{name}: {judged.line}** ({VERDICT_WORDS[judged.passed]}{against})",
            "",
            _line(list(VERDICT_HEADINGS)),
            "|---|---|---:|---|---:|---:|:---:|",
            *(_line(row) for row in verdict_rows(judged)),
            "",
        ]
    return [*lines, VERDICT_CAPTION]


def _summary(models: list[ReportModel]) -> list[str]:
    shown = columns(models)
    headings = ["model", "method"] + [heading(c) for c in shown]
    lines = [_line(headings), "|" + "|".join(["---"] * 2 + ["---:"] * len(shown)) + "|"]
    for model, row in zip(models, summary_rows(models), strict=True):
        name = row[0] if model.role == "run" else f"*{row[0]}*"
        lines.append(_line([name, *row[1:]]))
    lines.append("")
    lines += [f"- {verdict(model)}" for model in models if model.role == "run"]
    return lines + [
        f"- {model.name}: membership inference not applicable: {mia_note(model)}"
        for model in models
        if model.role == "run" and mia_note(model)
    ]


def _text(models: list[ReportModel]) -> list[str]:
    """MUSE's four figures and verdicts, one row per model, and the verdicts' rules."""
    headings = ["model"] + [heading(c) for c in TEXT_COLUMNS + TEXT_VERDICTS]
    align = ["---"] + ["---:"] * len(TEXT_COLUMNS) + [":---:"] * len(TEXT_VERDICTS)
    lines = ["### Text (MUSE)", "", _line(headings), "|" + "|".join(align) + "|"]
    for model, (name, *cells) in zip(models, text_rows(models), strict=True):
        lines.append(_line([name if model.role == "run" else f"*{name}*", *cells]))
    return [*lines, "", TEXT_RULES]


def _attacks(run: ReportModel) -> list[str]:
    """Each attack at its worst variant, and the audit's worst case."""
    recovery, uplift = figure("recovery").label, figure("uplift_vs_oracle").label
    headings = ["attack", "worst variant", f"model {recovery}", f"oracle {recovery}", uplift]
    lines = [f"### Attacks on {run.name}", "", _line(headings), "|---|---|---:|---:|---:|"]
    for attack in run.attacks:
        cells = [
            attack.name,
            attack.worst_variant or (f"skipped: {attack.skipped}" if attack.skipped else MISSING),
            show("recovery", attack.recovery),
            show("recovery", attack.oracle_recovery),
            show("uplift_vs_oracle", attack.uplift),
        ]
        lines.append(_line(cells))
    case = worst_case(run)
    return [*lines, "", f"- {run.name} worst case: {case or MISSING}"]


def _guard(name: str, guard: Guard) -> list[str]:
    """The worst and the plain leak rate, false refusals per split, latency and the aim."""
    worst_key, worst_rate = guard.worst_leak or (None, None)
    leak, refusals, latency = (
        figure(key) for key in ("leak_rate", "false_refusal_rate", "added_latency_ms")
    )
    worst = f"worst {leak.label}" + (f" ({worst_key})" if worst_key is not None else "")
    rows = [
        [worst, format_value(leak, worst_rate)],
        [f"plain {leak.label}", format_value(leak, guard.leak_rate.get("plain"))],
        *(
            [f"{refusals.label}: {split}", format_value(refusals, rate)]
            for split, rate in guard.false_refusal_rate.items()
        ),
        [latency.label, format_value(latency, guard.added_latency_ms)],
    ]
    components = "+".join(guard.components) or MISSING
    return [
        f"### Guard on {name} ({components})",
        "",
        _line(["figure", "value"]),
        "|---|---:|",
        *(_line(row) for row in rows),
        "",
        f"- {name} aim (leak ≤ 2 % under every attack, in-context included; neighbors false "
        f"refusals ≤ 5 %): {AIM_MARKS[aim_met(guard)]}: {aim_figures(guard)}",
    ]


def _line(cells: list[str]) -> str:
    """A table row; a pipe or a line break in a name would break the table."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
