"""`climbstream fit`: fit a loss law (climb, isolated or msl) to a runs table."""

from __future__ import annotations

import argparse
import json

HELP = "fit a loss law (climb, isolated, msl) to proxy runs and save it as YAML"


def _ridge(text: str):
    if text == "cv":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'cv', got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'cv', got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", help="runs table (.csv or .json) from 'climbstream sweep'")
    parser.add_argument("--out", required=True, help="law YAML to write")
    parser.add_argument("--kind", choices=["climb", "msl", "isolated"], default="climb")
    parser.add_argument("--all-tokens", action="store_true", help="fit every token count, not only each run's last")
    parser.add_argument("--w-max", type=float, default=None, help="upper bound on transfers W_ij (default 0.5)")
    parser.add_argument("--ridge", type=_ridge, default=None,
                        help="shrinkage of W toward 0: a weight >= 0, or 'cv' (default: each language "
                             "picks it by cross-validation over runs)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the law as JSON")


def _table(law) -> str:
    if law.kind == "msl":
        lines = [f"MSL law at {law.tokens_ref:.6g} tokens: L = C * p^-gamma",
                 f"{'language':<10}{'C':>10}{'gamma':>9}"]
        lines += [f"{n:<10}{c:>10.4f}{g:>9.4f}" for n, c, g in zip(law.languages, law.C, law.gamma)]
    else:
        lines = [f"{law.kind} law: L = E + B / (W @ tokens)^beta",
                 f"{'language':<10}{'E':>9}{'B':>12}{'beta':>8}  transfers in (W_ij > 0.01)"]
        for i, n in enumerate(law.languages):
            helped = ", ".join(f"{law.languages[j]} {law.W[i, j]:.2f}" for j in range(law.K)
                               if j != i and law.W[i, j] > 0.01)
            lines.append(f"{n:<10}{law.E[i]:>9.4f}{law.B[i]:>12.4g}{law.beta[i]:>8.4f}  {helped}")
    lines.append(f"in-sample error: {law.fit_info.get('train_mae_nats', float('nan')):.4f} nats "
                 f"(mean abs, {law.fit_info.get('rows')} rows); see 'climbstream validate' for CV")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from climbstream.mixture.fit import DEFAULT_RIDGE, DEFAULT_W_MAX, fit_climb_law, fit_msl_law
    from climbstream.mixture.laws import save_law
    from climbstream.mixture.runs import load_runs

    runs = load_runs(args.runs)
    if args.kind == "msl":
        law = fit_msl_law(runs)
    else:
        law = fit_climb_law(runs, isolated=args.kind == "isolated", use_all_tokens=args.all_tokens,
                            w_max=DEFAULT_W_MAX if args.w_max is None else args.w_max,
                            ridge=DEFAULT_RIDGE if args.ridge is None else args.ridge, progress=not args.quiet)
    save_law(law, args.out)
    print(json.dumps(law.to_dict(), indent=2) if args.json else _table(law))
    return 0
