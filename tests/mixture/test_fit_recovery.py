"""Parameter recovery: runs generated from a known sparse law are fitted back."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream.mixture.fit import fit_climb_law, fit_msl_law
from climbstream.mixture.runs import runs_from_rows
from climbstream.mixture.solver import allocate


def synthetic_runs(law, n_runs=60, tokens=(2e6,), noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for run in range(n_runs):
        r = rng.dirichlet(np.ones(law.K))
        r = np.maximum(r, 0.01)
        r /= r.sum()
        for t in tokens:
            loss = law.predict(r, t) * np.exp(rng.normal(0, noise, law.K))
            row = {"run": run, "tokens": t, "params": 3e6}
            row.update({f"ratio_{n}": x for n, x in zip(law.languages, r)})
            row.update({f"loss_{n}": x for n, x in zip(law.languages, loss)})
            rows.append(row)
    return runs_from_rows(rows, "synthetic")


@pytest.fixture(scope="module")
def fitted(sparse_truth):
    runs = synthetic_runs(sparse_truth)
    return runs, fit_climb_law(runs, ridge=1e-3)


def test_fit_recovers_which_transfers_are_nonzero(sparse_truth, fitted):
    _, law = fitted
    off = ~np.eye(4, dtype=bool)
    true_nonzero = (sparse_truth.W > 0) & off
    assert np.all(law.W[true_nonzero] > 0.15), law.W
    assert np.all(law.W[off & ~true_nonzero] < 0.05), law.W
    assert np.all((law.W >= 0) & (law.W <= 0.5 + 1e-12) | ~off)
    assert np.abs(law.beta - sparse_truth.beta).max() < 0.1


def test_fit_recovers_the_optimal_ratios(sparse_truth, fitted):
    _, law = fitted
    counts = {n: 10**9 for n in "abcd"}
    want = allocate("climb", counts, 2e6, floor=0.0, law=sparse_truth).ratios()
    got = allocate("climb", counts, 2e6, floor=0.0, law=law).ratios()
    assert max(abs(want[n] - got[n]) for n in counts) < 0.03, (want, got)
    # and the fitted answer loses almost nothing under the true law
    r_got = np.array([got[n] for n in "abcd"])
    r_want = np.array([want[n] for n in "abcd"])
    assert sparse_truth.predict(r_got, 2e6).sum() <= sparse_truth.predict(r_want, 2e6).sum() + 1e-3


def test_isolated_fit_keeps_identity_interactions(fitted):
    runs, _ = fitted
    iso = fit_climb_law(runs, isolated=True)
    assert np.array_equal(iso.W, np.eye(4)) and iso.kind == "isolated"


def test_fit_uses_largest_token_count_unless_asked(sparse_truth):
    runs = synthetic_runs(sparse_truth, n_runs=12, tokens=(5e5, 2e6))
    assert fit_climb_law(runs).fit_info["rows"] == 12
    assert fit_climb_law(runs, use_all_tokens=True).fit_info["rows"] == 24
    assert fit_msl_law(runs).tokens_ref == 2e6
