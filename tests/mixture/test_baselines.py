"""Baselines: the UniMax public vector, formulas, and caps/floors applied the same way to all."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream.mixture.solver import allocate

UNIMAX_S = {"swe": 179955884499, "fas": 184595788282, "ekk": 42541080893, "isl": 10027573389, "fao": 549707867}


def test_unimax_reproduces_the_public_test_vector():
    alloc = allocate("unimax", UNIMAX_S, 250e9, e_max=4, floor=0.0)
    tokens = {n: a.tokens for n, a in alloc.languages.items()}
    assert tokens["fao"] == pytest.approx(2198831468, rel=1e-12)
    assert tokens["isl"] == pytest.approx(40110293556, rel=1e-12)
    for n in ("ekk", "swe", "fas"):
        assert tokens[n] == pytest.approx(69230291658.67, abs=0.01)
    assert alloc.languages["fao"].binding and alloc.languages["isl"].binding
    assert not alloc.languages["swe"].binding
    assert sum(a.ratio for a in alloc.languages.values()) == pytest.approx(1.0, abs=1e-12)


def test_unimax_flags_when_caps_cannot_fill_the_budget():
    from climbstream.errors import SolverError

    with pytest.raises(SolverError, match="raise --max-epochs"):
        allocate("unimax", UNIMAX_S, 250e9, e_max=0.5)
    flagged = allocate("unimax", UNIMAX_S, 250e9, e_max=0.5, allow_infeasible=True)
    assert "cannot fill the budget" in flagged.params["infeasible"]


def test_natural_uniform_and_temperature_follow_their_formulas_without_binding_caps():
    counts = {"a": 100, "b": 300, "c": 600}
    big = dict(e_max=1e9, floor=0.0)
    assert allocate("natural", counts, 1000, **big).ratios() == pytest.approx({"a": 0.1, "b": 0.3, "c": 0.6})
    assert allocate("uniform", counts, 1000, **big).ratios() == pytest.approx({n: 1 / 3 for n in counts})
    q = np.array([0.1, 0.3, 0.6]) ** 0.3
    got = allocate("temperature", counts, 1000, params={"alpha": 0.3}, **big).ratios()
    assert list(got.values()) == pytest.approx((q / q.sum()).tolist())


@pytest.mark.parametrize("method", ["natural", "uniform", "temperature", "unimax"])
def test_every_baseline_is_projected_onto_caps_and_floors(method):
    counts = {"big": 10_000_000, "mid": 2_000_000, "small": 50_000, "tiny": 10_000}
    budget, e_max, floor = 1_000_000, 4.0, 0.05
    alloc = allocate(method, counts, budget, e_max=e_max, floor=floor)
    r = alloc.ratios()
    assert sum(r.values()) == pytest.approx(1.0, abs=1e-12)
    for n, a in alloc.languages.items():
        cap = min(1.0, e_max * counts[n] / budget)
        assert a.cap == pytest.approx(cap)
        assert a.ratio <= cap + 1e-12
        assert a.ratio >= min(floor, cap) - 1e-12
        assert a.epochs <= e_max + 1e-9
    # tiny has cap 0.04 < floor 0.05: it sits on its cap, flagged binding
    assert alloc.languages["tiny"].ratio == pytest.approx(0.04)
    assert alloc.languages["tiny"].binding


def test_projection_keeps_proportions_of_the_unconstrained_languages():
    counts = {"a": 1_000_000, "b": 3_000_000, "tiny": 1_000}
    alloc = allocate("natural", counts, 1_000_000, e_max=8, floor=0.1)
    r = alloc.ratios()
    assert r["tiny"] == pytest.approx(0.008)  # floor 0.1 lowered to its cap 8 * 1000 / 1e6
    assert r["b"] / r["a"] == pytest.approx(3.0)
    assert alloc.params["projected"] == ["a", "b", "tiny"]
