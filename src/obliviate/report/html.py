"""The report as one self-contained HTML page: inline CSS, plots as data URLs, no script.

Everything that comes from a results.json (names, questions, answers, model specs) is
user data and goes through ``html.escape`` on its way into the page.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from obliviate.evaluation.figures import MISSING, cell, figure, format_value, heading, show
from obliviate.report.behaviour import has_behaviour, html_section
from obliviate.report.load import ATTACKS, Attack, Guard, Outcome, ReportModel, Variant
from obliviate.report.plots import Plot, attack_plot, roc_plot, split_bars, tradeoff_plot
from obliviate.report.sequence import has_sequence
from obliviate.report.sequence import html_section as sequence_section
from obliviate.report.summary import (
    AIM,
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
    verdict_rows,
    worst_case,
)
from obliviate.report.tune import has_tune
from obliviate.report.tune import html_section as tune_section

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d1d1f; background: #fafafa; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
.meta { color: #555; margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
th { background: #f0f0f3; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { background: #f7f7f7; font-style: italic; }
tr.worst td { background: #fff4e5; }
tr td.attack { background: #fff; font-style: normal; }
code { font: 12.5px ui-monospace, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.side { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.side > figure { flex: 0 1 560px; }
.side > div { flex: 1 1 320px; }
table.examples td { max-width: 260px; overflow-wrap: anywhere; }
.ok { color: #1a7f37; font-weight: 700; }
.bad { color: #cf222e; font-weight: 700; }
figure { margin: 8px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, p.caption { color: #555; font-size: 13.5px; margin-top: 6px; max-width: 900px; }
p.empty { color: #777; font-style: italic; }
details pre { white-space: pre-wrap; font-size: 12.5px; background: #f7f7f7; padding: 8px; }
.banner { padding: 10px 14px; margin: 14px 0 6px; border-radius: 6px; font-size: 16px;
          font-weight: 600; border: 1px solid; }
.banner.passed { background: #dafbe1; border-color: #1a7f37; }
.banner.failed { background: #ffebe9; border-color: #cf222e; }
.banner.unjudged { background: #fff8c5; border-color: #9a6700; }
.banner small { font-weight: 400; color: #555; }
"""


def render(models: list[ReportModel]) -> str:
    """The whole page for ``models`` (targets first, then runs, then oracles).

    The evaluation sections are left out when no model has an evaluation (every run is an
    audit, a tune or a sequence), the attacks section when none is an audit, the guard
    section when no run was guarded and the tune and sequence sections when no run is one:
    a section with nothing to show in any run is noise.
    """
    runs = [m for m in models if m.role == "run"]
    names = ", ".join(escape(m.name) for m in runs)
    splits = dict.fromkeys(str(m.results["split"]) for m in runs if m.results.get("split"))
    meta = f"Forget split: <b>{escape(', '.join(splits))}</b>. " if splits else ""
    parts = [
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>obliviate report: {names}</title>\n<style>{STYLE}</style>\n</head>",
        "<body>\n<main>\n<header>",
        "<h1>Unlearning report</h1>",
        f'<p class="meta">Runs: <b>{names}</b></p>',
        f'<p class="meta">{meta}Compared with the target (before unlearning) and the oracle '
        "(retrained without the forget set) where the runs carry them.</p>",
        "</header>",
    ]
    if any(m.verdict is not None for m in models):
        parts.append(_verdicts([m for m in models if m.verdict is not None]))
    if any(m.evaluated for m in models):
        parts += [
            _summary([m for m in models if m.evaluated]),
            _plot_section(
                tradeoff_plot(models),
                "Forgetting against utility",
                "No model has a model utility and a forget figure to plot.",
            ),
            _plot_section(
                split_bars(models),
                "Accuracy and probability per split",
                "No per-split accuracy or probability in these runs.",
            ),
            _membership(models),
        ]
    if any(has_text(m) for m in models):
        parts.append(_text([m for m in models if has_text(m)]))
    if any(has_tune(m) for m in models):
        parts.append(tune_section(models))
    if any(has_sequence(m) for m in models):
        parts.append(sequence_section(models))
    if any(has_behaviour(m) for m in models):
        parts.append(html_section(models))
    if any(m.attacks for m in models):
        parts.append(_attacks(models))
    if any(m.guard for m in models):
        parts.append(_guards(models))
    if any(m.evaluated for m in models):
        parts.append(_examples(models))
    parts.append("</main>\n</body>\n</html>\n")
    return "\n".join(parts)


