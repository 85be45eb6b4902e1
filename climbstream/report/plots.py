"""The PNG plots of `climbstream report`.

Three figures, one file each, named so that reruns overwrite them:
loss_by_language.png (loss over tokens seen, per language, held-out points if any),
mixture.png (the weights over position, stacked, stage starts marked; the observed token
shares when the log has no weights) and tokens_by_language.png (tokens per language
against what the weights asked for). Drawn on matplotlib Figures, not pyplot, so the
process's backend (a notebook's inline one) is left alone; legends sit beside the axes;
more than 10 languages get distinct colours (report/figure.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from climbstream.report.figure import colors, legend_beside, new_figure, save
from climbstream.formats.loss_log import LossLog

log = logging.getLogger(__name__)

PLOT_FILES = ("loss_by_language.png", "mixture.png", "tokens_by_language.png")


def plot_loss(loss_log: LossLog, arrays: dict, path: Path) -> None:
    fig, ax = new_figure((9, 5))
    palette = colors(len(arrays["languages"]))
    for j, name in enumerate(arrays["languages"]):
        keep = ~np.isnan(arrays["loss_mean"][:, j])
        line, = ax.plot(arrays["tokens_total"][keep, j], arrays["loss_mean"][keep, j], label=name, color=palette[j])
        held = [r for r in loss_log.of_kind("heldout") if r["lang"] == name and r["loss_mean"] is not None]
        if held:
            at = {int(s): i for i, s in enumerate(arrays["step"])}
            xs = [arrays["tokens_total"][at[r["step"]], j] if r["step"] in at else np.nan for r in held]
            ax.scatter(xs, [r["loss_mean"] for r in held], color=line.get_color(), marker="x")
    ax.set_xlabel("tokens seen (language)")
    ax.set_ylabel("mean training loss (x: held-out)")
    ax.set_title("per-language loss")
    legend_beside(ax, len(arrays["languages"]))
    save(fig, path)


def plot_mixture(arrays: dict, path: Path) -> None:
    weights = arrays["weight"]
    label = "weight"
    if np.isnan(weights).all():
        interval = arrays["tokens_interval"].astype(float)
        sums = interval.sum(axis=1, keepdims=True)
        weights = np.divide(interval, sums, out=np.zeros_like(interval), where=sums > 0)
        label = "observed token share"
    use_position = (arrays["position"] >= 0).all()
    x = arrays["position"] if use_position else arrays["step"]
    fig, ax = new_figure((9, 5))
    # A flush's weight covers the interval that ends at its position: draw it leftwards,
    # from 0 for the first flush.
    ax.stackplot(np.concatenate([[0], x]), np.nan_to_num(np.vstack([weights[:1], weights])).T,
                 labels=list(arrays["languages"]), step="pre", colors=colors(len(arrays["languages"])))
    stages = arrays["stage"]
    for i in range(1, len(stages)):
        if stages[i] != stages[i - 1]:
            ax.axvline(x[i - 1], color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("position" if use_position else "step")
    ax.set_ylabel(label)
    ax.set_ylim(0, 1)
    ax.set_title("mixture over time (dashed: new stage)")
    legend_beside(ax, len(arrays["languages"]))
    save(fig, path)


def plot_tokens(arrays: dict, path: Path) -> None:
    fig, ax = new_figure((max(8, 0.35 * len(arrays["languages"])), 4))
    names = list(arrays["languages"])
    total = arrays["tokens_total"][-1] if len(arrays["step"]) else np.zeros(len(names))
    ax.bar(names, total, color=colors(len(names)), label="trained on")
    target = target_tokens(arrays)
    if target is not None:
        ax.scatter(names, target, marker="_", s=400, color="black", zorder=3, label="asked for by the weights")
        ax.legend(fontsize="small")
    ax.set_ylabel("tokens")
    ax.set_title("tokens per language")
    ax.tick_params(axis="x", rotation=90 if len(names) > 12 else 0)
    save(fig, path)


def target_tokens(arrays: dict) -> np.ndarray | None:
    """Tokens per language the weights in effect asked for: each flush's weights times its
    interval's tokens, summed (None when the log has no weights)."""
    weights = arrays["weight"]
    if np.isnan(weights).all():
        return None
    interval = arrays["tokens_interval"].astype(float).sum(axis=1, keepdims=True)
    return np.nansum(np.nan_to_num(weights) * interval, axis=0)


def write_plots(loss_log: LossLog, out_dir: str | Path) -> list[Path]:
    """Draw the three figures into `out_dir` (created) and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = loss_log.arrays()
    paths = [out / name for name in PLOT_FILES]
    plot_loss(loss_log, arrays, paths[0])
    plot_mixture(arrays, paths[1])
    plot_tokens(arrays, paths[2])
    log.debug("wrote %s", ", ".join(map(str, paths)))
    return paths
