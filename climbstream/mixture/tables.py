"""Plain-text tables for the CLI (pure string formatting; the commands print them)."""

from __future__ import annotations

from climbstream.mixture.allocation import Allocation


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def allocation_table(alloc: Allocation) -> str:
    """One row per language: ratio, tokens, epochs, cap, binding, predicted loss."""
    lines = [f"method {alloc.method}, budget {alloc.budget_tokens:.6g} tokens, "
             f"e_max {alloc.caps['e_max']:g}, floor {alloc.caps['floor']}",
             f"{'language':<10}{'ratio':>9}{'tokens':>14}{'epochs':>8}{'cap':>8}{'binding':>9}{'pred_loss':>11}"]
    for name, a in alloc.languages.items():
        lines.append(f"{name:<10}{a.ratio:>9.4f}{a.tokens:>14.0f}{a.epochs:>8.2f}{a.cap:>8.3f}"
                     f"{'yes' if a.binding else '':>9}{_fmt(a.pred_loss, '.4f'):>11}")
    lines.append(f"predicted mean loss: {_fmt(alloc.pred_mean_loss, '.5f')}")
    if "polished" in alloc.params:
        p, t = alloc.params["polished"], alloc.params["two_step"]
        lines.append(f"F two-step {t['F']:.6f}, polished ({p['method']}) {p['F']:.6f}")
    return "\n".join(lines)


def comparison_table(allocations: dict[str, Allocation]) -> str:
    """Methods side by side: ratio per language, then predicted mean loss."""
    methods = list(allocations)
    names = list(next(iter(allocations.values())).languages) if allocations else []
    lines = [f"{'language':<10}" + "".join(f"{m:>12}" for m in methods)]
    for n in names:
        lines.append(f"{n:<10}" + "".join(f"{allocations[m].languages[n].ratio:>12.4f}" for m in methods))
    lines.append(f"{'pred mean':<10}" + "".join(f"{_fmt(allocations[m].pred_mean_loss, '.5f'):>12}" for m in methods))
    return "\n".join(lines)