def _section(title: str, body: str) -> str:
    return f"<section>\n<h2>{escape(title)}</h2>\n{body}\n</section>"


def _table(headings: list[str], rows: list[str], css: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in headings)
    return (
        f'<div class="scroll"><table class="{css}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{''.join(rows)}</tbody>\n</table></div>"
    )


def _row(model: ReportModel, cells: list[str]) -> str:
    css = ' class="reference"' if model.role != "run" else ""
    return f"<tr{css}>{''.join(cells)}</tr>\n"


def _summary(models: list[ReportModel]) -> str:
    headings = ["model", "method"] + [escape(heading(c)) for c in columns(models)]
    rows = []
    for model, row in zip(models, summary_rows(models), strict=True):
        name, method, *figures = row
        cells = [
            f"<td><b>{escape(name)}</b></td>",
            f"<td>{escape(method)}</td>",
            *(f'<td class="num">{escape(f)}</td>' for f in figures),
        ]
        rows.append(_row(model, cells))
    caption = (
        "Arrows say which way is better; target and oracle rows (grey) are the yardsticks. "
        "Forget quality is the KS-test p-value of the forget truth ratios against the "
        "oracle's (it falls with the number of forget records at a fixed gap: compare it "
        "with the target's); privleak is MUSE's, the Min-K% (k = 0.4) AUC relative to the "
        "oracle's."
    )
    specs = ", ".join(
        f"<b>{escape(m.name)}</b> <code>{escape(str(m.results.get('model') or MISSING))}</code>"
        for m in models
    )
    return _section(
        "Summary",
        f'{_table(headings, rows, "summary")}\n<p class="caption">{caption}</p>\n'
        f'<p class="caption">Models: {specs}.</p>',
    )


def _verdicts(runs: list[ReportModel]) -> str:
    """Each run's verdict as a coloured banner, its checks in a table below it."""
    css = {True: "passed", False: "failed", None: "unjudged"}
    marks = {"✓": ' class="ok"', "✗": ' class="bad"'}
    blocks = []
    for run in runs:
        verdict = run.verdict
        if verdict is None:
            continue
        against = f", against the {escape(verdict.against)}" if verdict.against else ""
        rows = [
            "<tr>"
            + "".join(f"<td>{escape(c)}</td>" for c in row[:2])
            + "".join(f'<td class="num">{escape(c)}</td>' for c in row[2:3])
            + f"<td>{escape(row[3])}</td>"
            + "".join(f'<td class="num">{escape(c)}</td>' for c in row[4:6])
            + f"<td{marks.get(row[6], '')}>{escape(row[6])}</td></tr>\n"
            for row in verdict_rows(verdict)
        ]
        blocks.append(
            f'<div class="banner {css[verdict.passed]}">{escape(run.name)}: '
            f"{escape(verdict.line)} <small>({VERDICT_WORDS[verdict.passed]}{against})"
            f"</small></div>\n{_table(list(VERDICT_HEADINGS), rows, 'verdict')}"
        )
    caption = f'<p class="caption">{escape(VERDICT_CAPTION)}</p>'
    return _section("Verdict", "\n".join(blocks) + "\n" + caption)


def _plot_section(plot: Plot | None, title: str, empty: str) -> str:
    return _section(title, _figure(plot, empty))


def _figure(plot: Plot | None, empty: str) -> str:
    if plot is None:
        return f'<p class="empty">{escape(empty)}</p>'
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(plot.title)}">'
        f"<figcaption>{escape(plot.caption)}</figcaption></figure>"
    )


