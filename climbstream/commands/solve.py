"""`climbstream solve`: language ratios for a budget by one method (Climb or a baseline)."""

from __future__ import annotations

import argparse
import json

HELP = "solve language ratios for a token budget (climb, isolated, msl, natural, uniform, temperature, unimax)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", required=True,
                        choices=["natural", "uniform", "temperature", "unimax", "msl", "isolated", "climb"])
    parser.add_argument("--counts", required=True, help="climbstream-manifest.json or a {NAME: tokens} YAML")
    parser.add_argument("--budget", required=True, type=float, help="training tokens to allocate")
    parser.add_argument("--max-epochs", type=float, default=8.0, help="epoch cap per language (default 8)")
    parser.add_argument("--floor", type=float, default=None, help="least share per language (default 0.1/K)")
    parser.add_argument("--law", help="law YAML from 'climbstream fit' (climb, isolated, msl; optional otherwise)")
    parser.add_argument("--temperature-alpha", type=float, default=0.3, help="alpha = 1/T for --method temperature")
    parser.add_argument("--allow-infeasible", action="store_true", help="write a flagged allocation when caps cannot fill the budget")
    parser.add_argument("--out", help="write the allocation here (.yaml or .json)")
    parser.add_argument("--json", action="store_true", help="print the allocation as JSON")


def run(args: argparse.Namespace) -> int:
    from climbstream.mixture.inputs import read_counts
    from climbstream.mixture.laws import load_law
    from climbstream.mixture.solver import allocate
    from climbstream.mixture.tables import allocation_table

    counts = read_counts(args.counts)
    law = load_law(args.law) if args.law else None
    params = {"alpha": args.temperature_alpha} if args.method == "temperature" else None
    alloc = allocate(args.method, counts, args.budget, e_max=args.max_epochs, floor=args.floor, law=law,
                     params=params, allow_infeasible=args.allow_infeasible)
    if args.out:
        alloc.save(args.out)
    print(json.dumps(alloc.to_dict(), indent=2) if args.json else allocation_table(alloc))
    return 0
