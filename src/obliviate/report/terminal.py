"""What the command line prints (rich): the verdict banner first, then the tables of
results, MUSE's text figures, the audit, the guard and the behaviour figures.

Their rows are figures of the registry (``evaluation/figures.py``): the headings, arrows and
number formats are those of the HTML and Markdown report and of the sequence tables.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from obliviate.evaluation.figures import MISSING, cell, figure, format_value, heading, lookup

#: The rows of the results table (figure keys), one column per model.
TABLE_ROWS: tuple[str, ...] = (
    "forget_accuracy",
    "forget_prob",
    "forget_quality",
    "forget_quality_ks",
    "forget_quality_n",
    "model_utility",
    "model_utility_neighbors",
    "retain_accuracy",
    "neighbors_accuracy",
    "world_accuracy",
    "minkpp_auc",
    "privleak",
    "privleak_minkpp",
    "seconds",
)
#: Rows left out when no model has them: TOFU's model utility needs Real Authors and World
#: Facts (``--real-authors``, ``--world-facts``).
ROWS_IF_ANY: frozenset[str] = frozenset({"model_utility"})
#: Membership-inference rows, left out (with the reason below the table) where forget and
#: holdout are not a random split of one pool (``mia_applicable`` false).
MIA_ROWS: frozenset[str] = frozenset({"minkpp_auc", "privleak", "privleak_minkpp"})
#: The banner's colour by the verdict's ``passed``.
BANNER_STYLES = {True: "bold green", False: "bold red", None: "bold yellow"}

#: MUSE's figures and verdicts, shown when the evaluation had passages to forget.
TEXT_TABLE_ROWS: tuple[str, ...] = (
    "verbmem",
    "knowmem_forget",
    "knowmem_retain",
    "text_privleak",
    "text_privleak_minkpp",
    "no_verbmem",
    "no_knowmem",
    "no_privleak",
    "utility_preserved",
)

#: The rows of the behaviour table, read from the behaviour block of the model and the target.
BEHAVIOUR_ROWS: tuple[str, ...] = (
    "harmful_rate_train",
    "harmful_rate_unseen",
    "in_context_train",
    "in_context_unseen",
    "jailbreak_train",
    "jailbreak_unseen",
    "over_refusal",
    "normal_ppl",
    "normal_ppl_ratio",
    "output_similarity",
)


def verdict_banner(results: dict[str, Any]) -> str:
    """The verdict's one line (rich markup), coloured by whether it passed: what to read
    first. A document without a verdict (an older run) says so."""
    verdict = results.get("verdict")
    if not isinstance(verdict, dict) or not verdict.get("line"):
        return "[bold yellow]no verdict in these results[/bold yellow]"
    style = BANNER_STYLES.get(verdict.get("passed"), BANNER_STYLES[None])
    against = f" [dim](against the {verdict['against']})[/dim]" if verdict.get("against") else ""
    return f"[{style}]{escape(str(verdict['line']))}[/{style}]{against}"


def results_table(
    results: dict[str, Any],
    main: str = "model",
    rows: tuple[str, ...] = TABLE_ROWS,
    title: str = "",
) -> Table:
    """A results document as a table: one row per figure of ``rows``, one column per model."""
    references = results.get("reference", {})
    entries = {
        "target": references.get("target"),
        main: results,
        "oracle": references.get("oracle"),
    }
    entries = {name: entry for name, entry in entries.items() if entry is not None}
    table = Table(title=f"{results.get('method') or main} on {results['split']} {title}".strip())
    table.add_column("figure")
    for name in entries:
        table.add_column(name, justify="right")
    cached = results.get("cached", {})
    no_mia = results.get("mia_applicable") is False and not MIA_ROWS.isdisjoint(rows)
    for fig in map(figure, rows):
        if fig.key in ROWS_IF_ANY and all(lookup(e, fig.path) is None for e in entries.values()):
            continue
        if no_mia and fig.key in MIA_ROWS:
            continue
        cells = [
            "cached" if fig.path[0] == "cost" and cached.get(name) else cell(fig, entry)
            for name, entry in entries.items()
        ]
        table.add_row(heading(fig), *cells)
    if no_mia:
        table.caption = escape(f"membership inference not applicable: {results.get('mia_note')}")
    return table


def audit_table(results: dict[str, Any]) -> Table:
    """One row per attack (its worst variant): accuracy after the attack, recovery, uplift."""
    accuracy, recovery, uplift = map(figure, ("attack_accuracy", "recovery", "uplift_vs_oracle"))
    table = Table(title=f"audit of {results.get('method') or 'model'} on {results['split']}")
    table.add_column("attack")
    table.add_column("worst variant")
    for column in (f"model {accuracy.label}", f"oracle {accuracy.label}"):
        table.add_column(column, justify="right")
    table.add_column(heading(recovery), justify="right")
    table.add_column(heading(uplift), justify="right")
    for name, entry in results["attacks"].items():
        if "skipped" in entry:
            table.add_row(name, f"skipped: {entry['skipped']}", "", "", "", "")
            continue
        variant = entry["variants"][entry["worst_variant"]]
        model, oracle = variant["model"], variant.get("oracle")
        before = format_value(accuracy, lookup(model, ("before", "accuracy")))
        table.add_row(
            name,
            entry["worst_variant"],
            f"{before} → {cell(accuracy, model)}",
            cell(accuracy, oracle) if oracle else MISSING,
            cell(recovery, entry),
            cell(uplift, entry),
        )
    table.caption = escape(worst_case_caption(results.get("worst_case")) or "")
    return table


def worst_case_caption(case: Any) -> str | None:
    """``worst case: relearn (default); diff left out: …``: the worst attack that counts
    under the threat model, or that nothing was recovered."""
    if not isinstance(case, dict):
        return None
    found = f"{case['attack']} ({case.get('variant')})" if case.get("attack") else None
    if found is None and "counted" not in case:
        return None
    line = f"worst case: {found or 'nothing recovered'}"
    if case.get("threat_model"):
        line += f" ({case['threat_model']})"
    excluded = case.get("excluded") if isinstance(case.get("excluded"), dict) else {}
    return line + "".join(f"; {name} left out: {why}" for name, why in excluded.items())


def guard_table(guard: dict[str, Any]) -> Table:
    """Leak rates (forget questions still answered) and false refusals behind a guard."""
    components = ", ".join(guard["config"]["components"])
    table = Table(title=f"behind the guard ({components})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("leak_rate", "false_refusal_rate"):
        rates = figure(key)
        for name, value in (lookup(guard, rates.path) or {}).items():
            table.add_row(f"{rates.label}: {name}", format_value(rates, value))
    latency = figure("added_latency_ms")
    if lookup(guard, latency.path) is not None:
        table.add_row(latency.label, cell(latency, guard))
    return table


def behaviour_table(results: dict[str, Any]) -> Table:
    """Harmful rates, over-refusal and utility of the model, and of the target beside it."""
    figures = results["behaviour"]
    table = Table(title=f"behaviour of {results.get('method') or 'model'}")
    table.add_column("figure")
    table.add_column("model", justify="right")
    table.add_column("target", justify="right")
    before = figures.get("original", {})
    for fig in map(figure, BEHAVIOUR_ROWS):
        values = [lookup(entry, fig.path) for entry in (figures, before)]
        if fig.path[0] == "attacks" and all(v is None for v in values):
            continue  # evaluated without --attacks
        table.add_row(heading(fig), *(format_value(fig, v) for v in values))
    judge = figures["judge"]
    table.caption = "judge: " + (
        f"{judge['path']} ({judge['harmful_label']})"
        if "path" in judge
        else f"at least {judge['min_markers']} markers of the requested item"
    )
    return table
