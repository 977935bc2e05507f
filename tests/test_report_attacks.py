"""`obliviate report` on `obliviate audit` runs: the attacks chart, tables and worst case."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_report import ORACLE, TARGET, evaluation, make_run

from obliviate.errors import ObliviateError
from obliviate.report import write_report
from obliviate.report.load import load_models
from obliviate.report.plots import attack_plot


def outcome(before: float | None, after: float | None, recovery: float | None) -> dict[str, Any]:
    return {
        "before": {"accuracy": before, "prob": 0.1, "n": 18},
        "after": {"accuracy": after, "prob": 0.3, "n": 18},
        "recovery": recovery,
    }


def audit(model: str, with_oracle: bool = True) -> dict[str, Any]:
    """An audit's results.json: relearn, in-context with a control, quantize with nulls, a
    skipped attack and a null one."""

    def variant(model_side: dict[str, Any], oracle_side: dict[str, Any], uplift: float | None):
        figures = {"model": model_side, "target": outcome(0.9, 0.9, None)}
        if with_oracle:
            figures |= {"oracle": oracle_side, "uplift_vs_oracle": uplift}
        return figures

    in_context = {
        name: variant(outcome(0.05, after, rec), outcome(0.0, 0.05, 0.05), uplift)
        for name, after, rec, uplift in [
            ("fact", 0.1, 0.06, 0.02),
            ("premises", 0.1, 0.06, 0.01),
            ("priming", 0.2, 0.2, 0.1),
            ("irrelevant", 0.05, 0.0, 0.0),
        ]
    }
    in_context["fact"]["control"] = variant(
        outcome(0.0, 0.5, 0.5), outcome(0.0, 0.5, 0.5), 0.0 if with_oracle else None
    )
    quantize = {
        "int8": variant(outcome(0.05, 0.05, 0.0), outcome(0.0, 0.0, 0.0), 0.0),
        "int4": variant(outcome(0.05, None, None), outcome(None, None, None), None),
    }
    quantize["int8"]["model"]["same_value_fraction"] = 0.97
    document: dict[str, Any] = {
        "command": "audit",
        "model": model,
        "target": "runs/t/model",
        "method": "npo",
        "split": "forget10",
        "attacks": {
            "relearn": {
                "description": "fine-tune on half the forget people, ask about the other half",
                "settings": {"steps": 16, "lr": 2e-05},
                "variants": {
                    "default": variant(outcome(0.05, 0.4, 0.41), outcome(0.0, 0.05, 0.05), 0.35)
                },
                "worst_variant": "default",
                "recovery": 0.41,
                "oracle_recovery": 0.05 if with_oracle else None,
                "uplift_vs_oracle": 0.35 if with_oracle else None,
            },
            "in_context": {
                "description": "put a <context> & a question together",
                "settings": {},
                "variants": in_context,
                "worst_variant": "priming",
                "recovery": 0.2,
                "oracle_recovery": 0.0 if with_oracle else None,
                "uplift_vs_oracle": 0.1 if with_oracle else None,
            },
            "quantize": {
                "variants": quantize,
                "worst_variant": None,
                "recovery": None,
                "oracle_recovery": None,
                "uplift_vs_oracle": None,
            },
            "probes": {"description": "yes/no probes", "skipped": "no yes/no questions"},
            "broken": None,
        },
        "worst_case": {"attack": "relearn", "variant": "default", "uplift_vs_oracle": 0.35},
        "cost": {"seconds": 312.5, "peak_rss_mb": 2100.0, "attack_seconds": {"relearn": 80.1}},
    }
    if with_oracle:
        document["oracle"] = "runs/o/model"
        document["worst_case"]["recovery"] = 0.41
    else:
        document["worst_case"] = {"attack": "relearn", "variant": "default", "recovery": 0.41}
    return document


@pytest.fixture
def audit_runs(tmp_path: Path) -> list[Path]:
    """An audit of npo against its oracle, and one of simnpo without an oracle."""
    return [
        make_run(tmp_path, "npo-audit", audit("runs/npo")),
        make_run(tmp_path, "simnpo-audit", audit("runs/simnpo", with_oracle=False)),
    ]


@pytest.fixture
def eval_run(tmp_path: Path) -> Path:
    npo = evaluation("runs/npo", 0.17, 0.59, 0.42, 0.3, 3, "npo")
    npo["reference"] = {"target": TARGET, "oracle": ORACLE}
    return make_run(tmp_path, "npo", npo)


def attacks_section(page: str) -> str:
    return page.split("<h2>Attacks</h2>")[1].split("</section>")[0]


def test_audit_only_runs_report_their_attacks(audit_runs: list[Path], tmp_path: Path):
    html_path, _ = write_report(audit_runs, tmp_path / "report.html")
    page = html_path.read_text()
    section = attacks_section(page)

    assert page.count('<img src="data:image/png;base64,') == 1  # the recovery chart only
    assert "<h2>Summary</h2>" not in page and "<h2>Forget examples</h2>" not in page
    for name in ("relearn", "in_context", "quantize", "probes", "broken", "npo-audit"):
        assert name in section
    assert "steps=16, lr=2e-05" in section
    assert "skipped: no yes/no questions" in section
    assert (
        "Uplift vs oracle = the unlearned model's forget accuracy under the attack minus the "
        "oracle's under the identical attack; above 0 means the attack brought back "
        "knowledge the oracle never had."
    ) in section
    assert section.count('<tr class="worst">') == 4  # relearn and in_context, in both runs
    assert "<td>priming (worst)</td>" in section
    assert "fact · control" in section
    assert "5.0 % → 40.0 %" in section and "+0.350" in section and "+0.100" in section
    assert "<b>Worst case:</b> relearn (default): uplift vs oracle +0.350, recovery 0.410" in (
        section
    )
    # Without an oracle, its columns and the uplift are missing, not zero.
    simnpo = section.split("<h3>simnpo-audit</h3>")[1]
    assert "uplift vs oracle —, recovery 0.410" in simnpo
    assert "oracle <code>" not in simnpo.split("</p>")[0]
    assert "&lt;context&gt; &amp; a question" in section
    assert "<script" not in page
    assert not re.search(r"https?://", page)


def test_markdown_has_an_attack_table_per_audit(audit_runs: list[Path], tmp_path: Path):
    _, md_path = write_report(audit_runs, tmp_path / "report.html")
    summary = md_path.read_text()

    assert "### Attacks on npo-audit" in summary and "### Attacks on simnpo-audit" in summary
    assert "| attack | worst variant | model recovery | oracle recovery | uplift vs oracle |" in (
        summary
    )
    assert "| relearn | default | 0.410 | 0.050 | +0.350 |" in summary
    assert "| in_context | priming | 0.200 | 0.000 | +0.100 |" in summary
    assert "| quantize | — | — | — | — |" in summary
    assert "| probes | skipped: no yes/no questions | — | — | — |" in summary
    assert "| relearn | default | 0.410 | — | — |" in summary  # simnpo: no oracle
    assert "- npo-audit worst case: relearn (default): uplift vs oracle +0.350" in summary
    assert "forget quality" not in summary  # no evaluation, so no summary table or verdicts


def test_attack_plot_only_for_runs_with_attacks(
    audit_runs: list[Path], eval_run: Path, tmp_path: Path
):
    plot = attack_plot(load_models(audit_runs))
    assert plot is not None and plot.png.startswith(b"\x89PNG")
    assert attack_plot(load_models([eval_run])) is None


def test_eval_and_audit_runs_render_together(
    audit_runs: list[Path], eval_run: Path, tmp_path: Path
):
    html_path, md_path = write_report([eval_run, audit_runs[0]], tmp_path / "report.html")
    page = html_path.read_text()
    summary_table = page.split("<h2>Summary</h2>")[1].split("</table>")[0]

    assert page.count('<img src="data:image/png;base64,') == 4
    assert "npo-audit" not in summary_table  # an audit has no evaluation figures to list
    assert "relearn" in attacks_section(page)
    assert page.index("<h2>Attacks</h2>") < page.index("<h2>Forget examples</h2>")
    markdown = md_path.read_text()
    assert "- npo: forget quality 0.420, model utility (neighbours) 0.95 × target" in markdown
    assert "npo-audit: forget quality" not in markdown
    assert "| relearn | default | 0.410 | 0.050 | +0.350 |" in markdown


def test_evaluation_that_carries_attacks_shows_both(tmp_path: Path):
    document = evaluation("runs/npo", 0.17, 0.59, 0.42, 0.3, 3, "npo")
    document["attacks"] = audit("runs/npo")["attacks"]
    html_path, _ = write_report([make_run(tmp_path, "npo", document)], tmp_path / "r.html")
    page = html_path.read_text()

    assert "<h2>Summary</h2>" in page and "+0.350" in attacks_section(page)


def test_run_with_neither_splits_nor_attacks_is_an_error(tmp_path: Path):
    run = make_run(tmp_path, "run", {"model": "x", "attacks": None})
    with pytest.raises(ObliviateError, match="has no 'splits' or 'attacks'"):
        write_report([run], tmp_path / "report.html")


def chromium() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")


@pytest.mark.skipif(
    chromium() is None, reason="needs the playwright package and Debian's chromium browser"
)
@pytest.mark.parametrize(("with_eval", "images"), [(False, 1), (True, 4)])
def test_audit_report_renders_in_a_browser_without_errors(
    audit_runs: list[Path], eval_run: Path, tmp_path: Path, with_eval: bool, images: int
):
    from playwright.sync_api import sync_playwright

    runs = [eval_run, *audit_runs] if with_eval else audit_runs
    html_path, _ = write_report(runs, tmp_path / "report.html")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html_path.resolve().as_uri(), wait_until="load")
            widths = page.evaluate(
                "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()

    assert len(widths) == images and all(width > 300 for width in widths), widths
    assert errors == []
