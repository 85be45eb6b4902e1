"""`climbstream solve --recommend` and `climbstream refine` through climbstream.cli.main.

Refinement's loop runs for real through the sweep with a command trainer (the documented
--trainer contract) that writes losses of a known law, so every round is trained, checked
and refitted without a GPU or minutes of training.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

from climbstream.cli import main
from climbstream.mixture.allocation import Allocation
from climbstream.mixture.design import load_rounds
from climbstream.mixture.runs import load_runs

from .test_fit_recovery import synthetic_runs

LANGS = ["a", "b", "c", "d"]
BUDGET = 2e6


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory, sparse_truth):
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    synthetic_runs(sparse_truth, n_runs=7).save(path)  # < 8 runs: a fixed ridge, a fast fit
    return path


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    path = tmp_path_factory.mktemp("counts") / "counts.yaml"
    path.write_text(yaml.safe_dump({"a": 10**7, "b": 10**7, "c": 10**7, "d": 150_000}))  # d capped at e_max 1
    return path


def test_recommend_writes_the_recommended_mixture_with_intervals(tmp_path, runs_csv, counts, capsys):
    uncapped = tmp_path / "uniform.yaml"
    uncapped.write_text(yaml.safe_dump({n: 0.25 for n in LANGS}))
    out = tmp_path / "alloc.yaml"
    assert main(["solve", "--recommend", "--runs", str(runs_csv), "--counts", str(counts), "--budget", str(BUDGET),
                 "--max-epochs", "1", "--replicates", "3", "--candidate", f"uniform_uncapped={uncapped}",
                 "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    alloc = Allocation.load(out)
    rec = alloc.recommendation
    assert rec["recommended"] == alloc.method and f"recommending {alloc.method}" in printed
    assert set(rec["candidates"]) == {"climb", "temperature", "unimax", "uniform", "uniform_uncapped"}
    for label, c in rec["candidates"].items():
        assert c["low"] <= c["mean"] <= c["high"], label
        assert f"{label:<18}" in printed
    assert rec["candidates"][alloc.method]["ratios"] == pytest.approx(alloc.ratios(), abs=1e-9)
    assert all(f"{b} - climb" in rec["differences"] for b in ("temperature", "unimax", "uniform"))
    assert rec["replicates"] == 3 and "95%" in rec["rule"]


@pytest.mark.parametrize("argv, message", [
    (["--method", "temperature"], "drop --method temperature"),
    (["--no-runs"], "--recommend needs --runs"),
    (["--candidate", "nolabel"], "expected LABEL=FILE"),
    (["--baselines", "climb"], "--baselines 'climb'"),
    (["--baselines", "msl"], "expected some of natural, uniform, temperature, unimax"),
    (["--replicates", "1"], "--replicates 1: an interval needs at least 2"),
])
def test_recommend_refuses_bad_arguments_by_name(tmp_path, runs_csv, counts, argv, message, capsys):
    base = ["solve", "--recommend", "--runs", str(runs_csv), "--counts", str(counts), "--budget", str(BUDGET)]
    if argv == ["--no-runs"]:
        base, argv = base[:2] + base[4:], []
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("climbstream solve: error: ConfigError: ") and message in err and err.count("\n") == 1


def test_a_candidate_without_every_language_is_refused(tmp_path, runs_csv, counts, capsys):
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump({"a": 0.5, "b": 0.5}))
    assert main(["solve", "--recommend", "--runs", str(runs_csv), "--counts", str(counts), "--budget", str(BUDGET),
                 "--candidate", f"half={partial}"]) == 2
    assert "--candidate half: " in capsys.readouterr().err


def _design_of(runs_csv, path):
    table = load_runs(runs_csv).at_largest_tokens()
    data = {"version": 1, "method": "dirichlet", "seed": 0, "languages": list(table.languages),
            "runs": [{"run": i, "ratios": dict(zip(table.languages, map(float, r)))} for i, r in enumerate(table.ratios)]}
    path.write_text(yaml.safe_dump(data))
    return path


def test_one_refine_step_appends_a_round_and_waits_for_its_runs(tmp_path, runs_csv, counts, capsys):
    design = _design_of(runs_csv, tmp_path / "design.yaml")
    nxt = tmp_path / "next.yaml"
    assert main(["refine", str(design), "--runs", str(runs_csv), "--counts", str(counts), "--budget", str(BUDGET),
                 "--max-epochs", "1", "--out", str(nxt), "-q"]) == 0
    printed = capsys.readouterr().out
    rounds = load_rounds(nxt)
    assert rounds[:7] == [0] * 7 and set(rounds[7:]) == {1} and 1 <= len(rounds) - 7 <= 7
    labels = [r.get("label") for r in yaml.safe_load(nxt.read_text())["runs"][7:]]
    assert labels[0] == "climb" and any(label.startswith("climb~") for label in labels)
    assert "round 1:" in printed and f"climbstream sweep {nxt}" in printed
    assert main(["refine", str(nxt), "--runs", str(runs_csv), "--counts", str(counts), "--budget", str(BUDGET),
                 "--out", str(tmp_path / "again.yaml")]) == 2
    assert "runs [7, " in capsys.readouterr().err


TRAINER = """
import json, sys
import numpy as np
mix, out, tokens = json.load(open(sys.argv[1])), sys.argv[2], float(sys.argv[3])
names = sorted(mix)
r = np.array([mix[n] for n in names]) / sum(mix.values())
W = np.eye(4); W[1, 0] = 0.4; W[3, 2] = 0.3
E, B, beta = np.array([1.0, 1.2, 0.9, 1.1]), np.array([60.0, 90.0, 40.0, 150.0]), np.array([0.3, 0.35, 0.28, 0.4])
loss = E + B * np.maximum(W @ (r * tokens), 1.0) ** -beta
json.dump({"tokens": [tokens], "loss": {n: [float(x)] for n, x in zip(names, loss)}, "params": 3000000}, open(out, "w"))
"""


def test_the_refine_loop_trains_each_round_through_the_sweep_until_the_rule_stops(tmp_path, runs_csv, counts,
                                                                               mds_corpus, capsys):
    # the corpus only has to name the design's languages: rename the test corpus's (aa..dd) is not needed, the
    # command trainer never reads it; build a design over the corpus's own languages instead
    import json

    names = sorted(json.load(open(f"{mds_corpus}/climbstream-manifest.json"))["languages"])
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    design = tmp_path / "design.yaml"
    assert main(["design", "--langs", ",".join(names), "--runs", "7", "--seed", "1", "--out", str(design)]) == 0
    corpus_counts = tmp_path / "counts.yaml"
    corpus_counts.write_text(yaml.safe_dump({n: 10**7 for n in names}))
    table = tmp_path / "runs.csv"
    trainer = f"{sys.executable} {script} {{mixture}} {{out}} {{tokens}}"
    assert main(["refine", str(design), "--runs", str(table), "--counts", str(corpus_counts), "--budget", "2e6",
                 "--corpus", mds_corpus, "--trainer", trainer, "--steps", "2", "--max-rounds", "2",
                 "--out", str(tmp_path / "refined.yaml"), "-q", "--json"]) == 0
    steps = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert steps[0]["check"]["round"] == 0 and steps[0]["next"]
    assert steps[-1]["next"] is None and steps[-1]["check"]["stop"]
    rounds = load_rounds(tmp_path / "refined.yaml")
    trained = load_runs(table)
    assert sorted(trained.run_ids(), key=int) == [str(i) for i in range(len(rounds))]  # every round trained once
    assert max(rounds) == len(steps) - 1 and max(rounds) <= 2
    assert np.all(trained.losses > 0)
