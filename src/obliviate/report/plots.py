"""The report's figures, drawn with matplotlib and returned as PNG bytes.

Figures are built from ``matplotlib.figure.Figure`` with an Agg canvas, never through
pyplot, so drawing a report touches no global backend or figure registry of the process
that calls it (a notebook, the CLI, a test) and leaves nothing open behind it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from sklearn.metrics import auc, roc_curve

from obliviate.report.load import ROC_ATTACK, SPLITS, Attack, ReportModel
from obliviate.report.summary import utility_figure

#: Runs take these in turn; grey and green are kept for the target and the oracle.
RUN_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
)
ROLE_STYLE = {"target": ("#6b6b6b", "s"), "oracle": ("#2ca02c", "*")}
DPI = 110


@dataclass(frozen=True)
class Plot:
    """A drawn figure and the sentence under it that says how to read it."""

    title: str
    png: bytes
    caption: str


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher is better), by x.

    A point is dominated when another is at least as good on both axes and strictly better
    on one; equal points do not dominate each other, so both stay on the front.
    """

    def dominated(p: tuple[float, float]) -> bool:
        return any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points)

    front = [i for i, p in enumerate(points) if not dominated(p)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def style(models: list[ReportModel]) -> dict[str, tuple[str, str]]:
    """Colour and marker of each model, the same in every figure."""
    runs = [m for m in models if m.role == "run"]
    styles = {m.name: (RUN_COLORS[i % len(RUN_COLORS)], "o") for i, m in enumerate(runs)}
    return styles | {m.name: ROLE_STYLE[m.role] for m in models if m.role != "run"}


def tradeoff_plot(models: list[ReportModel]) -> Plot | None:
    """Forget quality (or efficacy) against model utility, with the runs' Pareto front.

    The utility is TOFU's where every model has it, else ours with neighbours
    (``summary.utility_figure``).

    TOFU's plot puts forget quality on a log scale; when some model has none (no oracle was
    evaluated) the y axis falls back to forget efficacy, 1 − forget accuracy, for all.
    """
    utility = utility_figure(models)
    with_utility = [m for m in models if m.figure(*utility.path) is not None]
    use_quality = bool(with_utility) and all(
        m.figure("forget_quality") is not None for m in with_utility
    )
    points: list[tuple[ReportModel, float, float]] = []
    for model in with_utility:
        if use_quality:
            y = max(model.figure("forget_quality") or 0.0, np.finfo(float).tiny)
        else:
            accuracy = model.split("forget", "accuracy")
            if accuracy is None:
                continue
            y = 1.0 - accuracy
        points.append((model, model.figure(*utility.path) or 0.0, y))
    if not points:
        return None

    figure = _new_figure(figsize=(7.5, 4.8))
    axes = figure.add_subplot()
    styles = style(models)
    for model, x, y in points:
        color, marker = styles[model.name]
        size = 160 if marker == "*" else 70
        axes.scatter(x, y, s=size, color=color, marker=marker, edgecolor="black", zorder=3)
    runs = [(x, y) for model, x, y in points if model.role == "run"]
    front = [runs[i] for i in pareto_front(runs)]
    if len(front) > 1:
        axes.plot(*zip(*front, strict=True), "--", color="#444444", lw=1, zorder=2)
    axes.set_xlabel(f"{utility.label} →")
    axes.margins(x=0.15)
    if use_quality:
        axes.set_yscale("log")
        axes.set_ylabel("forget quality (KS p-value, log) →")
        # Forget quality is at most 1; the room above it is for the labels.
        decades = max(-np.log10(min(y for _, _, y in points)), 1.0)
        axes.set_ylim(10 ** -(decades * 1.08), 10 ** (decades * 0.1))
    else:
        axes.set_ylabel("forget efficacy (1 − forget accuracy) →")
        axes.set_ylim(-0.08, 1.12)
    axes.grid(True, alpha=0.3, which="major")
    labels = [
        (m.name, x, y, styles[m.name][0] if m.role == "run" else "black") for m, x, y in points
    ]
    _label_points(figure, axes, labels, front if len(front) > 1 else [])
    plotted = {m.name for m, _, _ in points}
    left_out = [m.name for m in models if m.evaluated and m.name not in plotted]
    axis = "forget quality (log scale)" if use_quality else "forget efficacy, 1 − forget accuracy"
    caption = (
        f"Each model is a point: right keeps more utility, up is {axis}; upper right is best, "
        "the dashed line joins the runs no other run beats on both axes (the Pareto front), "
        "and the square and star mark the target and the oracle."
    )
    if left_out:
        caption += f" Not plotted (figures missing): {', '.join(left_out)}."
    return Plot("Forgetting against utility", _png(figure), caption)


#: Where a point's label may go, in points from it, tried in turn: right, left, above, below.
LABEL_PLACES = (
    (7, 5, "left", "bottom"),
    (7, -5, "left", "top"),
    (-7, 5, "right", "bottom"),
    (-7, -5, "right", "top"),
    (0, 9, "center", "bottom"),
    (0, -9, "center", "top"),
    (14, 0, "left", "center"),
    (-14, 0, "right", "center"),
)


def _label_points(
    figure: Figure,
    axes: Axes,
    labels: list[tuple[str, float, float, str]],
    line: list[tuple[float, float]],
) -> None:
    """Name each point at the first place that stays inside the axes and overlaps the
    fewest markers, labels already placed and stretches of ``line`` (the Pareto front).

    Points of a trade-off plot cluster (good runs sit near the oracle), so a fixed offset
    would stack their names on top of each other.
    """
    figure.draw_without_rendering()  # settle the layout, so display positions are final
    renderer = figure.canvas.get_renderer()
    frame = axes.get_window_extent(renderer)
    pixels = figure.dpi / 72

    def around(points: np.ndarray, radius: float) -> list[Bbox]:
        return [Bbox.from_bounds(x - radius, y - radius, 2 * radius, 2 * radius) for x, y in points]

    taken = around(axes.transData.transform([(x, y) for _, x, y, _ in labels]), 6 * pixels)
    for start, end in itertools.pairwise(axes.transData.transform(line)):
        taken += around(np.linspace(start, end, 24), 1.5 * pixels)

    def placed(name: str, x: float, y: float, place: tuple[int, int, str, str]) -> Bbox:
        text = _annotate(axes, name, x, y, "black", place)
        box = text.get_window_extent(renderer)
        text.remove()
        return box

    def badness(box: Bbox) -> tuple[bool, int]:
        inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
        return not inside, sum(box.overlaps(other) for other in taken)

    for name, x, y, color in labels:
        boxes = [placed(name, x, y, place) for place in LABEL_PLACES]
        best = min(range(len(boxes)), key=lambda i: (badness(boxes[i]), i))
        taken.append(boxes[best])
        _annotate(axes, name, x, y, color, LABEL_PLACES[best])


def _annotate(
    axes: Axes, name: str, x: float, y: float, color: str, place: tuple[int, int, str, str]
) -> Text:
    dx, dy, ha, va = place
    text = axes.annotate(
        name,
        (x, y),
        xytext=(dx, dy),
        textcoords="offset points",
        ha=ha,
        va=va,
        fontsize=9,
        color=color,
    )
    text.set_in_layout(False)  # labels must not move the axes they were placed in
    return text


def split_bars(models: list[ReportModel]) -> Plot | None:
    """Accuracy and gold-answer probability per split, one bar per evaluated model (a run
    that was only audited takes no slot)."""
    styles = style(models)
    models = [m for m in models if m.evaluated]
    splits = [
        s for s in SPLITS if any(isinstance(m.results["splits"].get(s), dict) for m in models)
    ]
    metrics = ("accuracy", "prob")
    if not any(m.split(s, k) is not None for m in models for s in splits for k in metrics):
        return None
    figure = _new_figure(figsize=(9, 6.2))
    panels = figure.subplots(2, 1, sharex=True)
    width = 0.8 / len(models)
    positions = np.arange(len(splits))
    for axes, metric in zip(panels, metrics, strict=True):
        for index, model in enumerate(models):
            values = [model.split(s, metric) for s in splits]
            shown = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
            if not shown:
                continue
            xs, heights = zip(*shown, strict=True)
            offset = (index - (len(models) - 1) / 2) * width
            color = styles[model.name][0]
            # The edge keeps a bar of height 0 visible as a stub, unlike a missing figure.
            axes.bar(
                np.array(xs) + offset,
                heights,
                width,
                color=color,
                edgecolor=color,
                lw=1.5,
                label=model.name,
            )
        axes.axhline(0, color="black", lw=0.8)
        axes.set_ylim(-0.03, 1.05)
        axes.set_ylabel(metric)
        axes.grid(True, axis="y", alpha=0.3)
        axes.set_axisbelow(True)
    panels[-1].set_xticks(positions, splits)
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncol=min(len(labels), 5))
    caption = (
        "Top: share of greedy answers that contain the gold answer; bottom: probability of "
        "the gold answer. The aim is forget low (like the oracle) while retain, neighbors "
        "and world stay where the target is."
    )
    return Plot("Accuracy and probability per split", _png(figure), caption)


