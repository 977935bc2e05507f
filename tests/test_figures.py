"""The figure registry: one label, direction and number format per figure, read alike by
the terminal tables, the HTML/Markdown report and the sequence tables."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console

from obliviate.evaluation.figures import (
    FIGURES,
    SPLIT_FIGURES,
    STYLES,
    Figure,
    arrow,
    figure,
    format_value,
    heading,
    lookup,
    register_figure,
    show,
)
from obliviate.evaluation.metrics import METRICS, register_metric
from obliviate.report.behaviour import HEADINGS
from obliviate.report.load import ReportModel
from obliviate.report.sequence import step_table
from obliviate.report.summary import COLUMNS, summary_rows
from obliviate.report.terminal import TABLE_ROWS, results_table


def test_a_figure_registered_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register_figure("forget_quality", "again", ("forget_quality",), "higher", "pvalue", "x")
    assert figure("forget_quality").label == "forget quality"


def test_a_metric_without_declared_figures_is_refused():
    with pytest.raises(ValueError, match="register_split_figures"):
        register_metric("made_up_metric")(lambda outputs: 0.0)
    assert "made_up_metric" not in METRICS


@pytest.mark.parametrize(
    ("better", "style"), [("up", "percent"), (True, "percent"), ("higher", "fancy")]
)
def test_a_figure_without_a_direction_or_a_known_style_is_refused(better, style):
    with pytest.raises(ValueError):
        Figure("x", "x", ("x",), better, style, "x")


def test_every_figure_has_a_direction_a_style_and_a_meaning():
    for key, fig in FIGURES.items():
        assert fig.key == key and fig.label and fig.path and fig.meaning.strip(), key
        assert fig.style in STYLES, key
        assert arrow(fig) in ("↑", "↓") or arrow(fig).startswith("→ "), key


def test_every_metric_has_a_figure_on_each_split_forget_the_other_way():
    assert set(METRICS) <= set(SPLIT_FIGURES)
    accuracy = SPLIT_FIGURES["accuracy"]
    assert accuracy["retain"].better == "higher" and accuracy["forget"].better == "lower"
    assert accuracy["forget"] is figure("forget_accuracy")
    assert figure("forget_accuracy").path == ("splits", "forget", "accuracy")
    # the forget truth ratio is already scored the other way round: higher is better there too
    assert SPLIT_FIGURES["truth_ratio"]["forget"].better == "higher"


@pytest.mark.parametrize(
    ("style", "value", "text"),
    [
        ("percent", 0.4, "40.0 %"),
        ("percent", 0.016, "1.6 %"),
        ("probability", 0.12345, "0.123"),
        ("probability", 0.0002, "2.0e-04"),
        ("probability", 0.0, "0.000"),
        ("pvalue", 0.42, "0.420"),
        ("pvalue", 0.03, "0.0300"),
        ("pvalue", 1e-20, "1.00e-20"),
        ("signed", 0.35, "+0.350"),
        ("signed", -0.02, "-0.020"),
        ("ratio", 1.0234, "1.023"),
        ("number", 12.345, "12.35"),
        ("seconds", 62.04, "62.0"),
        ("milliseconds", 62.1, "62.1 ms"),
        ("count", 139.0, "139"),
        ("verdict", True, "✓"),
        ("verdict", False, "✗"),
        ("verdict", None, "—"),
        ("percent", None, "—"),
        ("probability", float("nan"), "—"),
        ("ratio", "n/a", "—"),
        ("ratio", True, "—"),  # a bool is not a number
    ],
)
def test_format_value(style, value, text):
    assert format_value(style, value) == text


def test_arrows_and_headings():
    assert heading(figure("forget_accuracy")) == "forget accuracy ↓"
    assert heading(figure("forget_quality")) == "forget quality ↑"
    assert heading(figure("minkpp_auc")) == "Min-K%++ AUC → 0.5"
    assert heading(figure("privleak")) == "privleak → 0"
    assert heading(figure("normal_ppl_ratio")) == "perplexity ratio → 1"
    assert heading(figure("no_verbmem")) == "no verbatim memorisation"  # ✓ says it
    assert "in-context: train / unseen ↓" in HEADINGS


RESULTS = {
    "method": "npo",
    "split": "forget10",
    "splits": {
        "forget": {"accuracy": 0.125, "prob": 0.0004},
        "retain": {"accuracy": 0.9},
        "neighbors": {"accuracy": 0.8},
        "world": {"accuracy": 0.57},
    },
    "forget_quality": 3.2e-5,
    "model_utility": 0.61234,
    "mia": {"minkpp_auc": 0.5234},
    "privleak": -0.25,
    "cost": {"seconds": 62.04},
}


def test_terminal_table_and_report_summary_write_each_figure_alike():
    console = Console(file=io.StringIO(), width=200)
    console.print(results_table(RESULTS))
    lines = console.file.getvalue().splitlines()
    row = summary_rows([ReportModel("npo", "run", RESULTS, "npo")])[0]
    summary = {column.key: text for column, text in zip(COLUMNS, row[2:], strict=True)}
    assert summary["forget_accuracy"] == "12.5 %" and summary["forget_prob"] == "4.0e-04"
    assert summary["forget_quality"] == "3.20e-05" and summary["privleak"] == "-0.250"
    for key in set(TABLE_ROWS) & set(summary):
        line = next(line for line in lines if heading(figure(key)) in line)
        assert summary[key] in line, (key, line)
        assert summary[key] == show(key, lookup(RESULTS, figure(key).path))


def test_the_terminal_table_leaves_out_tofus_utility_when_no_model_has_it():
    console = Console(file=io.StringIO(), width=200)
    bare = {k: v for k, v in RESULTS.items() if k != "model_utility"}
    console.print(results_table(bare | {"model_utility_neighbors": 0.5}))
    text = console.file.getvalue()
    assert "model utility (neighbours) ↑" in text and "model utility ↑" not in text
    assert "KS statistic ↓" in text and "forget n ↑" in text


def test_the_papers_figures_are_registered_per_split_and_whole_run():
    for metric in ("knowmem", "truth_ratio_prob_mean", "exact_memorization", "extraction_strength"):
        assert metric in METRICS and set(SPLIT_FIGURES[metric]) >= {"forget", "retain"}
        assert SPLIT_FIGURES[metric]["forget"].better == "lower"
    assert figure("real_authors_prob_normalized").path == (
        "splits",
        "real_authors",
        "prob_normalized",
    )
    for key in ("model_utility_neighbors", "privleak_minkpp", "text_privleak_minkpp"):
        assert figure(key).meaning
    assert figure("forget_quality_n").path == ("forget_quality_n", "model")


def test_sequence_step_table_reads_the_registry():
    headline = {
        "forget_accuracy": 0.25,
        "knowmem_forget": 0.3,
        "knowmem_retain": 0.8,
        "model_utility_neighbors": 0.6,
        "forget_quality": 0.5,
        "privleak": 0.1,
        "verdicts": {"no_verbmem": True, "no_knowmem": False},
        "verbmem": 0.2,
    }
    step = {
        "step": 1,
        "request": "forget05",
        "people_removed": 2,
        "figures": headline,
        "oracle": headline,
        "target": headline,
        "slices": {"request-1": {"no_knowmem": True}},
        "seconds": {"unlearn": 3.21},
    }
    header, rows = step_table({"text": True, "steps": [step]})
    table = {row[0]: row[1:] for row in rows}
    assert header == ["figure", "target", "1: forget05"]
    assert table["forget accuracy ↓"] == ["25.0 %", "25.0 %"]
    assert table["model utility (neighbours) ↑"] == ["0.600", "0.600"]
    assert table["knowmem forget, oracle"] == ["—", "0.300"]
    assert table["privleak, passages → 0"] == ["+0.100", "+0.100"]
    assert table["no verbatim memorisation"] == ["✓", "✓"]
    assert table["no knowledge memorisation"] == ["✗", "✗"]
    assert table["no privacy leakage"] == ["—", "—"]
    assert table["seconds to unlearn ↓"] == ["—", "3.2"]


def test_the_registry_loads_without_numpy_or_torch():
    code = (
        "import sys, obliviate.evaluation.figures\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'torch', 'rich'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