def _membership(models: list[ReportModel]) -> str:
    """The ROC plot and the AUCs of all four attacks; for a run where forget and holdout
    are not a random split of one pool, why there are none."""
    notes = "".join(
        f"<p><b>Not applicable to {escape(m.name)}:</b> {escape(str(mia_note(m)))}.</p>\n"
        for m in models
        if m.role == "run" and mia_note(m)
    )
    plot = _figure(
        roc_plot(models), "No per-example membership-inference scores (mia_scores) to plot."
    )
    with_mia = [m for m in models if isinstance(m.results.get("mia"), dict) and mia_note(m) is None]
    shown = [*(figure(f"{a}_auc") for a in ATTACKS), figure("privleak"), figure("privleak_minkpp")]
    table = ""
    if with_mia:
        rows = [
            _row(
                m,
                [f"<td><b>{escape(m.name)}</b></td>"]
                + [f'<td class="num">{cell(c, m.results)}</td>' for c in shown],
            )
            for m in with_mia
        ]
        headings = ["model", *(escape(heading(c)) for c in shown)]
        table = (
            f'{_table(headings, rows)}\n<p class="caption">ROC AUC of each attack, forget '
            "answers as members and holdout answers as non-members: near the oracle's "
            "(about 0.5) is the aim. Privleak is MUSE's: the Min-K% (k = 0.4) AUC's gap to "
            "the oracle's, relative to it, in MUSE's orientation (privleak, Min-K%++: the "
            "same with Min-K%++ at k = 0.2).</p>"
        )
    return _section(
        "Membership inference", f'{notes}<div class="side">{plot}<div>{table}</div></div>'
    )


def _text(models: list[ReportModel]) -> str:
    """MUSE's four figures and verdicts per model evaluated on passages."""
    headings = ["model"] + [escape(heading(c)) for c in TEXT_COLUMNS + TEXT_VERDICTS]
    css = {"✓": ' class="ok"', "✗": ' class="bad"'}
    rows = []
    for model, (name, *cells) in zip(models, text_rows(models), strict=True):
        figures, marks = cells[: len(TEXT_COLUMNS)], cells[len(TEXT_COLUMNS) :]
        rows.append(
            _row(
                model,
                [f"<td><b>{escape(name)}</b></td>"]
                + [f'<td class="num">{escape(f)}</td>' for f in figures]
                + [f"<td{css.get(m, '')}>{m}</td>" for m in marks],
            )
        )
    return _section(
        "Text (MUSE)", f'{_table(headings, rows)}\n<p class="caption">{escape(TEXT_RULES)}</p>'
    )


def _attacks(models: list[ReportModel]) -> str:
    """The recovery chart, then each audited run's figures per attack and variant."""
    plot = _figure(attack_plot(models), "No attack has a recovery figure to plot.")
    explanation = (
        '<p class="caption">Recovery is how far an attack moves forget accuracy from where '
        "it was back toward the target's: 0 stays forgotten, 1 is back to the target. "
        "Uplift vs oracle = the unlearned model's forget accuracy under the attack minus the "
        "oracle's under the identical attack; above 0 means the attack brought back "
        "knowledge the oracle never had.</p>"
    )
    runs = "\n".join(_audit(m) for m in models if m.attacks)
    return _section("Attacks", f"{plot}\n{explanation}\n{runs}")


def _audit(run: ReportModel) -> str:
    """One run's attack table, the models it attacked and its worst case."""
    accuracy, recovery = figure("attack_accuracy").label, figure("recovery").label
    headings = ["attack", "variant"]
    for role in ("model", "oracle"):
        headings += [f"{role} {accuracy} before → after", f"{role} {recovery}"]
    headings.append(figure("uplift_vs_oracle").label)
    rows = [row for attack in run.attacks for row in _attack_rows(attack)]
    specs = ", ".join(
        f"{role} <code>{escape(str(run.results[role]))}</code>"
        for role in ("model", "oracle", "target")
        if run.results.get(role)
    )
    seconds = run.figure("cost", "seconds")
    took = f" The audit took {show('seconds', seconds)} s." if seconds is not None else ""
    case = worst_case(run)
    worst = f"<p><b>Worst case:</b> {escape(case)}</p>" if case else ""
    return (
        f"<h3>{escape(run.name)}</h3>\n"
        f'<p class="caption">Attacked: {specs or MISSING}.{took}</p>\n'
        f"{worst}\n{_table(headings, rows, 'attacks')}\n"
        '<p class="caption">The shaded row of each attack is its worst variant, which '
        "stands for it in the chart; grey control rows are the same attack on holdout "
        "people, whom no model was trained on.</p>"
    )


