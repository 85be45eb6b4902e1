"""Every input error path says what was wrong and where."""

from __future__ import annotations

import pytest

from climbstream.errors import ClimbstreamError, SolverError
from climbstream.mixture.runs import RunsTableError, load_runs
from climbstream.mixture.solver import allocate

HEADER = "run,tokens,params,ratio_en,ratio_fr,loss_en,loss_fr\n"


def test_negative_counts_name_the_language():
    with pytest.raises(SolverError, match=r"counts\.fr.*>= 0"):
        allocate("uniform", {"en": 10, "fr": -1}, 10)


def test_unknown_method_lists_the_methods():
    with pytest.raises(SolverError, match="unknown method 'best'.*climb"):
        allocate("best", {"en": 10}, 10)


@pytest.mark.parametrize("method,kind", [("climb", "climb"), ("isolated", "isolated"), ("msl", "msl")])
def test_missing_law_says_how_to_fit_one(method, kind):
    with pytest.raises(SolverError, match=f"--kind {kind}"):
        allocate(method, {"en": 10, "fr": 10}, 10)


def test_law_with_other_languages_is_rejected(sparse_truth):
    with pytest.raises(SolverError, match="missing from law"):
        allocate("climb", {"a": 10, "b": 10, "zz": 10}, 10, law=sparse_truth)


def test_isolated_refuses_a_law_with_interactions(sparse_truth):
    with pytest.raises(SolverError, match="--kind isolated"):
        allocate("isolated", {n: 10**6 for n in "abcd"}, 1e6, law=sparse_truth)


def test_budget_beyond_caps_is_an_error_or_a_flag():
    with pytest.raises(SolverError, match="cannot fill the budget.*at least 80"):
        allocate("natural", {"en": 50, "fr": 50}, 8000, e_max=8)
    flagged = allocate("natural", {"en": 50, "fr": 50}, 8000, e_max=8, allow_infeasible=True)
    assert "cannot fill" in flagged.params["infeasible"]
    assert all(a.binding for a in flagged.languages.values())


def test_law_predicting_nonsense_is_refused():
    from .conftest import make_law

    with pytest.raises(SolverError, match="nonsense"):
        make_law(["a", "b"], E=[1, 1], B=[1, -1], beta=[0.3, 0.3], W=[[1, 0], [0, 1]])


def test_floors_that_cannot_fit_are_refused():
    with pytest.raises(SolverError, match="lower --floor"):
        allocate("uniform", {n: 10**6 for n in "abcd"}, 10, floor=0.3)


@pytest.mark.parametrize(
    "body,match",
    [
        ("0,100,5,0.5,0.5,2.0,x\n", r"row 1, column 'loss_fr'"),
        ("0,100,5,0.5,0.5,2.0,2.0\n1,100,5,0.9,0.5,2.0,2.0\n", r"row 2: ratio_\* columns sum to 1.4"),
        ("0,100,5,-0.5,1.5,2.0,2.0\n", r"row 1, column 'ratio_en'.*negative"),
        ("0,100,5,0.5,0.5,2.0,0\n", r"row 1, column 'loss_fr'.*> 0"),
        ("0,,5,0.5,0.5,2.0,2.0\n", r"row 1: column 'tokens' is empty"),
    ],
)
def test_malformed_runs_table_names_row_and_column(tmp_path, body, match):
    path = tmp_path / "runs.csv"
    path.write_text(HEADER + body)
    with pytest.raises(RunsTableError, match=match) as err:
        load_runs(path)
    assert str(path) in str(err.value)


def test_runs_table_missing_a_loss_column_names_it(tmp_path):
    path = tmp_path / "runs.json"
    path.write_text('[{"run": 0, "tokens": 1, "params": 1, "ratio_en": 1.0}]')
    with pytest.raises(ClimbstreamError, match="'ratio_en' has no matching 'loss_en'"):
        load_runs(path)
