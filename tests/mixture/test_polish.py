"""The polish is correct above 20 languages, and `converged` means the KKT test passed."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream.mixture.caps import project
from climbstream.mixture.climb import Objective, _slsqp, solve_climb
from climbstream.mixture.laws import ClimbLaw
from climbstream.mixture.polish import duality_gap, kkt_residual, polish


def skewed_problem(k: int, seed: int = 0):
    """Sparse non-negative W, log-normal counts, budget twice the corpus over e_max 4 (tail capped)."""
    rng = np.random.default_rng(seed)
    W = np.eye(k)
    for i in range(k):
        others = rng.choice([j for j in range(k) if j != i], size=min(3, k - 1), replace=False)
        W[i, others] = rng.uniform(0.05, 0.4, len(others))
    law = ClimbLaw(languages=tuple(f"l{i:03d}" for i in range(k)), E=rng.uniform(0.8, 1.5, k),
                   B=rng.uniform(20, 200, k), beta=rng.uniform(0.2, 0.5, k), W=W)
    budget = 1e9
    counts = np.exp(rng.normal(0.0, 2.0, k))
    counts = counts / counts.sum() * 2 * budget
    caps = np.minimum(1.0, 4 * counts / budget)
    floors = np.minimum(np.full(k, 0.1 / k), caps)
    return law, budget, counts, floors, caps


@pytest.mark.parametrize("k", [21, 40, 80])
def test_polish_reaches_the_optimum_above_twenty_languages_and_says_so(k):
    law, budget, counts, floors, caps = skewed_problem(k)
    sol = solve_climb(law, budget, floors, caps)
    assert sol.polish_method == "newton"
    assert sol.polish_converged and sol.kkt_residual <= 1e-7
    assert int(np.sum(sol.ratios >= caps - 1e-12)) > 0, "the caps should bind in this problem"
    obj = Objective(law, budget, np.zeros(k), np.ones(k))
    starts = [sol.two_step, project(np.ones(k), floors, caps), project(counts, floors, caps)]
    reference = min(obj.value(_slsqp(obj, r0, floors, caps)[0]) for r0 in starts)
    assert sol.F_polished <= reference + 1e-6 * abs(reference)
    assert sol.info["duality_gap"] <= 1e-6 * abs(sol.F_polished)


def test_a_polish_stopped_early_does_not_claim_convergence():
    law, budget, _, floors, caps = skewed_problem(40)
    obj = Objective(law, budget, np.zeros(40), np.ones(40))
    r0 = project(np.ones(40), floors, caps)
    r, converged, iterations, kkt = polish(obj.value_grad, obj.hessian, r0, floors, caps, max_iter=1)
    assert iterations == 1 and not converged and kkt > 1e-7
    assert kkt == kkt_residual(r, obj.value_grad(r)[1], floors, caps)


def test_duality_gap_bounds_the_distance_to_the_optimum():
    law, budget, _, floors, caps = skewed_problem(21)
    obj = Objective(law, budget, np.zeros(21), np.ones(21))
    best = solve_climb(law, budget, floors, caps).F_polished
    r = project(np.ones(21), floors, caps)
    f, g = obj.value_grad(r)
    assert f - best <= duality_gap(r, g, floors, caps) + 1e-9
    assert f - best > 1e-3  # the uniform point is far from optimal here, so the bound is not vacuous
