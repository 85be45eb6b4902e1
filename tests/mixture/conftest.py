"""Shared fixtures for the mixture tests: the real gettext proxy runs and a synthetic law."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
RUNS_CSV = DATA / "gettext-proxy-runs.csv"
COUNTS_YAML = DATA / "gettext-proxy-counts.yaml"
REAL_BUDGET = 16384000


@pytest.fixture(scope="session")
def real_paths():
    if not RUNS_CSV.exists() or not COUNTS_YAML.exists():
        pytest.skip(f"real proxy runs not found at {DATA} (expected <repo>/../shared/data); skipping real-data tests")
    return RUNS_CSV, COUNTS_YAML


@pytest.fixture(scope="session")
def real_runs(real_paths):
    from climbstream.mixture.runs import load_runs

    return load_runs(real_paths[0])


@pytest.fixture(scope="session")
def real_counts(real_paths):
    return yaml.safe_load(real_paths[1].read_text())


@pytest.fixture(scope="session")
def real_climb_law(real_runs):
    from climbstream.mixture.fit import fit_climb_law

    return fit_climb_law(real_runs)


def make_law(languages, E, B, beta, W):
    from climbstream.mixture.laws import ClimbLaw

    return ClimbLaw(languages=tuple(languages), E=np.array(E, float), B=np.array(B, float),
                    beta=np.array(beta, float), W=np.array(W, float))


@pytest.fixture(scope="session")
def sparse_truth():
    """A known 4-language law with a sparse non-negative W (a -> b, c -> d)."""
    W = np.eye(4)
    W[1, 0] = 0.4
    W[3, 2] = 0.3
    return make_law(["a", "b", "c", "d"], E=[1.0, 1.2, 0.9, 1.1], B=[60.0, 90.0, 40.0, 150.0],
                    beta=[0.3, 0.35, 0.28, 0.4], W=W)
