"""The report's section for an ``obliviate tune`` run: the Pareto front and the trials.

A tune run's results.json carries ``tune``: every trial's recipe and figures on the
validation request, the Pareto front of forget score against utility, the utility floor
and the chosen trial. This module draws the front (each trial a point, coloured by
method; hollow below the floor) and lays out the trials table, for ``html`` and
``markdown`` alike.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from obliviate.evaluation.figures import MISSING, format_value
from obliviate.report.load import ReportModel, mapping, number
from obliviate.report.plots import ROLE_STYLE, RUN_COLORS, Plot, _new_figure, _png

HEADINGS = (
    "trial", "method", "lr", "length", "hyper-parameters", "forget", "utility",
    "× start", "feasible", "front",
)  # fmt: skip


def has_tune(model: ReportModel) -> bool:
    """Whether the run is an ``obliviate tune`` run."""
    return isinstance(model.results.get("tune"), dict)


def _score_label(tune: dict[str, Any]) -> tuple[str, str]:
    """(the forget objective's name, its number style)."""
    if mapping(tune.get("objectives")).get("forget") == "forget_quality":
        return "forget quality", "pvalue"
    return "forgetting", "ratio"


def _trials(tune: dict[str, Any]) -> list[dict[str, Any]]:
    rows = tune.get("trials")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _length(recipe: dict[str, Any]) -> str:
    if number(recipe.get("max_steps")) is not None:
        return f"{recipe['max_steps']:g} steps"
    if number(recipe.get("epochs")) is not None:
        return f"{recipe['epochs']:g} epochs"
    return MISSING


def _params(recipe: dict[str, Any]) -> str:
    params = mapping(recipe.get("method_params"))
    shown = [f"{k}={v:.3g}" if number(v) is not None else f"{k}={v}" for k, v in params.items()]
    if recipe.get("lora"):
        shown.append(f"lora r={recipe.get('lora_rank')}")
    if recipe.get("localize"):
        shown.append(f"localize {recipe['localize']}")
    return ", ".join(shown) or MISSING


def table_rows(tune: dict[str, Any]) -> list[list[str]]:
    """One row of text cells per trial, in ``HEADINGS``' order."""
    _, style = _score_label(tune)
    chosen = tune.get("chosen")
    front = set(tune.get("pareto_front") or [])
    rows = []
    for row in _trials(tune):
        recipe = mapping(row.get("recipe"))
        figures = mapping(row.get("figures"))
        number_text = f"{row.get('number')}" + (" (chosen)" if row.get("number") == chosen else "")
        failed = row.get("state") != "complete"
        rows.append(
            [
                number_text,
                str(recipe.get("method", MISSING)),
                f"{recipe['lr']:.3g}" if number(recipe.get("lr")) is not None else MISSING,
                _length(recipe),
                _params(recipe),
                "failed" if failed else format_value(style, number(row.get("forget_score"))),
                MISSING if failed else format_value("probability", number(row.get("utility"))),
                MISSING if failed else format_value("ratio", number(figures.get("utility_ratio"))),
                "✓" if row.get("feasible") else "✗",
                "●" if row.get("number") in front else "",
            ]
        )
    return rows


def summary_lines(tune: dict[str, Any]) -> list[str]:
    """What was tuned on, the floor, and the chosen trial, as sentences."""
    label, style = _score_label(tune)
    validation = mapping(tune.get("validation"))
    start = mapping(tune.get("start"))
    trials = _trials(tune)
    complete = [t for t in trials if t.get("state") == "complete"]
    feasible = [t for t in complete if t.get("feasible")]
    if tune.get("scenario") == "bench":
        people = validation.get("people") or []
        where = (
            f"Tuned on the validation request {validation.get('name')} ({len(people)} people "
            f"of the benchmark, none of them in {validation.get('split')}"
            + (" or among its neighbours" if validation.get("clear_of_neighbours") else "")
            + "), against its own oracle (the target's fine-tune without them)."
        )
    else:
        where = (
            f"Tuned on {validation.get('records_tuned_on')} of the forget file's records "
            f"(share {validation.get('held_out_share')}); the other "
            f"{validation.get('records_never_seen')} were never read. Scored without an oracle: "
            "forgetting = 1 − ½ (accuracy / starting accuracy + probability / starting "
            "probability) of the forget answers."
        )
    floor = (
        f"Utility floor: {format_value('probability', number(tune.get('utility_bound')))} "
        f"({tune.get('utility_floor')} × the starting model's "
        f"{format_value('probability', number(start.get('utility')))}). "
        f"{len(trials)} trials, {len(complete)} finished, {len(feasible)} above the floor."
    )
    chosen = next((t for t in trials if t.get("number") == tune.get("chosen")), None)
    if chosen is None:
        choice = "No trial was chosen."
    else:
        choice = (
            f"Chosen: trial {chosen['number']} ({mapping(chosen.get('recipe')).get('method')}), "
            f"{label} {format_value(style, number(chosen.get('forget_score')))} at utility "
            f"{format_value('probability', number(chosen.get('utility')))}: "
            f"{tune.get('chosen_reason')}. Its recipe is recipe.yaml "
            "(obliviate unlearn --config recipe.yaml)."
        )
    return [where, floor, choice]


def tune_plot(tune: dict[str, Any]) -> Plot | None:
    """Forget score against utility: every finished trial, the front, the floor."""
    label, style = _score_label(tune)
    complete = [
        t
        for t in _trials(tune)
        if t.get("state") == "complete"
        and number(t.get("utility")) is not None
        and number(t.get("forget_score")) is not None
    ]
    if not complete:
        return None
    log = style == "pvalue"
    tiny = np.finfo(float).tiny

    def y_of(value: float) -> float:
        return max(value, tiny) if log else value

    figure = _new_figure(figsize=(7.5, 4.8))
    axes = figure.add_subplot()
    methods = list(dict.fromkeys(str(mapping(t.get("recipe")).get("method")) for t in complete))
    colors = {m: RUN_COLORS[i % len(RUN_COLORS)] for i, m in enumerate(methods)}
    for method in methods:
        mine = [t for t in complete if mapping(t.get("recipe")).get("method") == method]
        for feasible in (True, False):
            group = [t for t in mine if bool(t.get("feasible")) == feasible]
            if not group:
                continue
            axes.scatter(
                [t["utility"] for t in group],
                [y_of(t["forget_score"]) for t in group],
                s=55,
                facecolors=colors[method] if feasible else "none",
                edgecolors=colors[method],
                label=method if feasible or not any(t.get("feasible") for t in mine) else None,
                zorder=3,
            )
    front = sorted(
        (t for t in complete if t.get("number") in set(tune.get("pareto_front") or [])),
        key=lambda t: t["utility"],
    )
    if len(front) > 1:
        axes.plot(
            [t["utility"] for t in front],
            [y_of(t["forget_score"]) for t in front],
            "--",
            color="#444444",
            lw=1,
            zorder=2,
            label="Pareto front",
        )
    chosen = next((t for t in complete if t.get("number") == tune.get("chosen")), None)
    if chosen is not None:
        axes.scatter(
            chosen["utility"], y_of(chosen["forget_score"]), s=260, facecolors="none",
            edgecolors="black", linewidths=1.5, zorder=4, label="chosen",
        )  # fmt: skip
    start = mapping(tune.get("start"))
    start_score = number(start.get("forget_quality")) if log else 0.0
    if number(start.get("utility")) is not None and start_score is not None:
        color, marker = ROLE_STYLE["target"]
        axes.scatter(
            start["utility"], y_of(start_score), s=70, color=color, marker=marker,
            edgecolor="black", zorder=3, label="starting model",
        )  # fmt: skip
    oracle = mapping(tune.get("oracle"))
    if log and number(oracle.get("utility")) is not None:
        color, marker = ROLE_STYLE["oracle"]
        axes.scatter(
            oracle["utility"], y_of(number(oracle.get("forget_quality")) or 1.0), s=160,
            color=color, marker=marker, edgecolor="black", zorder=3, label="validation oracle",
        )  # fmt: skip
    bound = number(tune.get("utility_bound"))
    if bound is not None:
        axes.axvline(bound, color="#cf222e", lw=1, ls=":", label="utility floor")
    if log:
        axes.set_yscale("log")
    axes.set_xlabel("model utility →")
    axes.set_ylabel(f"{label}{' (log)' if log else ''} →")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    caption = (
        f"Each finished trial is a point (hollow: below the utility floor, the dotted line); "
        f"the dashed line joins the trials no other beats on both {label} and utility (the "
        "Pareto front); the ringed point is the chosen recipe. All on the validation request, "
        "never the request the recipe is for."
    )
    return Plot("Tuning: forgetting against utility", _png(figure), caption)


def html_section(models: list[ReportModel]) -> str:
    """``<section>`` per tune run: the summary, the plot, the trials."""
    import base64

    parts = []
    for model in (m for m in models if has_tune(m)):
        tune = model.results["tune"]
        body = [f"<p>{escape(line)}</p>" for line in summary_lines(tune)]
        plot = tune_plot(tune)
        if plot is not None:
            data = base64.b64encode(plot.png).decode("ascii")
            body.append(
                f'<figure><img alt="{escape(plot.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{escape(plot.caption)}</figcaption></figure>"
            )
        else:
            body.append('<p class="empty">No trial finished: nothing to plot.</p>')
        head = "".join(f"<th>{escape(h)}</th>" for h in HEADINGS)
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells[:2])
            + "".join(f'<td class="num">{escape(c)}</td>' for c in cells[2:4])
            + f"<td>{escape(cells[4])}</td>"
            + "".join(f'<td class="num">{escape(c)}</td>' for c in cells[5:])
            + "</tr>\n"
            for cells in table_rows(tune)
        )  # fmt: skip
        body.append(
            f'<div class="scroll"><table class="trials">\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{rows}</tbody>\n</table></div>"
        )
        title = f"Tuning: {model.name}"
        parts.append(f"<section>\n<h2>{escape(title)}</h2>\n{chr(10).join(body)}\n</section>")
    return "\n".join(parts)


def markdown_section(models: list[ReportModel]) -> list[str]:
    """The summary and the trials table of each tune run, as Markdown lines."""
    lines: list[str] = []
    for model in (m for m in models if has_tune(m)):
        tune = model.results["tune"]
        lines += [f"### Tuning: {model.name}", ""]
        lines += [*summary_lines(tune), ""]
        lines.append("| " + " | ".join(HEADINGS) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * 2 + ["---"] + ["---:"] * 5) + "|")
        for cells in table_rows(tune):
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return lines