def _attack_rows(attack: Attack) -> list[str]:
    """One row per variant, each followed by its control; the attack's name spans them."""
    lines: list[tuple[str, list[str]]] = []
    for variant in attack.variants:
        if variant.name == attack.worst_variant:
            lines.append(("worst", _variant_cells(variant, f"{escape(variant.name)} (worst)")))
        else:
            lines.append(("", _variant_cells(variant, escape(variant.name))))
        if variant.control is not None:
            control = f"{escape(variant.name)} · control"
            lines.append(("reference", _variant_cells(variant.control, control)))
    about = "".join(
        f"<br><small>{escape(text)}</small>"
        for text in (attack.description, attack.settings)
        if text
    )
    span = max(len(lines), 1)
    name = f'<td class="attack" rowspan="{span}"><b>{escape(attack.name)}</b>{about}</td>'
    if not lines:
        why = f"skipped: {attack.skipped}" if attack.skipped else f"{MISSING} (no variant results)"
        return [f'<tr>{name}<td colspan="6">{escape(why)}</td></tr>\n']
    rows = []
    for index, (css, cells) in enumerate(lines):
        attribute = f' class="{css}"' if css else ""
        first = name if index == 0 else ""
        rows.append(f"<tr{attribute}>{first}{''.join(cells)}</tr>\n")
    return rows


def _variant_cells(variant: Variant, label: str) -> list[str]:
    return [
        f"<td>{label}</td>",
        f'<td class="num">{_before_after(variant.model)}</td>',
        f'<td class="num">{show("recovery", variant.model.recovery)}</td>',
        f'<td class="num">{_before_after(variant.oracle)}</td>',
        f'<td class="num">{show("recovery", variant.oracle.recovery)}</td>',
        f'<td class="num">{show("uplift_vs_oracle", variant.uplift)}</td>',
    ]


def _before_after(outcome: Outcome) -> str:
    if outcome.before is None and outcome.after is None:
        return MISSING
    before, after = (show("attack_accuracy", v) for v in (outcome.before, outcome.after))
    return f"{before} → {after}"


def _guards(models: list[ReportModel]) -> str:
    """Each guarded run's leak and false-refusal rates against the aim, and the guard."""
    runs = "\n".join(_guard(m.name, m.guard) for m in models if m.guard is not None)
    return _section("Guard", f'<p class="caption">{escape(AIM)}</p>\n{runs}')


def _guard(name: str, guard: Guard) -> str:
    tables = f"<div>{_leak_table(guard)}</div><div>{_refusal_table(guard)}</div>"
    return "\n".join(
        [
            f"<h3>{escape(name)}</h3>",
            f'<p class="caption">{_make_up(guard)}</p>',
            f"<p><b>Aim:</b> {_aim(guard)}</p>",
            f'<div class="side">{tables}</div>',
            _costs(guard),
            _context(guard),
        ]
    )


def _make_up(guard: Guard) -> str:
    """The components, and each filter's threshold with the rate it was calibrated to."""
    parts = [f"Components: <b>{escape(', '.join(guard.components) or MISSING)}</b>."]
    for name, filter_ in guard.filters.items():
        questions = f" of {format_value('count', filter_.n)}" if filter_.n is not None else ""
        parts.append(
            f"{escape(name.replace('_', ' ').capitalize())}: threshold "
            f"{format_value('ratio', filter_.threshold)}, refuses "
            f"{format_value('percent', filter_.rate)}{questions} retained calibration "
            f"questions (target {format_value('percent', filter_.target_rate)})."
        )
    return " ".join(parts)


def _aim(guard: Guard) -> str:
    met = aim_met(guard)
    if met is None:
        mark = "not judged"
    elif met:
        mark = '<span class="ok">✓</span> met'
    else:
        mark = '<span class="bad">✗</span> missed'
    return f"{mark}: {escape(aim_figures(guard))}."


