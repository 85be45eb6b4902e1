"""The PNG plots of `climbstream report`, drawn with matplotlib's Agg backend.

Three figures, one file each, named so that reruns overwrite them:
loss_by_language.png (loss over tokens seen, per language, held-out points if any),
mixture.png (the weights over position, stacked, stage starts marked; the observed token
shares when the log has no weights) and tokens_by_language.png (tokens per language).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from climbstream.train.loss_log import LossLog

log = logging.getLogger(__name__)

PLOT_FILES = ("loss_by_language.png", "mixture.png", "tokens_by_language.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_loss(loss_log: LossLog, arrays: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for j, name in enumerate(arrays["languages"]):
        keep = ~np.isnan(arrays["loss_mean"][:, j])
        line, = ax.plot(arrays["tokens_total"][keep, j], arrays["loss_mean"][keep, j], label=name)
        held = [r for r in loss_log.of_kind("heldout") if r["lang"] == name and r["loss_mean"] is not None]
        if held:
            at = {int(s): i for i, s in enumerate(arrays["step"])}
            xs = [arrays["tokens_total"][at[r["step"]], j] if r["step"] in at else np.nan for r in held]
            ax.scatter(xs, [r["loss_mean"] for r in held], color=line.get_color(), marker="x")
    ax.set_xlabel("tokens seen (language)")
    ax.set_ylabel("mean training loss (x: held-out)")
    ax.set_title("per-language loss")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_mixture(arrays: dict, path: Path) -> None:
    plt = _pyplot()
    weights = arrays["weight"]
    label = "weight"
    if np.isnan(weights).all():
        interval = arrays["tokens_interval"].astype(float)
        sums = interval.sum(axis=1, keepdims=True)
        weights = np.divide(interval, sums, out=np.zeros_like(interval), where=sums > 0)
        label = "observed token share"
    use_position = (arrays["position"] >= 0).all()
    x = arrays["position"] if use_position else arrays["step"]
    fig, ax = plt.subplots(figsize=(8, 5))
    # A flush's weight covers the interval that ends at its position: draw it leftwards,
    # from 0 for the first flush.
    ax.stackplot(np.concatenate([[0], x]), np.nan_to_num(np.vstack([weights[:1], weights])).T,
                 labels=list(arrays["languages"]), step="pre")
    stages = arrays["stage"]
    for i in range(1, len(stages)):
        if stages[i] != stages[i - 1]:
            ax.axvline(x[i - 1], color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("position" if use_position else "step")
    ax.set_ylabel(label)
    ax.set_ylim(0, 1)
    ax.set_title("mixture over time (dashed: new stage)")
    ax.legend(fontsize="small", ncol=2, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_tokens(arrays: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(arrays["languages"])
    total = arrays["tokens_total"][-1] if len(arrays["step"]) else np.zeros(len(names))
    ax.bar(names, total)
    ax.set_ylabel("tokens trained on")
    ax.set_title("tokens per language")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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
