"""Figures against a growing request: one line per figure, over steps or forget-set sizes.

MUSE's last two criteria ask how unlearning holds up as removal requests grow (scale)
and as they keep coming (sequence). Both are read the same way: each figure as a line
over the requests, the oracle's as a dotted line of the same colour beside the model's.
Drawn in the report's style (``plots``): a figure on its own Agg canvas, PNG bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from obliviate.report.plots import RUN_COLORS, Plot, _new_figure, _png

#: Line style, width and marker size of each kind of series.
LINES = {"model": ("-", 2.0, 6.0), "oracle": (":", 1.4, 6.0), "part": ("--", 1.0, 3.5)}


@dataclass(frozen=True)
class Series:
    """One line: a value per position (None where there is none)."""

    label: str
    values: list[float | None]
    color: int = 0
    """Index into the report's run colours; the oracle's line takes its model's."""
    kind: str = "model"
    """``model`` (solid), ``oracle`` (dotted, hollow markers: the yardstick) or ``part``
    (thin and dashed: the figure on a part of the data, such as one request's people)."""


@dataclass(frozen=True)
class Panel:
    """One set of axes: its lines, the y axis label and limits, and a band to stay within."""

    ylabel: str
    series: list[Series]
    ylim: tuple[float, float] = (-0.03, 1.05)
    band: tuple[float, float] | None = None
    band_label: str = ""


def growth_plot(
    positions: list[str], panels: list[Panel], title: str, xlabel: str, caption: str
) -> Plot:
    """Panels side by side, every line drawn against ``positions`` (steps or sizes)."""
    figure = _new_figure(figsize=(5.2 * len(panels), 4.4))
    axes_list = np.atleast_1d(figure.subplots(1, len(panels), squeeze=False)[0])
    xs = np.arange(len(positions))
    for axes, panel in zip(axes_list, panels, strict=True):
        if panel.band is not None:
            axes.axhspan(*panel.band, color="#2ca02c", alpha=0.12, lw=0, label=panel.band_label)
        for series in panel.series:
            shown = [(x, v) for x, v in zip(xs, series.values, strict=True) if v is not None]
            if not shown:
                continue
            color = RUN_COLORS[series.color % len(RUN_COLORS)]
            px, py = zip(*shown, strict=True)
            line, width, size = LINES[series.kind]
            axes.plot(
                px,
                py,
                line,
                marker="o",
                markersize=size,
                color=color,
                markerfacecolor="white" if series.kind == "oracle" else color,
                lw=width,
                label=series.label,
            )
        lows = [v for s in panel.series for v in s.values if v is not None]
        low = min([panel.ylim[0], *(v - 0.03 for v in lows)])
        high = max([panel.ylim[1], *(v + 0.05 for v in lows)])
        axes.set_ylim(low, high)
        axes.axhline(0, color="black", lw=0.8)
        axes.set_xticks(xs, positions)
        axes.set_xlim(-0.3, len(positions) - 0.7)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(panel.ylabel)
        axes.grid(True, alpha=0.3)
        axes.set_axisbelow(True)
        axes.legend(fontsize=7, loc="best")
    figure.suptitle(title)
    return Plot(title, _png(figure), caption)
