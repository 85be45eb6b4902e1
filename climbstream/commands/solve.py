"""`climbstream solve`: language ratios for a budget by one method (Climb or a baseline)."""

from __future__ import annotations

import argparse
import json

HELP = ("solve language ratios for a token budget (climb, isolated, msl, natural, uniform, temperature, unimax), "
        "or --recommend: climb only where the law's ensemble puts it ahead of every baseline")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default=None,
                        choices=["natural", "uniform", "temperature", "unimax", "msl", "isolated", "climb"],
                        help="the method (required unless --recommend, which judges climb)")
    parser.add_argument("--counts", required=True, help="climbstream-manifest.json or a {NAME: tokens} YAML")
    parser.add_argument("--budget", required=True, type=float, help="training tokens to allocate")
    parser.add_argument("--max-epochs", type=float, default=8.0, help="epoch cap per language (default 8)")
    parser.add_argument("--floor", type=float, default=None, help="least share per language (default 0.1/K)")
    parser.add_argument("--law", help="law YAML from 'climbstream fit' (climb, isolated, msl; optional otherwise)")
    parser.add_argument("--temperature-alpha", type=float, default=0.3, help="alpha = 1/T for --method temperature")
    parser.add_argument("--allow-infeasible", action="store_true", help="write a flagged allocation when caps cannot fill the budget")
    parser.add_argument("--recommend", action="store_true",
                        help="compare climb with the baselines under an ensemble of the law fitted on --runs; write "
                             "the recommended mixture (docs/climb.md 'The recommendation')")
    parser.add_argument("--runs", help="runs table from 'climbstream sweep' (with --recommend: the ensemble's data)")
    parser.add_argument("--baselines", default="temperature,unimax,uniform",
                        help="with --recommend: the baselines compared, comma-separated (default temperature,unimax,"
                             "uniform; natural too)")
    parser.add_argument("--candidate", action="append", default=[], metavar="LABEL=FILE",
                        help="with --recommend: another mixture to compare (an allocation or {NAME: ratio} YAML), "
                             "e.g. the uncapped uniform a user would otherwise train; repeatable")
    parser.add_argument("--replicates", type=int, default=24, help="with --recommend: bootstrap refits (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="with --recommend: the bootstrap's seed")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", help="write the allocation here (.yaml or .json)")
    parser.add_argument("--json", action="store_true", help="print the allocation as JSON")


def _candidates(specs: list[str], names) -> dict[str, dict[str, float]]:
    """--candidate LABEL=FILE: an allocation file or a {NAME: ratio} YAML, by label."""
    import yaml

    from climbstream.errors import ConfigError
    from climbstream.mixture.allocation import Allocation

    out = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise ConfigError(f"--candidate {spec!r}: expected LABEL=FILE (an allocation or {{NAME: ratio}} YAML)")
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as err:
            raise ConfigError(f"--candidate {label}: cannot read {path} ({err.strerror})") from None
        ratios = Allocation.from_dict(data, path).ratios() if isinstance(data, dict) and "languages" in data else data
        if not isinstance(ratios, dict) or sorted(ratios) != sorted(names) or not all(
                isinstance(v, (int, float)) and v >= 0 for v in ratios.values()) or sum(ratios.values()) <= 0:
            raise ConfigError(f"--candidate {label}: {path} must give a ratio >= 0 for exactly the languages "
                              f"{sorted(names)}, not all 0")
        out[label] = {str(n): float(v) for n, v in ratios.items()}
    return out


def _recommend(args: argparse.Namespace, counts, law) -> int:
    from climbstream.errors import ConfigError
    from climbstream.mixture.recommend import recommend_allocation
    from climbstream.mixture.runs import load_runs
    from climbstream.mixture.tables import allocation_table, recommendation_table

    if args.method not in (None, "climb"):
        raise ConfigError(f"--recommend judges climb against the baselines; drop --method {args.method}")
    if not args.runs:
        raise ConfigError("--recommend needs --runs RUNS.csv (the proxy runs the law's ensemble is fitted on)")
    if args.replicates < 2:
        raise ConfigError(f"--replicates {args.replicates}: an interval needs at least 2")
    baselines = tuple(b for b in args.baselines.split(",") if b)
    bad = [b for b in baselines if b not in ("natural", "uniform", "temperature", "unimax")]
    if bad or not baselines:
        raise ConfigError(f"--baselines {args.baselines!r}: expected some of natural, uniform, temperature, unimax")
    alloc, rec = recommend_allocation(load_runs(args.runs), counts, args.budget, e_max=args.max_epochs,
                                      floor=args.floor, baselines=baselines,
                                      temperature_alpha=args.temperature_alpha,
                                      extra=_candidates(args.candidate, counts), law=law,
                                      replicates=args.replicates, seed=args.seed, progress=not args.quiet)
    if args.out:
        alloc.save(args.out)
    print(json.dumps(alloc.to_dict(), indent=2) if args.json else
          recommendation_table(rec) + "\n\n" + allocation_table(alloc))
    return 0


def run(args: argparse.Namespace) -> int:
    from climbstream.errors import ConfigError
    from climbstream.mixture.inputs import read_counts
    from climbstream.mixture.laws import load_law
    from climbstream.mixture.solver import allocate
    from climbstream.mixture.tables import allocation_table

    counts = read_counts(args.counts)
    law = load_law(args.law) if args.law else None
    if args.recommend:
        return _recommend(args, counts, law)
    if args.method is None:
        raise ConfigError("solve needs --method (or --recommend, which compares climb with the baselines)")
    params = {"alpha": args.temperature_alpha} if args.method == "temperature" else None
    alloc = allocate(args.method, counts, args.budget, e_max=args.max_epochs, floor=args.floor, law=law,
                     params=params, allow_infeasible=args.allow_infeasible)
    if args.out:
        alloc.save(args.out)
    print(json.dumps(alloc.to_dict(), indent=2) if args.json else allocation_table(alloc))
    return 0
