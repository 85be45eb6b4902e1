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


def recommendation_table(rec) -> str:
    """Each candidate's predicted mean loss with its 95% ensemble interval, its difference to climb, and the verdict."""
    predicted, diffs = rec.comparison["predicted"], rec.comparison["differences"]
    lines = [f"{'candidate':<18}{'pred mean loss':>15}{'95% interval':>22}{'minus climb':>13}{'95% interval':>22}"]
    for label, p in predicted.items():
        d = diffs.get(f"{label} - climb")
        lines.append(f"{label:<18}{p.value:>15.5f}{f'{p.low:.5f} to {p.high:.5f}':>22}"
                     + (f"{d.value:>+13.5f}{f'{d.low:+.5f} to {d.high:+.5f}':>22}" if d else f"{'-':>13}{'':>22}"))
    lines.append(f"({rec.comparison['replicates']} bootstrap refits over the proxy runs)")
    lines.append(rec.verdict)
    return "\n".join(lines)
