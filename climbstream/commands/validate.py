"""`climbstream validate`: CV error of every law and every method's allocation under one law."""

from __future__ import annotations

import argparse
import json

HELP = "cross-validate climb/isolated/MSL laws and compare all methods' allocations under the climb law"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", help="runs table (.csv or .json)")
    parser.add_argument("--counts", help="manifest or {NAME: tokens} YAML (needed for allocations)")
    parser.add_argument("--budget", type=float, help="tokens to allocate (default: the runs' largest token count)")
    parser.add_argument("--max-epochs", type=float, default=8.0)
    parser.add_argument("--floor", type=float, default=None, help="least share per language (default 0.1/K)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="directory for report.json, interactions.png, allocations.png, *.yaml")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _plots(report: dict, out) -> None:
    """interactions.png (the fitted W) and allocations.png (ratios; predicted loss above the best)."""
    import numpy as np

    from climbstream.report.figure import colors, new_figure, save

    law = report["law"]
    fig, ax = new_figure((5.5 + 0.1 * law.K, 4.5 + 0.1 * law.K), "validate plots")
    im = ax.imshow(law.W - np.eye(law.K), cmap="viridis", vmin=0.0)
    ax.set_xticks(range(law.K), law.languages, rotation=90 if law.K > 12 else 0)
    ax.set_yticks(range(law.K), law.languages)
    ax.set_xlabel("from language j")
    ax.set_ylabel("to language i")
    ax.set_title("fitted transfer W_ij (diagonal = 1 not shown)")
    fig.colorbar(im, ax=ax)
    save(fig, out / "interactions.png")
    allocs = report["allocations"]
    if allocs:
        names = list(next(iter(allocs.values())).languages)
        fig, (a1, a2) = new_figure((12, 4.5), "validate plots", ncols=2, width_ratios=[2, 1])
        width = 0.8 / len(allocs)
        palette = colors(len(allocs))
        for m, (method, alloc) in enumerate(allocs.items()):
            a1.bar(np.arange(len(names)) + m * width, [alloc.languages[n].ratio for n in names], width,
                   label=method, color=palette[m])
        a1.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=90 if len(names) > 12 else 0)
        a1.set_ylabel("ratio")
        a1.legend(fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.01), ncol=min(len(allocs), 7))
        best = min(a.pred_mean_loss for a in allocs.values())
        # The excess over the best method, from 0 and written on each bar: an axis cut at 1.32
        # made 0.01 nats look like half the bar.
        excess = [a.pred_mean_loss - best for a in allocs.values()]
        bars = a2.bar(list(allocs), excess, color=palette)
        a2.bar_label(bars, labels=[f"+{e:.4f}" for e in excess], fontsize=6, rotation=90, padding=2)
        a2.set_ylim(0, max(max(excess) * 1.3, 1e-6))
        a2.set_ylabel("predicted mean loss above the best, nats")
        a2.set_title(f"fitted climb law (best {best:.4f})", fontsize="medium")
        a2.tick_params(axis="x", rotation=45)
        save(fig, out / "allocations.png")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from climbstream.mixture.inputs import read_counts
    from climbstream.mixture.laws import save_law
    from climbstream.mixture.runs import load_runs
    from climbstream.mixture.tables import comparison_table
    from climbstream.mixture.validation import summary, validate_runs

    runs = load_runs(args.runs)
    counts = read_counts(args.counts) if args.counts else None
    report = validate_runs(runs, counts, args.budget, e_max=args.max_epochs, floor=args.floor,
                           folds=args.folds, seed=args.seed, progress=not args.quiet)
    data = summary(report)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(data, indent=2))
        for kind, law in report["laws"].items():
            save_law(law, out / f"law-{kind}.yaml")
        for method, alloc in report["allocations"].items():
            alloc.save(out / f"allocation-{method}.yaml")
        _plots(report, out)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    cv = report["cv"]
    print(f"{args.folds}-fold CV by run (seed {args.seed}), {cv['climb']['metric']}:")
    for kind in ("climb", "isolated", "msl"):
        print(f"  {kind:<9}{cv[kind]['mae_nats']:.4f}")
    if report["allocations"]:
        print("\nallocations and predicted loss under the fitted climb law (same caps and floors):")
        print(comparison_table(report["allocations"]))
    else:
        print("\n(no --counts given: allocations skipped)")
    if args.out:
        print(f"\nwrote {args.out}/report.json, interactions.png, allocations.png, laws and allocations")
    return 0
