"""The tables and the plot of ``obliviate sequence`` (requests unlearned one after another).

They read a sequence's summary (``RUN/results.json``, see ``workflows/sequence.py``): per
step the headline figures of the model, its oracle and the target, keyed as the figures
of the registry (``evaluation/figures.py``), whose labels, arrows and formats they show.
``summary.md`` and the command line show them, and so does the report (``html_section``,
``markdown_section``) for a sequence run given to ``obliviate report``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from html import escape
from typing import Any

from obliviate.evaluation.figures import (
    FIGURES,
    MISSING,
    figure,
    format_value,
    heading,
    lookup,
    show,
)
from obliviate.report.load import ReportModel, is_sequence
from obliviate.report.plots import Plot

#: The step table's rows: where the figure is (the model's ``figures`` or its ``oracle``'s),
#: its key there, and the figure it is (the headline's passages-or-answers privleak is
#: ``text_privleak`` in the text scenario).
STEP_ROWS: tuple[tuple[str, str, str], ...] = (
    ("figures", "forget_accuracy", "forget_accuracy"),
    ("figures", "knowmem_forget", "knowmem_forget"),
    ("oracle", "knowmem_forget", "knowmem_forget"),
    ("figures", "knowmem_retain", "knowmem_retain"),
    ("figures", "model_utility_neighbors", "model_utility_neighbors"),
    ("figures", "forget_quality", "forget_quality"),
)
#: Rows of the text scenario: MUSE's figures…
TEXT_STEP_ROWS: tuple[tuple[str, str, str], ...] = (
    ("figures", "verbmem", "verbmem"),
    ("oracle", "verbmem", "verbmem"),
    ("figures", "privleak", "text_privleak"),
)
ANSWER_STEP_ROWS: tuple[tuple[str, str, str], ...] = (("figures", "privleak", "privleak"),)
#: …and its verdicts (under the headline's ``verdicts``).
VERDICT_ROWS = ("no_verbmem", "no_knowmem", "no_privleak", "utility_preserved")


def step_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One column for the target (before any request), then one per step; one row per
    figure (the oracle's on rows that say so), with each step's requests still forgotten."""
    text = bool(summary.get("text"))
    steps = summary["steps"]
    target = steps[0]["target"] if steps and steps[0]["target"] else None
    columns: list[dict[str, Any] | None] = [
        {"figures": target, "oracle": None} if target else None,
        *steps,
    ]
    header = ["figure", "target", *(f"{s['step']}: {s['request']}" for s in steps)]
    rows = [["people removed", "0", *(str(s["people_removed"]) for s in steps)]]
    for source, key, name in STEP_ROWS + (TEXT_STEP_ROWS if text else ANSWER_STEP_ROWS):
        fig = figure(name)
        label = heading(fig) if source == "figures" else f"{fig.label}, {source}"
        rows.append([label, *(format_value(fig, lookup(c, (source, key))) for c in columns)])
    if text:
        for key in VERDICT_ROWS:
            fig = figure(key)
            values = [lookup(c, ("figures", "verdicts", key)) for c in columns]
            rows.append([heading(fig), *(format_value(fig, v) for v in values)])
    held = [sum(bool(f["no_knowmem"]) for f in s["slices"].values()) for s in steps]
    rows.append(
        ["requests forgotten (knowmem ≤ oracle)", MISSING]
        + [f"{n}/{len(s['slices'])}" for n, s in zip(held, steps, strict=True)]
    )
    seconds = figure("unlearn_seconds")
    rows.append(
        [
            heading(seconds),
            MISSING,
            *(format_value(seconds, s["seconds"].get("unlearn")) for s in steps),
        ]
    )
    return header, rows


def slice_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per request, one column per step: the slice's KnowMem beside the oracle's
    (``≤``: as forgotten as the oracle makes it; ``>``: still known)."""
    steps = summary["steps"]
    header = ["request (its people)", *(f"after step {s['step']}" for s in steps)]
    rows = []
    for request in summary["requests"]:
        name = f"request-{request['step']}"
        row = [f"{request['step']}: {request['split']} ({len(request['people'])})"]
        for step in steps:
            figures = step["slices"].get(name)
            if figures is None:
                row.append("")
                continue
            mine, theirs = figures["knowmem"], figures["oracle"]["knowmem"]
            mark = {True: "≤", False: ">", None: "vs"}[figures["no_knowmem"]]
            row.append(f"{show('knowmem_forget', mine)} {mark} {show('knowmem_forget', theirs)}")
        rows.append(row)
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


#: What the slice table shows, said before it.
SLICE_LEAD = "KnowMem of each request's people after each step, model ≤ or > that step's oracle:"


def has_sequence(model: ReportModel) -> bool:
    """Whether the run is an ``obliviate sequence`` run (its summary, not one step)."""
    return is_sequence(model.results)


def title(summary: dict[str, Any]) -> str:
    return (
        f"{summary.get('method')}: {len(summary['steps'])} requests in sequence "
        f"({'passages' if summary.get('text') else 'facts'})"
    )


def intro(summary: dict[str, Any], quote: Callable[[str], str]) -> str:
    """The target and benchmark (each through ``quote``) and what each step is against."""
    return (
        f"Target {quote(str(summary.get('model')))}, benchmark {quote(str(summary.get('bench')))}; "
        "after each step the model is compared with the oracle retrained without everyone "
        "removed so far."
    )


def _backticks(text: str) -> str:
    return f"`{text}`"


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def outcome_lines(summary: dict[str, Any]) -> list[str]:
    """Whether each request stays forgotten and, on passages, MUSE's verdicts held."""
    stays = ", ".join(
        f"{k}: {format_value('verdict', v)}" for k, v in summary["stays_forgotten"].items()
    )
    lines = [
        f"Stays forgotten (KnowMem ≤ the oracle's at its own step and every later one): {stays}."
    ]
    if summary.get("verdicts_hold"):
        held = ", ".join(
            f"{figure(k).label if k in FIGURES else k}: {format_value('verdict', v)}"
            for k, v in summary["verdicts_hold"].items()
        )
        lines.append(f"MUSE's verdicts true after every step: {held}.")
    return lines


