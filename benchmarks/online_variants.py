"""Next-interval error of the online law's variants on real proxy runs; prints one JSON object.

The runs table has each proxy run at three token counts. Every run's first two points
form the "history" (pooled over runs, as the re-weighter's loss log pools flushes); the
online law is fitted on it and predicts each run's third point, the next interval. The
variants differ only in W: identity, the offline law's W (fitted on the runs at the
second token count, so nothing of the third leaks in), or W refitted online on the pooled
history. Error: mean absolute error of per-language loss, nats.

    .venv/bin/python benchmarks/online_variants.py [--runs ../shared/data/gettext-proxy-runs.csv]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import yaml

from climbstream.mixture.fit import fit_climb_law
from climbstream.mixture.online import fit_online_law
from climbstream.mixture.runs import load_runs

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def records(runs, tokens: list[float]) -> list[dict]:
    """Loss-log records, one 'step' per (run, token count)."""
    ids = {r: i for i, r in enumerate(runs.run_ids())}
    out = []
    for m in range(len(runs)):
        if runs.tokens[m] not in tokens:
            continue
        step = ids[runs.run[m]] * 10 + tokens.index(runs.tokens[m])
        for k, n in enumerate(runs.languages):
            out.append({"step": step, "lang": n, "loss_mean": float(runs.losses[m, k]),
                        "tokens_total": float(runs.ratios[m, k] * runs.tokens[m])})
    return out


def rows_at(runs, tokens: float):
    return runs.select(np.flatnonzero(runs.tokens == tokens))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=os.path.join(DATA, "gettext-proxy-runs.csv"))
    ap.add_argument("--counts", default=os.path.join(DATA, "gettext-proxy-counts.yaml"))
    args = ap.parse_args()
    runs = load_runs(args.runs)
    with open(args.counts, encoding="utf-8") as f:
        counts = yaml.safe_load(f)
    levels = sorted(set(runs.tokens.tolist()))
    history = records(runs, levels[:2])
    offline = fit_climb_law(rows_at(runs, levels[1]))
    third = rows_at(runs, levels[2])
    seen = third.ratios * third.tokens[:, None]
    out = {"history_tokens": levels[:2], "predicted_tokens": levels[2], "runs": len(third), "mae_nats": {}}
    for discount in ("repetition discounted", "no discount"):
        c = counts if discount == "repetition discounted" else None
        variants = {
            "W = I": fit_online_law(history, offline, counts=c, transfers="identity"),
            "W offline": fit_online_law(history, offline, counts=c, transfers="offline"),
            "W refitted online": fit_online_law(history, offline, counts=c, transfers="refit"),
        }
        auto = fit_online_law(history, offline, counts=c, transfers="auto")
        out.setdefault("auto_picks", {})[discount] = auto.fit_info["transfers"]
        for name, law in variants.items():
            order = [third.languages.index(n) for n in law.languages]  # the online law sorts its languages
            pred = law.loss_at_effective(law.effective_tokens(seen[:, order]))
            err = np.abs(pred - third.losses[:, order])
            out["mae_nats"][f"{name}, {discount}"] = round(float(np.mean(err)), 4)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
