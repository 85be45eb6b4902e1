"""Protocol v2 of the allocation benchmark: proxies -> three laws -> refinement -> recommendation -> paired finals.

allocation.py holds the protocol and the command line; allocation_protocol.py the shared
steps (proxy design, runs table rows, the K = 3 regret grid); allocation_train.py one
training run; allocation_stats.py the intervals. The refinement, the ensemble and the
decision rule are the library's (climbstream.mixture.refine / ensemble / recommend): the
benchmark only trains what they ask for.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from allocation_protocol import PROXY_SEED, budget_tokens, design_proxies, predicted_mean_loss, runs_table
from allocation_stats import paired_difference, ranking
from allocation_train import RunShape, eval_stderr, mean_loss, online_options

log = logging.getLogger(__name__)

BASELINES = ("temperature", "unimax", "uniform")
ARMS = ("climb", "climb_unrefined", "temperature", "unimax", "uniform")
ONLINE = "online"
TEMPERATURE_ALPHA = 0.3
MAX_ROUNDS = 2
REPLICATES = 24
ONLINE_FRACTIONS = (0.25, 0.5, 0.75)
EVAL_FRACTIONS = (0.25, 0.5)  # and 1, the end of the run


def arm_candidates(counts: Mapping[str, int], budget: float, law, e_max: float) -> dict[str, dict[str, float]]:
    """climb and the baselines as the benchmark trains them: temperature and UniMax under the caps, uniform 1/K."""
    from climbstream.mixture.recommend import candidate_mixtures

    uniform = {n: 1.0 / len(counts) for n in counts}
    return candidate_mixtures(counts, budget, law, e_max=e_max, baselines=("temperature", "unimax"),
                              temperature_alpha=TEMPERATURE_ALPHA, extra={"uniform": uniform})


def _rows(mixtures, outs, run_ids, final: RunShape, seq_len: int, fractions: bool) -> list[dict]:
    """Runs-table rows of trained proxies: the last score, or every score (fractions)."""
    rows = []
    for run, r, out in zip(run_ids, mixtures, outs):
        steps = sorted(out["heldout_at"]) if fractions else [max(out["heldout_at"])]
        for step in steps:
            rows.append({"run": run, "tokens": float(step * final.global_batch * seq_len), "params": out["params"],
                         **{f"ratio_{n}": r[n] for n in sorted(r)},
                         **{f"loss_{n}": float(out["heldout_at"][step][n].mean()) for n in sorted(r)}})
    return rows


def run_study_v2(runner, counts: Mapping[str, int], *, final: RunShape, half: RunShape, proxies: int, seeds: int,
                 e_max: float, seq_len: int, max_rounds: int = MAX_ROUNDS, replicates: int = REPLICATES) -> dict:
    """The whole protocol v2; returns the `methods` section plus `laws`, `refinement` and `online`."""
    from climbstream.mixture.cv import cross_validate
    from climbstream.mixture.ensemble import fit_ensemble
    from climbstream.mixture.fit import fit_climb_law
    from climbstream.mixture.recommend import recommend
    from climbstream.mixture.refine import check_round, propose_round

    names = sorted(counts)
    budget = budget_tokens(final, seq_len)
    mixtures = design_proxies(counts, final, proxies, seq_len, e_max)
    evals = tuple(int(round(f * final.steps)) for f in EVAL_FRACTIONS)
    full_jobs = [(dict(r), final, PROXY_SEED, PROXY_SEED, names, {"eval_steps": evals}) for r in mixtures]
    half_jobs = [(dict(r), half, PROXY_SEED, PROXY_SEED, names) for r in mixtures]
    outs = runner.run(full_jobs + half_jobs)
    full_outs, half_outs = outs[:proxies], outs[proxies:]
    ids = [str(i) for i in range(proxies)]
    rows = _rows(mixtures, full_outs, ids, final, seq_len, fractions=False)
    laws = {"full": fit_climb_law(runs_table(rows, "proxies at the final budget")),
            "half": fit_climb_law(runs_table(_rows(mixtures, half_outs, ids, half, seq_len, False), "half")),
            "fractions": fit_climb_law(runs_table(_rows(mixtures, full_outs, ids, final, seq_len, True), "fractions"),
                                       use_all_tokens=True)}
    unrefined = arm_candidates(counts, budget, laws["full"], e_max)["climb"]

    # Refinement: rounds of the current candidates, trained like the full-length proxies.
    designed, run_rounds, law, rounds = list(mixtures), {i: 0 for i in ids}, laws["full"], []
    for round_no in range(1, max_rounds + 1):
        proposals = propose_round(arm_candidates(counts, budget, law, e_max), designed)
        if not proposals:
            rounds.append({"round": round_no, "runs": 0, "stop": True, "reason": "nothing new to train"})
            break
        new_ids = [str(len(designed) + j) for j in range(len(proposals))]
        outs = runner.run([(r, final, PROXY_SEED, PROXY_SEED, names) for _, r in proposals])
        rows += _rows([r for _, r in proposals], outs, new_ids, final, seq_len, fractions=False)
        designed += [r for _, r in proposals]
        run_rounds.update({i: round_no for i in new_ids})
        table = runs_table(rows, "proxies and refinement rounds")
        check = check_round(table, run_rounds, max_rounds=max_rounds)
        law = fit_climb_law(table)
        rounds.append({**check.to_dict(), "proposals": [{"label": label, "ratios": _rounded(r)}
                                                        for label, r in proposals]})
        if check.stop:
            break
    laws["refined"] = law
    table = runs_table(rows, "proxies and refinement rounds")
    cv = cross_validate(table, "climb", folds=4)
    ensemble = fit_ensemble(table, law=law, replicates=replicates)
    candidates = arm_candidates(counts, budget, law, e_max)
    rec = recommend(ensemble, candidates, budget)

    # Final runs: every arm and the online arm, seed s common to all.
    arms = dict(candidates) | {"climb_unrefined": unrefined}
    start_epochs = max(rec.ratios[n] * budget / counts[n] for n in names)
    online = online_options(law, tuple(int(f * final.steps) for f in ONLINE_FRACTIONS),
                            e_max=max(e_max, start_epochs), floor=0.1 / len(names), budget_tokens=budget)
    keys = [(seed, arm) for seed in range(seeds) for arm in ARMS] + [(seed, ONLINE) for seed in range(seeds)]
    jobs = [(arms[arm], final, seed, seed, names) if arm != ONLINE else
            (rec.ratios, final, seed, seed, names, {"online": online}) for seed, arm in keys]
    results = runner.run(jobs)
    scores: dict[str, list] = {}
    outs_by_arm: dict[str, list] = {}
    for (seed, arm), out in zip(keys, results):
        scores.setdefault(arm, []).append(out["heldout"])
        outs_by_arm.setdefault(arm, []).append(out)
    arms[ONLINE] = rec.ratios
    return {"methods": score_arms(scores, outs_by_arm, arms, rec, law, counts, budget, final, seeds, e_max, cv),
            "laws": score_laws(laws, scores, arms, budget),
            "refinement": {"rounds": rounds, "runs_total": len(designed), "max_rounds": max_rounds,
                           "cv_mae_nats": cv["mae_nats"], "proxy_runs": proxies},
            "online": score_online(scores, outs_by_arm, rec.label, online)}


def _rounded(r: Mapping[str, float]) -> dict[str, float]:
    return {n: round(float(v), 5) for n, v in sorted(r.items())}


def score_arms(scores, outs, arms, rec, law, counts, budget, final: RunShape, seeds: int, e_max: float, cv) -> dict:
    """Per arm: trained loss, the law's prediction and its error; every baseline against the recommended."""
    names = sorted(counts)
    results = {}
    for arm in list(ARMS) + [ONLINE]:
        per_seed = [mean_loss(s) for s in scores[arm]]
        predicted = predicted_mean_loss(law, arms[arm], budget)
        results[arm] = {
            "mean_heldout_loss": float(np.mean(per_seed)), "per_seed": per_seed,
            "eval_stderr": float(np.mean([eval_stderr(s) for s in scores[arm]])),
            "law_predicted_loss": predicted, "prediction_error": float(np.mean(per_seed)) - predicted,
            "ratios": _rounded(arms[arm]), "epochs": {n: round(arms[arm][n] * budget / counts[n], 3) for n in names},
            "tokens_trained": sorted({int(sum(o["tokens_per_language"].values())) for o in outs[arm]}),
            "per_language": {n: round(float(np.mean([s[n].mean() for s in scores[arm]])), 5) for n in names},
        }
    recommended = rec.label
    pairs = {f"{b} - {recommended}": paired_difference(scores[b], scores[recommended])
             for b in list(BASELINES) + ["climb", "climb_unrefined"] if b != recommended}
    pairs[f"{ONLINE} - {recommended}"] = paired_difference(scores[ONLINE], scores[recommended])
    means = {arm: results[arm]["mean_heldout_loss"] for arm in ARMS}
    return {"languages": names, "budget_tokens": budget, "e_max": e_max, "recommended": recommended,
            "recommendation": rec.to_dict(), "law_cv_mae_nats": cv["mae_nats"],
            "final": {"steps": final.steps, "seeds": seeds, "global_batch": final.global_batch,
                      "heldout_samples": {n: int(len(scores["climb"][0][n])) for n in names}},
            "law": {"languages": list(law.languages), "W": np.round(law.W, 4).tolist(),
                    "beta": np.round(law.beta, 4).tolist(), "E": np.round(law.E, 4).tolist()},
            "results": results, "pairs": pairs,
            "not_resolvably_worse": {key: bool(p["high"] >= 0) for key, p in pairs.items()
                                     if key.split(" - ")[0] in BASELINES},
            "ranking": ranking(means, {f"{a} - {b}": paired_difference(scores[a], scores[b])
                                       for i, b in enumerate(ARMS) for a in ARMS[i + 1:]})}