def summary_markdown(summary: dict[str, Any]) -> str:
    """RUN/summary.md: the step table and the slice table, with how to read them."""
    parts = [
        f"# {title(summary)}",
        intro(summary, _backticks),
        markdown_table(*step_table(summary)),
        SLICE_LEAD,
        markdown_table(*slice_table(summary)),
        *outcome_lines(summary),
    ]
    return "\n\n".join(parts) + "\n"


def _html_table(header: list[str], rows: list[list[str]], css: str) -> str:
    """The first column names the row; the others are figures, right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f'<td class="num">{escape(c)}</td>' for c in cells)
        + "</tr>\n"
        for name, *cells in rows
    )
    return (
        f'<div class="scroll"><table class="{css}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}</tbody>\n</table></div>"
    )


def html_section(models: list[ReportModel]) -> str:
    """``<section>`` per sequence run: the plot, the step table, the slice table, and
    where each step's own run directory (with its report) is."""
    parts = []
    for model in (m for m in models if has_sequence(m)):
        summary = model.results
        plot = sequence_plot(summary)
        data = base64.b64encode(plot.png).decode("ascii")
        runs = ", ".join(
            f"step {escape(str(s.get('step')))} <code>{escape(str(s.get('run')))}</code>"
            for s in summary["steps"]
        )
        body = [
            f"<p><b>{escape(title(summary))}.</b> {intro(summary, _code)}</p>",
            f'<figure><img alt="{escape(plot.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(plot.caption)}</figcaption></figure>",
            _html_table(*step_table(summary), "steps"),
            f"<p>{escape(SLICE_LEAD)}</p>",
            _html_table(*slice_table(summary), "slices"),
            *(f"<p>{escape(line)}</p>" for line in outcome_lines(summary)),
            f'<p class="caption">Each step is a run directory of its own, with its report: '
            f"{runs}.</p>",
        ]
        heading_text = f"Requests in sequence: {model.name}"
        parts.append(
            f"<section>\n<h2>{escape(heading_text)}</h2>\n{chr(10).join(body)}\n</section>"
        )
    return "\n".join(parts)


def markdown_section(models: list[ReportModel]) -> list[str]:
    """The step table and the slice table of each sequence run, as Markdown lines."""
    lines: list[str] = []
    for model in (m for m in models if has_sequence(m)):
        summary = model.results
        lines += [f"### Requests in sequence: {model.name}", ""]
        lines += [f"**{title(summary)}.** {intro(summary, _backticks)}", ""]
        lines += [markdown_table(*step_table(summary)), "", SLICE_LEAD, ""]
        lines += [markdown_table(*slice_table(summary)), ""]
        lines += [*outcome_lines(summary), ""]
    return lines


def sequence_plot(summary: dict[str, Any]) -> Plot:
    """PNG: the headline figures against the step (the target at step 0), the oracle's
    dotted, each request's own KnowMem thin; PrivLeak in a panel of its own."""
    from obliviate.report.growth import Panel, Series, growth_plot

    steps = summary["steps"]
    target = steps[0]["target"] if steps and steps[0]["target"] else None
    positions = ["0\ntarget"] + [f"{s['step']}\n{s['request']}" for s in steps]

    def line(source: str, key: str) -> list[float | None]:
        first = target.get(key) if target is not None and source == "figures" else None
        return [first] + [(s[source] or {}).get(key) for s in steps]

    keys = ["knowmem_forget", "knowmem_retain"]
    if summary.get("text"):
        keys.insert(0, "verbmem")
    keys.append("model_utility_neighbors")
    series = []
    for color, key in enumerate(keys):
        label = figure(key).label
        series.append(Series(label, line("figures", key), color))
        if key in ("verbmem", "knowmem_forget"):
            series.append(Series(f"{label} (oracle)", line("oracle", key), color, "oracle"))
    for offset, request in enumerate(summary["requests"]):
        name = f"request-{request['step']}"
        values = [None] + [(s["slices"].get(name) or {}).get("knowmem") for s in steps]
        series.append(Series(f"knowmem {name} ({request['split']})", values, 4 + offset, "part"))
    privleak = figure("text_privleak" if summary.get("text") else "privleak")
    leak = [Series(privleak.label, line("figures", "privleak"), 0)]
    panels = [
        Panel("figure", series),
        Panel(
            heading(privleak),
            leak,
            ylim=(-1.05, 1.05),
            band=(-0.05, 0.05),
            band_label="within ±5 %",
        ),
    ]
    caption = (
        "Each figure after each request (step 0 is the target before any): the model's solid, "
        "the step's oracle dotted; thin lines are each request's own people."
    )
    return growth_plot(
        positions, panels, f"{summary['method']}: requests in sequence", "step", caption
    )
