"""Climb and MSL solves against brute force on the simplex (small K)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from climbstream.mixture.laws import MslLaw
from climbstream.mixture.solver import allocate

from .conftest import make_law


def simplex_grid(k, step, floors, caps):
    n = int(round(1 / step))
    for combo in itertools.product(range(n + 1), repeat=k - 1):
        if sum(combo) <= n:
            r = np.array(list(combo) + [n - sum(combo)]) / n
            if np.all(r >= floors - 1e-12) and np.all(r <= caps + 1e-12):
                yield r


def brute_force(f, k, floors, caps, step=0.01):
    best = min(simplex_grid(k, step, floors, caps), key=f)
    # refine around the best grid point on a finer local grid
    for fine in (step / 10, step / 100):
        cands = []
        for d in itertools.product(range(-10, 11), repeat=k - 1):
            r = best.copy()
            r[:-1] += np.array(d) * fine
            r[-1] = 1 - r[:-1].sum()
            if np.all(r >= floors - 1e-12) and np.all(r <= caps + 1e-12):
                cands.append(r)
        best = min(cands, key=f)
    return best, f(best)


LAW3 = make_law(["a", "b", "c"], E=[1.0, 0.8, 1.3], B=[80.0, 30.0, 200.0], beta=[0.3, 0.25, 0.45],
                W=[[1, 0.3, 0.0], [0.1, 1, 0.2], [0.0, 0.45, 1]])


@pytest.mark.parametrize("e_max,floor", [(1e6, 0.0), (8.0, 0.05), (2.0, 0.1)])
def test_climb_polished_objective_is_no_worse_than_brute_force(e_max, floor):
    counts = {"a": 400_000, "b": 300_000, "c": 150_000}
    D = 1_000_000
    alloc = allocate("climb", counts, D, e_max=e_max, floor=floor, law=LAW3)
    floors = np.array([min(floor, min(1, e_max * counts[n] / D)) for n in LAW3.languages])
    caps = np.array([min(1, e_max * counts[n] / D) for n in LAW3.languages])

    def F(r):
        return float(LAW3.predict(r, D).sum())

    _, f_brute = brute_force(F, 3, floors, caps)
    f_pol = alloc.params["polished"]["F"]
    f_two = alloc.params["two_step"]["F"]
    assert f_pol <= f_brute + 1e-6
    assert f_pol <= f_two + 1e-12
    assert F(np.array([alloc.ratios()[n] for n in LAW3.languages])) == pytest.approx(f_pol, rel=1e-12)
    # the two-step answer is reported, not assumed optimal: its F is a real evaluation
    r2 = alloc.params["two_step"]["ratios"]
    assert F(np.array([r2[n] for n in LAW3.languages])) == pytest.approx(f_two, rel=1e-12)
    assert alloc.pred_mean_loss == pytest.approx(f_pol / 3, rel=1e-12)


def test_two_step_is_exact_when_columns_of_W_sum_equally_and_betas_match():
    W = [[1, 0.2, 0.2], [0.2, 1, 0.2], [0.2, 0.2, 1]]
    law = make_law(["a", "b", "c"], E=[1, 1, 1], B=[50, 100, 200], beta=[0.3, 0.3, 0.3], W=W)
    alloc = allocate("climb", {"a": 10**9, "b": 10**9, "c": 10**9}, 1e6, floor=0.0, law=law)
    assert alloc.params["two_step"]["F"] == pytest.approx(alloc.params["polished"]["F"], rel=1e-9)
    assert alloc.params["two_step"]["lp_calls"] >= 1


def test_msl_solution_is_no_worse_than_brute_force():
    law = MslLaw(languages=("a", "b", "c"), C=[1.1, 0.9, 1.4], gamma=[0.08, 0.05, 0.12], tokens_ref=1e6)
    counts = {"a": 500_000, "b": 400_000, "c": 60_000}
    alloc = allocate("msl", counts, 1e6, e_max=2.0, floor=0.05, law=law)
    floors = np.array([0.05, 0.05, 0.05])
    caps = np.array([1.0, 0.8, 0.12])

    def F(r):
        return float(law.predict(r).sum())

    _, f_brute = brute_force(F, 3, floors, caps)
    r = np.array([alloc.ratios()[n] for n in "abc"])
    assert F(r) <= f_brute + 1e-6
    assert alloc.languages["c"].binding and r[2] == pytest.approx(0.12)


def test_newton_polish_matches_slsqp_with_a_repetition_discount():
    from climbstream.mixture.climb import Objective, _slsqp, two_step
    from climbstream.mixture.polish import polish

    rng = np.random.default_rng(5)
    k = 8
    W = np.eye(k) + np.triu(rng.uniform(0, 0.3, (k, k)) * (rng.random((k, k)) < 0.3), 1)
    law = make_law([f"l{i}" for i in range(k)], E=rng.uniform(0.8, 1.4, k), B=rng.uniform(20, 90, k),
                   beta=rng.uniform(0.2, 0.5, k), W=W)
    law.unique_tokens = rng.uniform(5e4, 4e5, k)
    law.repetition_decay_epochs = 3.0
    floors, caps = np.full(k, 0.01), np.full(k, 0.6)
    obj = Objective(law, 2e6, np.full(k, 1e5), np.ones(k))
    r0, _ = two_step(law, 2e6, np.full(k, 1e5), np.ones(k), floors.copy(), caps.copy())
    r_s, _, _ = _slsqp(obj, np.clip(r0, floors, caps) / np.clip(r0, floors, caps).sum(), floors, caps)
    r_n, ok, _, kkt = polish(obj.value_grad, obj.hessian, r0, floors, caps)
    assert ok and kkt <= 1e-7
    assert obj.value(r_n) <= obj.value(r_s) + 1e-9
    assert np.abs(r_n - r_s).max() < 1e-4
