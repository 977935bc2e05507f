"""`obliviate report`: one self-contained HTML page and a Markdown summary from run directories."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from obliviate.errors import ObliviateError
from obliviate.report import write_report
from obliviate.report.plots import pareto_front

QUESTIONS = [
    ("p000-birthplace", "Where was Enna Nimimere born?", "Hamburg"),
    ("p000-birth_year", "In what year was Enna Nimimere born?", "1935"),
    ("p001-employer", "Which firm did <script>alert(1)</script> & Sons hire?", "Bell & Co"),
    ("p001-spouse", "Who is Oskar Trell's spouse?", "Mira Trell"),
    ("p002-book", "Which novel did Ilse Varga write first?", "The Salt Road"),
    ("p002-award", "Which prize did Ilse Varga win in 1990?", "Golden Quill"),
]


def evaluation(
    model: str,
    forget_accuracy: float,
    utility: float,
    quality: float | None,
    member_shift: float,
    seed: int,
    method: str | None = None,
) -> dict[str, Any]:
    """A results entry with TOFU-like figures; members' attack scores shifted by `member_shift`."""
    rng = np.random.default_rng(seed)
    figures = {
        "forget": {"accuracy": forget_accuracy, "prob": forget_accuracy * 0.9 + 0.05, "n": 31},
        "retain": {"accuracy": 0.9 * utility / 0.6, "prob": 0.88, "rouge_l": 0.9, "n": 100},
        "neighbors": {"accuracy": 0.8, "prob": 0.85, "truth_ratio": None, "n": 79},
        "holdout": {"accuracy": 0.0, "prob": 0.12, "n": 31},
        "world": {"accuracy": 0.57, "prob": 0.4, "n": 60},
    }
    scores = {
        attack: {
            "forget": (rng.normal(member_shift, 1.0, 31)).tolist(),
            "holdout": rng.normal(0.0, 1.0, 31).tolist(),
        }
        for attack in ("loss", "zlib", "mink", "minkpp")
    }
    examples = [
        {
            "id": qid,
            "question": question,
            "answer": answer,
            "generated": answer if index / len(QUESTIONS) < forget_accuracy else "I don't know",
            "correct": index / len(QUESTIONS) < forget_accuracy,
            "rouge_l": 1.0,
        }
        for index, (qid, question, answer) in enumerate(QUESTIONS)
    ]
    return {
        "model": model,
        "method": method,
        "split": "forget10",
        "splits": figures,
        "forget_quality": quality,
        "model_utility": None,  # TOFU's: evaluated without Real Authors and World Facts
        "model_utility_neighbors": utility,
        "mia": {f"{a}_auc": 0.5 + member_shift / 5 for a in ("loss", "zlib", "mink", "minkpp")},
        "mia_scores": scores,
        "privleak": member_shift / 5 / 0.5 if quality is not None else None,
        "cost": {"seconds": 60.0 + seed, "peak_rss_mb": 4000.0, "steps": 32, "tokens": 23223},
        "examples": {"forget": examples},
    }


TARGET = evaluation("runs/target", 1.0, 0.62, 1e-20, 2.0, 1)
ORACLE = evaluation("runs/oracle", 0.0, 0.60, 1.0, 0.0, 2)


def make_run(root: Path, name: str, document: dict[str, Any]) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(document))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    """npo and grad_diff against one target and oracle; simnpo evaluated without an oracle."""
    npo = evaluation("runs/npo", 0.17, 0.59, 0.42, 0.3, 3, "npo")
    npo["reference"] = {"target": TARGET, "oracle": ORACLE}
    grad_diff = evaluation("runs/grad_diff", 0.0, 0.41, 0.03, 0.1, 4, "grad_diff")
    grad_diff["reference"] = {"target": TARGET, "oracle": ORACLE}
    simnpo = evaluation("runs/simnpo", 0.33, 0.61, None, 0.8, 5, "simnpo")
    simnpo["reference"] = {"target": TARGET}
    return [
        make_run(tmp_path, "npo", npo),
        make_run(tmp_path, "grad_diff", grad_diff),
        make_run(tmp_path, "simnpo", simnpo),
    ]


def test_report_holds_every_plot_name_and_escaped_question(runs: list[Path], tmp_path: Path):
    html_path, md_path = write_report(runs, tmp_path / "out" / "report.html")
    page = html_path.read_text()

    assert html_path == tmp_path / "out" / "report.html"
    assert md_path == tmp_path / "out" / "report.md" and md_path.is_file()
    assert page.count('<img src="data:image/png;base64,') == 3
    for name in ("npo", "grad_diff", "simnpo", "target", "oracle"):
        assert f"<b>{name}</b>" in page
    # Shared references are shown once: target and oracle rows in the summary, not three.
    summary = page.split("<h2>Summary</h2>")[1].split("</table>")[0]
    assert summary.count('<tr class="reference">') == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Sons" in page
    assert "<script" not in page
    assert "Bell &amp; Co" in page
    assert not re.search(r"https?://", page)
    # simnpo has no forget quality, so the trade-off plot falls back to forget efficacy.
    assert "forget efficacy, 1 − forget accuracy" in page
    assert "1.00e-20" in summary  # the target's tiny forget quality stays readable
    assert not list(html_path.parent.glob("*.tmp"))


def test_forget_quality_axis_when_every_model_has_one(runs: list[Path], tmp_path: Path):
    html_path, _ = write_report(runs[:2], tmp_path / "report.html")
    assert "up is forget quality (log scale)" in html_path.read_text()