def score_laws(laws: Mapping, scores, arms, budget: float) -> dict:
    """Each law's error on the trained final arms (seed means): which predicts the final runs best."""
    out = {}
    for key, law in laws.items():
        errors = {arm: float(np.mean([mean_loss(s) for s in scores[arm]])) - predicted_mean_loss(law, arms[arm], budget)
                  for arm in ARMS}
        per_language = [abs(float(np.mean([s[n].mean() for s in scores[arm]])) - float(p))
                        for arm in ARMS
                        for n, p in zip(law.languages, law.predict(np.array([arms[arm][n] for n in law.languages]),
                                                                   budget))]
        out[key] = {"prediction_error": errors, "mae_mean_loss": float(np.mean(np.abs(list(errors.values())))),
                    "mae_per_language": float(np.mean(per_language)), "rows": law.fit_info.get("rows")}
    out["best"] = min((k for k in laws), key=lambda k: out[k]["mae_per_language"])
    return out


def score_online(scores, outs, recommended: str, online: Mapping) -> dict:
    """The online arm against the static recommended mixture, and what the re-weighter decided per seed."""
    return {"start": recommended, "at_steps": list(online["at_steps"]), "e_max": online["e_max"],
            "pairs": {f"{ONLINE} - {recommended}": paired_difference(scores[ONLINE], scores[recommended])},
            "decisions": [[{k: d.get(k) for k in ("step", "verdict", "detail")} | (
                {"new": _rounded(d["new"])} if isinstance(d.get("new"), Mapping) else {})
                for d in o.get("resolves", [])] for o in outs[ONLINE]]}