def _leak_table(guard: Guard) -> str:
    """One row per question set or attack variant; the worst one shaded."""
    if not guard.leak_rate:
        return '<p class="empty">No leak rates in this run.</p>'
    worst = guard.worst_leak
    rows = []
    for key, rate in guard.leak_rate.items():
        is_worst = worst is not None and key == worst[0]
        label = f"{escape(key)} (worst)" if is_worst else escape(key)
        css = ' class="worst"' if is_worst else ""
        rate_cell = f'<td class="num">{show("leak_rate", rate)}</td>'
        rows.append(f"<tr{css}><td>{label}</td>{rate_cell}</tr>\n")
    return _table(["questions asked", escape(heading(figure("leak_rate")))], rows)


def _refusal_table(guard: Guard) -> str:
    """False refusals per split beside the rate the filters were calibrated to."""
    if not guard.false_refusal_rate:
        return '<p class="empty">No false-refusal rates in this run.</p>'
    refusals = figure("false_refusal_rate")
    target = format_value(refusals, guard.target_rate)
    rows = [
        f'<tr><td>{escape(split)}</td><td class="num">{format_value(refusals, rate)}</td>'
        f'<td class="num">{target}</td></tr>\n'
        for split, rate in guard.false_refusal_rate.items()
    ]
    return _table(["split", escape(heading(refusals)), "calibration target"], rows)


def _costs(guard: Guard) -> str:
    """What the filters replaced and the time the guard costs, where the run measured it."""
    parts = []
    if guard.filtered:
        counts = ", ".join(
            f"{escape(name)} {format_value('count', count)}"
            for name, count in guard.filtered.items()
        )
        parts.append(f"Filtered (questions or answers replaced): {counts}.")
    if guard.filter_ms is not None:
        parts.append(f"Filter time {show('filter_ms', guard.filter_ms)} per answer.")
    if guard.added_latency_ms is not None:
        parts.append(
            f"Added latency {show('added_latency_ms', guard.added_latency_ms)} per question "
            "(with the guard minus without)."
        )
    return f'<p class="caption">{" ".join(parts)}</p>' if parts else ""


def _context(guard: Guard) -> str:
    """The instruction the guard puts before every question, folded away: it is long."""
    if not guard.context:
        return ""
    return (
        "<details><summary>The guard's context (put before every question)</summary>"
        f"<pre>{escape(guard.context)}</pre></details>"
    )


def _examples(models: list[ReportModel]) -> str:
    """Every forget question with the gold answer and each model's greedy answer."""
    by_model = {m.name: {_key(row): row for row in m.examples("forget")} for m in models}
    questions: dict[str, dict[str, Any]] = {}
    for model in sorted(models, key=lambda m: m.role != "run"):
        for key, row in by_model[model.name].items():
            questions.setdefault(key, row)
    if not questions:
        return _section("Forget examples", '<p class="empty">No forget examples in these runs.</p>')
    shown = [m for m in models if by_model[m.name]]
    headings = ["question", "gold answer"]
    for model in shown:
        rows = by_model[model.name].values()
        right = sum(1 for row in rows if row.get("correct") is True)
        headings.append(f"{escape(model.name)} <small>({right}/{len(rows)} ✓)</small>")
    body = []
    for key, first in questions.items():
        cells = [
            f"<td>{escape(str(first.get('question', '')))}</td>",
            f"<td>{escape(str(first.get('answer', '')))}</td>",
        ]
        cells += [_answer(by_model[m.name].get(key)) for m in shown]
        body.append(f"<tr>{''.join(cells)}</tr>\n")
    caption = (
        "The greedy answer of each model to each forget question (✓ when it contains the "
        "gold answer): after unlearning the runs should miss them as the oracle does."
    )
    table = _table(headings, body, "examples")
    return _section("Forget examples", f'{table}\n<p class="caption">{caption}</p>')


def _key(row: dict[str, Any]) -> str:
    """Examples are joined on their id; the question stands in when a row has none."""
    return str(row.get("id") or row.get("question", ""))


def _answer(row: dict[str, Any] | None) -> str:
    """The generated answer with ✓ or ✗ (nothing when the row does not say)."""
    if row is None:
        return f"<td>{MISSING}</td>"
    correct = row.get("correct")
    mark = ""
    if correct is True:
        mark = ' <span class="ok">✓</span>'
    elif correct is False:
        mark = ' <span class="bad">✗</span>'
    return f"<td>{escape(str(row.get('generated', '')))}{mark}</td>"