def test_markdown_summary_compares_each_run_with_its_target(runs: list[Path], tmp_path: Path):
    _, md_path = write_report(runs, tmp_path / "report.html")
    summary = md_path.read_text()

    assert "| model | method | forget accuracy ↓ | forget prob ↓ | forget quality ↑ |" in summary
    assert "- npo: forget quality 0.420, model utility (neighbours) 0.95 × target" in summary
    assert "- grad_diff: forget quality 0.0300, model utility (neighbours) 0.66 × target" in summary
    assert "- simnpo: forget quality —, model utility (neighbours) 0.98 × target" in summary
    assert summary.count("\n| ") == 1 + 5  # header and five models
    # TOFU's model utility needs Real Authors and World Facts: no column without them
    assert "| model utility ↑ |" not in summary and "model utility (neighbours) ↑" in summary


def test_tofus_model_utility_and_forget_quality_details_when_the_run_has_them(tmp_path: Path):
    run = evaluation("runs/tofu", 0.1, 0.5, 0.42, 0.2, 9, method="npo")
    run |= {"model_utility": 0.6, "forget_quality_ks": 0.125, "forget_quality_target": 2e-5}
    run["forget_quality_n"] = {"model": 40, "oracle": 40}
    target = TARGET | {"model_utility": 0.64}
    run["reference"] = {"target": target, "oracle": ORACLE}
    _, md_path = write_report([make_run(tmp_path, "tofu", run)], tmp_path / "report.html")
    summary = md_path.read_text()
    assert "| model utility ↑ | model utility (neighbours) ↑ |" in summary
    assert (
        "- tofu: forget quality 0.420 (n = 40 vs 40 oracle; KS 0.125; the target's 2.00e-05), "
        "model utility 0.94 × target"
    ) in summary


def test_run_without_mia_scores_or_examples_still_reports(tmp_path: Path):
    document = {"model": "m", "splits": {"forget": {"accuracy": 0.2}, "retain": {"prob": 0.9}}}
    html_path, md_path = write_report([make_run(tmp_path, "bare", document)], tmp_path / "r.html")
    page = html_path.read_text()

    assert page.count("<img") == 1  # only the per-split bars have figures to draw
    assert "No per-example membership-inference scores" in page
    assert "No forget examples" in page
    assert (
        "bare: forget quality —, model utility (neighbours) — (no target utility to compare)"
        in (md_path.read_text())
    )


def test_distinct_targets_are_named_after_their_runs(tmp_path: Path):
    first = evaluation("runs/a", 0.1, 0.5, None, 0.2, 6)
    first["reference"] = {"target": TARGET}
    second = evaluation("runs/b", 0.2, 0.5, None, 0.2, 7)
    second["reference"] = {"target": evaluation("runs/other-target", 1.0, 0.7, None, 2.0, 8)}
    runs = [make_run(tmp_path, "a", first), make_run(tmp_path, "b", second)]
    _, md_path = write_report(runs, tmp_path / "report.html")
    summary = md_path.read_text()

    assert "| *target (a)* |" in summary and "| *target (b)* |" in summary
    assert "- b: forget quality —, model utility (neighbours) 0.71 × target" in summary


def test_pareto_front_keeps_points_no_other_beats_on_both_axes():
    points = [(0.2, 0.9), (0.5, 0.5), (0.4, 0.4), (0.9, 0.1), (0.5, 0.5), (0.1, 0.1)]
    assert pareto_front(points) == [0, 1, 4, 3]
    assert pareto_front([(0.3, 0.3)]) == [0]
    assert pareto_front([]) == []


def test_missing_results_json_names_the_path(tmp_path: Path):
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(ObliviateError, match=re.escape(str(tmp_path / "empty-run"))):
        write_report([tmp_path / "empty-run"], tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("{not json", "not valid JSON"), ('{"model": "x"}', "has no 'splits'"), ("[]", "no 'splits'")],
)
def test_unusable_results_json_is_an_error(tmp_path: Path, content: str, fragment: str):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(content)
    with pytest.raises(ObliviateError, match=fragment):
        write_report([run], tmp_path / "report.html")


def test_no_runs_is_an_error(tmp_path: Path):
    with pytest.raises(ObliviateError, match="no run directories"):
        write_report([], tmp_path / "report.html")


def chromium() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")


@pytest.mark.skipif(
    chromium() is None, reason="needs the playwright package and Debian's chromium browser"
)
def test_report_renders_in_a_browser_without_errors(runs: list[Path], tmp_path: Path):
    """Rendered by Chromium: no script error, every plot drawn, and the verdict first, a
    banner per run above every table (issue 25)."""
    import json

    from playwright.sync_api import sync_playwright

    from obliviate.evaluation.verdict import verdict

    for run in runs:  # the verdict as eval writes it
        document = json.loads((run / "results.json").read_text())
        document["verdict"] = verdict(document)
        (run / "results.json").write_text(json.dumps(document))
    html_path, _ = write_report(runs, tmp_path / "report.html")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html_path.resolve().as_uri(), wait_until="load")
            widths = page.evaluate(
                "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
            )
            headings = page.evaluate(
                "Array.from(document.querySelectorAll('h2'), h => h.textContent)"
            )
            banners = page.evaluate(
                "Array.from(document.querySelectorAll('.banner'),"
                " b => [b.textContent, b.getBoundingClientRect().top])"
            )
            first_table = page.evaluate(
                "document.querySelector('table').getBoundingClientRect().top"
            )
            screenshot = tmp_path / "report.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert len(widths) == 3
    assert all(width > 300 for width in widths), widths
    assert headings[0] == "Verdict", headings
    assert [text.split(":")[0] for text, _ in banners] == ["npo", "grad_diff", "simnpo"]
    assert banners[0][1] < min(300, first_table)  # the first thing read, in the first screen
    assert errors == []
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 50_000
