"""Figure helpers shared by the report and validate plots.

Figures come from matplotlib.figure.Figure, not pyplot: saving one needs no backend, so
a notebook's (or any caller's) backend is never switched. Colours: tab10 up to 10
series, tab20 up to 20, then evenly spaced along a perceptual colormap, so no two of
up to a few hundred languages share a colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from climbstream.extras import require


def new_figure(figsize: tuple[float, float], what: str = "plots", **subplots):
    """(figure, axes): one subplot, or the grid `subplots` asks for (Figure.subplots' arguments)."""
    figure = require("matplotlib.figure", f"drawing {what}").Figure(figsize=figsize)
    return figure, figure.subplots(**subplots)


def colors(n: int) -> list:
    """n distinct colours."""
    cm = require("matplotlib", "drawing plots").colormaps
    if n <= 10:
        return [cm["tab10"](i) for i in range(n)]
    if n <= 20:
        return [cm["tab20"](i) for i in range(n)]
    return [cm["turbo"](x) for x in np.linspace(0.05, 0.95, n)]


def legend_beside(ax, entries: int) -> None:
    """The legend to the right of the axes, off the data (columns for long lists)."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              ncol=max(1, -(-entries // 25)))


def save(figure, path: Path | str) -> None:
    """Write a PNG sized to fit what is drawn (legend included)."""
    figure.savefig(path, dpi=100, bbox_inches="tight")
