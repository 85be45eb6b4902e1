"""The text summary `climbstream report` prints: final loss, tokens and weight per language.

Pure: a LossLog in, a string out, so it is tested without a terminal.
"""

from __future__ import annotations

import math

import numpy as np

from climbstream.formats.loss_log import LossLog


def _stages(arrays: dict) -> list[tuple[object, int | None, int]]:
    """(stage, last step before it, start position) for each change of stage, in order.

    A flush covers the interval that ends at its position, so a stage first seen at flush
    i started where flush i - 1 ended (0 for the first): the start the checkpoint records
    when stages change at flush boundaries, as the training loop's do (the first flush's
    own position, 2080 instead of 1920 in one run, is where the stage had already run a
    whole interval). The mixture plot marks the same place.
    """
    out = []
    previous = (None, 0)
    for stage, step, position in zip(arrays["stage"], arrays["step"], arrays["position"]):
        if not out or out[-1][0] != stage:
            out.append((stage, previous[0], previous[1] if position >= 0 else -1))
        previous = (int(step), int(position))
    return out


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def summarize(loss_log: LossLog) -> str:
    """A short, fixed-layout summary of a loss log."""
    arrays = loss_log.arrays()
    langs = list(arrays["languages"])
    if not langs or arrays["step"].size == 0:
        return f"loss log {loss_log.source}: no language records"
    steps, positions = arrays["step"], arrays["position"]
    total = arrays["tokens_total"][-1]
    lines = [f"loss log {loss_log.source}: {steps.size} flushes, steps {steps[0]}..{steps[-1]}, "
             f"last position {positions[-1] if positions[-1] >= 0 else '-'}, {int(total.sum()):,} tokens"]
    stages = _stages(arrays)
    lines.append("stages: " + ", ".join(
        f"{stage if stage is not None else '-'} (from "
        f"{f'position {pos}' if pos >= 0 else 'the start of the log'}{f', after step {step}' if step is not None else ''})"
        for stage, step, pos in stages))
    heldout = {}
    for r in loss_log.of_kind("heldout"):
        heldout[r["lang"]] = r["loss_mean"]  # records are in step order: the last one wins
    width = max(8, *(len(n) for n in langs))
    header = f"{'language':<{width}}  {'final loss':>10}  {'tokens':>15}  {'share':>6}  {'weight':>6}"
    lines += [header + ("  heldout" if heldout else ""), "-" * (len(header) + (9 if heldout else 0))]
    for j, name in enumerate(langs):
        known = ~np.isnan(arrays["loss_mean"][:, j])
        final = arrays["loss_mean"][known, j][-1] if known.any() else math.nan
        share = total[j] / total.sum() if total.sum() else math.nan
        line = (f"{name:<{width}}  {_fmt(final):>10}  {int(total[j]):>15,}  {_fmt(share, 3):>6}  "
                f"{_fmt(arrays['weight'][-1, j], 3):>6}")
        lines.append(line + (f"  {_fmt(heldout.get(name))}" if heldout else ""))
    return "\n".join(lines)