def roc_plot(models: list[ReportModel]) -> Plot | None:
    """ROC curves of the Min-K%++ attack: forget answers positive, holdout negative."""
    curves = [(m, m.attack_scores(ROC_ATTACK)) for m in models]
    curves = [(m, scores) for m, scores in curves if scores is not None]
    if not curves:
        return None
    figure = _new_figure(figsize=(5.0, 4.7))
    axes = figure.add_subplot()
    styles = style(models)
    for model, (members, nonmembers) in curves:
        labels = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
        fpr, tpr, _ = roc_curve(labels, np.r_[members, nonmembers])
        color = styles[model.name][0]
        axes.plot(fpr, tpr, color=color, lw=2, label=f"{model.name} (AUC {auc(fpr, tpr):.2f})")
    axes.plot([0, 1], [0, 1], ":", color="#888888", label="chance (AUC 0.50)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_aspect("equal")
    axes.set_xlabel("false positive rate (holdout flagged as member)")
    axes.set_ylabel("true positive rate (forget flagged as member)")
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(True, alpha=0.3)
    caption = (
        "How well the Min-K%++ attack tells forget answers (members) from holdout answers "
        "(never trained on): a curve on the diagonal means the forget set looks no more "
        "familiar than unseen data, as it does to the oracle; a bow to the upper left means "
        "membership still shows."
    )
    return Plot("Membership inference (Min-K%++ ROC)", _png(figure), caption)


def attack_plot(models: list[ReportModel]) -> Plot | None:
    """Each audit attack's worst-variant recovery for every audited run, beside its oracle's.

    The oracle never learned the forget set, so what the identical attack brings back from
    it is the attack's own doing (a guess, a context that gives the answer away); a run's
    bar far above its oracle's means unlearning hid the knowledge rather than removed it.
    """
    styles = style(models)
    audited = [m for m in models if m.attacks]
    names = list(dict.fromkeys(a.name for m in audited for a in m.attacks))
    series = []
    for model in audited:
        by_name = {a.name: a for a in model.attacks}
        color = styles[model.name][0]
        for label, hatched in ((model.name, False), (f"{model.name}: oracle", True)):
            values = [_recovery(by_name.get(name), oracle=hatched) for name in names]
            if any(v is not None for v in values):
                series.append((label, values, color, hatched))
    if not series:
        return None

    figure = _new_figure(figsize=(max(6.5, 2.0 + 1.4 * len(names)), 4.6))
    axes = figure.add_subplot()
    width = 0.8 / len(series)
    positions = np.arange(len(names))
    for index, (label, values, color, hatched) in enumerate(series):
        shown = [(p, v) for p, v in zip(positions, values, strict=True) if v is not None]
        xs, heights = zip(*shown, strict=True)
        offset = (index - (len(series) - 1) / 2) * width
        # The edge keeps a recovery of 0 visible as a stub, unlike a missing figure.
        axes.bar(
            np.array(xs) + offset,
            heights,
            width,
            color="white" if hatched else color,
            edgecolor=color,
            hatch="///" if hatched else None,
            lw=1.5,
            label=label,
        )
    figures = [v for _, values, _, _ in series for v in values if v is not None]
    axes.axhline(0, color="black", lw=0.8)
    # Recovery is a fraction of the way back to the target; one beyond 0..1 widens the axis.
    axes.set_ylim(min(-0.03, min(figures) - 0.03), max(1.05, max(figures) + 0.05))
    axes.set_ylabel("recovery (0 = stays forgotten, 1 = back to the target)")
    axes.set_xticks(positions, names)
    axes.set_xlim(-0.5, len(names) - 0.5)  # an attack without figures keeps its place
    axes.grid(True, axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncol=min(len(labels), 4))
    caption = (
        "How much of the forget accuracy each attack brings back, at its worst variant: solid "
        "bars are the unlearned models, hatched bars the oracle under the identical attack. "
        "A solid bar well above its hatched one is knowledge that unlearning hid rather than "
        "removed."
    )
    return Plot("Recovery under attack", _png(figure), caption)


def _recovery(attack: Attack | None, oracle: bool) -> float | None:
    if attack is None:
        return None
    return attack.oracle_recovery if oracle else attack.recovery


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas, outside pyplot's registry."""
    figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    """PNG bytes without matplotlib's software tag (its URL has no place in the report)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    figure.clear()
    return buffer.getvalue()
