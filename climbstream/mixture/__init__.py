"""Mixture solvers: the Climb law, its fit, the two-step solve and the baselines (pure numpy/scipy).

Public API:
    allocate(method, counts, budget_tokens, ...) -> Allocation      (solver.py)
    Allocation.load / save / ratios                                  (allocation.py)
    load_runs(path) -> RunsTable                                     (runs.py)
    fit_climb_law(runs, ...) -> ClimbLaw, fit_msl_law(runs) -> MslLaw (fit.py)
    cross_validate(runs, kind, folds=4, seed=0) -> dict              (cv.py)
    load_law / save_law                                              (laws.py)
    fit_online_law, guard_prediction, solve_remaining                (online.py)
    design_mixtures                                                  (design.py)
    propose_round, check_round                                       (refine.py)
    fit_ensemble -> LawEnsemble                                      (ensemble.py)
    candidate_mixtures, recommend, recommend_allocation              (recommend.py)
"""

from climbstream.mixture.allocation import Allocation, LanguageAllocation
from climbstream.mixture.cv import cross_validate
from climbstream.mixture.design import design_mixtures
from climbstream.mixture.ensemble import LawEnsemble, fit_ensemble
from climbstream.mixture.fit import fit_climb_law, fit_msl_law
from climbstream.mixture.inputs import read_counts
from climbstream.mixture.laws import ClimbLaw, MslLaw, load_law, save_law
from climbstream.mixture.online import fit_online_law, guard_prediction, solve_remaining
from climbstream.mixture.recommend import Recommendation, candidate_mixtures, recommend, recommend_allocation
from climbstream.mixture.refine import check_round, propose_round
from climbstream.mixture.runs import RunsTable, load_runs
from climbstream.mixture.solver import METHODS, allocate

__all__ = [
    "Allocation", "LanguageAllocation", "ClimbLaw", "LawEnsemble", "MslLaw", "METHODS", "Recommendation",
    "RunsTable", "allocate", "candidate_mixtures", "check_round", "cross_validate", "design_mixtures",
    "fit_climb_law", "fit_ensemble", "fit_msl_law", "fit_online_law", "guard_prediction", "load_law",
    "load_runs", "propose_round", "read_counts", "recommend", "recommend_allocation", "save_law",
    "solve_remaining",
]
