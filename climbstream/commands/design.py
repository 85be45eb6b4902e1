"""`climbstream design`: seeded proxy-run mixtures over the simplex (for a sweep)."""

from __future__ import annotations

import argparse

HELP = "write N seeded proxy-run mixtures (dirichlet, lhs, corners), optionally within epoch caps and floors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--langs", required=True, help="comma-separated language names, e.g. en,fr,ja")
    parser.add_argument("--runs", required=True, type=int, help="number of mixtures")
    parser.add_argument("--method", choices=["dirichlet", "lhs", "corners"], default="dirichlet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--counts", help="manifest or {NAME: tokens} YAML, to respect epoch caps")
    parser.add_argument("--budget", type=float, help="tokens per proxy run (with --counts)")
    parser.add_argument("--max-epochs", type=float, default=8.0)
    parser.add_argument("--floor", type=float, default=None, help="least share per language (default none)")
    parser.add_argument("--out", required=True, help="FILE.yaml or FILE.csv")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from climbstream.errors import ConfigError
    from climbstream.mixture.design import design_mixtures, save_design
    from climbstream.mixture.inputs import feasible_set, read_counts

    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if len(set(langs)) != len(langs) or not langs:
        raise ConfigError(f"--langs {args.langs!r}: give distinct, non-empty language names")
    floors = caps = None
    if args.counts:
        if args.budget is None:
            raise ConfigError("--counts needs --budget (tokens per proxy run) to turn epochs into shares")
        counts = read_counts(args.counts)
        missing = [n for n in langs if n not in counts]
        if missing:
            raise ConfigError(f"{args.counts}: no token count for languages {missing}")
        box = feasible_set({n: counts[n] for n in langs}, args.budget, e_max=args.max_epochs,
                           floor=0.0 if args.floor is None else args.floor, names=langs)
        floors, caps = box.floors, box.caps
    elif args.floor is not None:
        floors, caps = np.full(len(langs), args.floor), np.ones(len(langs))
    ratios = design_mixtures(args.runs, len(langs), args.method, args.seed, floors=floors, caps=caps)
    save_design(args.out, langs, ratios, method=args.method, seed=args.seed)
    print(f"wrote {len(ratios)} {args.method} mixtures over {len(langs)} languages to {args.out}")
    return 0
