"""The solve, fit and design commands through climbstream.cli.main."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from climbstream.cli import main
from climbstream.mixture.allocation import Allocation
from climbstream.mixture.runs import load_runs

from .test_fit_recovery import synthetic_runs


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory, sparse_truth):
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    synthetic_runs(sparse_truth, n_runs=16).save(path)
    return path


def test_fit_then_solve_climb_writes_an_allocation(tmp_path, runs_csv, capsys):
    law = tmp_path / "law.yaml"
    assert main(["fit", str(runs_csv), "--out", str(law)]) == 0
    assert "transfers in" in capsys.readouterr().out
    counts = tmp_path / "counts.yaml"
    counts.write_text(yaml.safe_dump({n: 10**6 for n in "abcd"}))
    out = tmp_path / "alloc.yaml"
    assert main(["solve", "--method", "climb", "--counts", str(counts), "--budget", "2e6", "--law", str(law),
                 "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "polished" in table and "pred_loss" in table
    alloc = Allocation.load(out)
    assert alloc.method == "climb" and sum(alloc.ratios().values()) == pytest.approx(1.0)


def test_fit_json_and_msl_kind(tmp_path, runs_csv, capsys):
    assert main(["fit", str(runs_csv), "--out", str(tmp_path / "m.yaml"), "--kind", "msl", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "msl" and data["version"] == 1 and len(data["gamma"]) == 4


def test_solve_reads_counts_from_a_manifest(tmp_path, capsys):
    manifest = {"version": 1, "format": "mds", "seq_len": 8, "languages": {
        "en": {"tokens": 3000, "samples": 375, "train": [], "heldout": []},
        "is": {"tokens": 100, "samples": 12, "train": [], "heldout": []}}}
    path = tmp_path / "climbstream-manifest.json"
    path.write_text(json.dumps(manifest))
    assert main(["solve", "--method", "temperature", "--counts", str(path), "--budget", "1000",
                 "--temperature-alpha", "0.5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"]["alpha"] == 0.5
    assert data["languages"]["is"]["ratio"] <= 0.8 + 1e-12  # 8 epochs of 100 tokens out of 1000


def test_solve_errors_exit_2_with_one_line(tmp_path, capsys):
    counts = tmp_path / "c.yaml"
    counts.write_text("en: 10\nfr: 10\n")
    assert main(["solve", "--method", "climb", "--counts", str(counts), "--budget", "10"]) == 2
    err = capsys.readouterr().err
    assert "SolverError" in err and "--kind climb" in err


@pytest.mark.parametrize("method", ["dirichlet", "lhs", "corners"])
def test_design_writes_seeded_mixtures_within_caps(tmp_path, method):
    counts = tmp_path / "c.yaml"
    counts.write_text("en: 1000000\nfr: 1000000\nis: 20000\n")
    args = ["design", "--langs", "en,fr,is", "--runs", "9", "--method", method, "--seed", "3",
            "--counts", str(counts), "--budget", "1000000", "--max-epochs", "4", "--floor", "0.02"]
    assert main(args + ["--out", str(tmp_path / "a.yaml")]) == 0
    assert main(args + ["--out", str(tmp_path / "b.csv")]) == 0
    data = yaml.safe_load((tmp_path / "a.yaml").read_text())
    R = np.array([[run["ratios"][n] for n in ("en", "fr", "is")] for run in data["runs"]])
    assert R.shape == (9, 3) and np.allclose(R.sum(axis=1), 1.0)
    assert np.all(R[:, 2] <= 0.08 + 1e-12) and np.all(R >= 0.02 - 1e-12)
    with open(tmp_path / "b.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["ratio_en"]) for r in rows] == pytest.approx(R[:, 0].tolist(), abs=1e-7)
    assert main(args + ["--out", str(tmp_path / "c.yaml")]) == 0
    assert (tmp_path / "c.yaml").read_text() == (tmp_path / "a.yaml").read_text()


def test_lhs_design_spreads_every_share_over_its_strata():
    from climbstream.mixture.design import design_mixtures

    R = design_mixtures(20, 4, "lhs", seed=1)
    assert np.allclose(R.sum(axis=1), 1)
    assert not np.allclose(R, design_mixtures(20, 4, "lhs", seed=2))


def test_runs_table_round_trips_through_json(tmp_path, runs_csv):
    runs = load_runs(runs_csv)
    runs.save(tmp_path / "r.json")
    back = load_runs(tmp_path / "r.json")
    assert np.allclose(back.losses, runs.losses) and back.languages == runs.languages


def test_fit_and_validate_show_progress_unless_quiet(tmp_path, runs_csv, capsys):
    assert main(["fit", str(runs_csv), "--out", str(tmp_path / "law.yaml")]) == 0
    assert "fit climb" in capsys.readouterr().err
    assert main(["validate", str(runs_csv), "--folds", "2"]) == 0
    err = capsys.readouterr().err
    assert "validate" in err and "9/9" in err  # 3 laws x (2 folds + the final fit)
    assert main(["validate", str(runs_csv), "--folds", "2", "-q"]) == 0
    assert main(["fit", str(runs_csv), "--out", str(tmp_path / "law.yaml"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
