"""Mixture design: which proxy mixtures to train so the law can be fitted.

Seeded and deterministic. Methods: `dirichlet` (uniform on the simplex), `lhs` (Latin
hypercube strata mapped to the simplex through exponential spacings, so every language's
share is spread evenly across runs), `corners` (vertices, edge midpoints and the centre,
in a seeded order; they pin each language's own curve and the pairwise transfers).
With caps and floors every mixture is projected onto the feasible set (caps.project).
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import yaml

from climbstream.errors import ConfigError, SolverError
from climbstream.mixture.caps import project

DESIGN_VERSION = 1
DESIGN_METHODS = ("dirichlet", "lhs", "corners")


def design_mixtures(
    n_runs: int,
    k: int,
    method: str = "dirichlet",
    seed: int = 0,
    floors: np.ndarray | None = None,
    caps: np.ndarray | None = None,
) -> np.ndarray:
    """n_runs x k ratios (rows sum to 1) by the named design."""
    if method not in DESIGN_METHODS:
        raise SolverError(f"unknown design method {method!r}; expected one of {', '.join(DESIGN_METHODS)}")
    if n_runs < 1 or k < 1:
        raise SolverError(f"design needs at least 1 run and 1 language, got runs={n_runs}, languages={k}")
    rng = np.random.default_rng(seed)
    if method == "dirichlet":
        R = rng.dirichlet(np.ones(k), size=n_runs)
    elif method == "lhs":
        u = np.empty((n_runs, k))
        for j in range(k):
            u[:, j] = (rng.permutation(n_runs) + rng.random(n_runs)) / n_runs
        e = -np.log(np.clip(u, 1e-12, 1.0))
        R = e / e.sum(axis=1, keepdims=True)
    else:
        points = [np.eye(k)[i] for i in range(k)]
        points += [(np.eye(k)[i] + np.eye(k)[j]) / 2 for i, j in itertools.combinations(range(k), 2)]
        points.append(np.full(k, 1.0 / k))
        order = rng.permutation(len(points))
        R = np.array([points[order[m % len(points)]] for m in range(n_runs)])
    if floors is not None or caps is not None:
        f = np.zeros(k) if floors is None else floors
        c = np.ones(k) if caps is None else caps
        R = np.vstack([project(row, f, c) for row in R])
    return R


def save_design(path: str | Path, languages: list[str], ratios: np.ndarray, *, method: str, seed: int,
                rounds: list[int] | None = None, labels: list[str | None] | None = None) -> None:
    """Write the design as YAML ({version, method, seed, languages, runs}) or CSV (run, ratio_<lang>).

    `rounds` (refinement: the round each run belongs to, 0 for the initial design) and
    `labels` (what a refined run is: climb, a baseline, a midpoint) are kept in YAML only.
    """
    path = Path(path)
    if path.suffix == ".csv":
        if rounds is not None:
            raise ConfigError(f"{path}: a design with refinement rounds is written as .yaml, not .csv")
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["run"] + [f"ratio_{n}" for n in languages])
            for m, row in enumerate(ratios):
                w.writerow([m] + [f"{x:.8f}" for x in row])
        return
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"{path}: design output must end in .yaml, .yml or .csv")
    runs = []
    for m, row in enumerate(ratios):
        run = {"run": m, "ratios": {n: float(x) for n, x in zip(languages, row)}}
        if rounds is not None:
            run["round"] = int(rounds[m])
        if labels is not None and labels[m]:
            run["label"] = labels[m]
        runs.append(run)
    data = {"version": DESIGN_VERSION, "method": method, "seed": seed, "languages": list(languages), "runs": runs}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def load_rounds(path: str | Path) -> list[int]:
    """The refinement round of each run of a design file (0 for every run of a design without rounds)."""
    path = Path(path)
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return [0 for _ in csv.DictReader(fh)]
    data = yaml.safe_load(path.read_text())
    raw = (data.get("runs") or data.get("mixtures")) if isinstance(data, dict) else data
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: expected a list 'runs' (from 'climbstream design' or 'climbstream refine')")
    out = []
    for i, run in enumerate(raw):
        value = run.get("round", 0) if isinstance(run, dict) else 0
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"{path}: runs[{i}].round is {value!r}; expected an integer >= 0")
        out.append(value)
    return out
