"""Proxy sweeps: designed mixtures -> trained proxies -> a runs table `fit` can read."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from climbstream.cli import main
from climbstream.errors import ConfigError
from climbstream.train.sweep import SweepConfig, run_sweep

LANGS = ["aa", "bb", "cc", "dd"]


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    path = tmp_path_factory.mktemp("design") / "design.yaml"
    assert main(["design", "--langs", ",".join(LANGS), "--runs", "8", "--method", "dirichlet", "--seed", "3",
                 "--out", str(path)]) == 0
    return str(path)


def read_table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_builtin_sweep_of_eight_mixtures_writes_a_resumable_runs_table(mds_corpus, design, tmp_path):
    table = tmp_path / "runs.csv"
    cfg = SweepConfig(design=design, corpus=mds_corpus, runs_out=str(table), steps=8, global_batch=8,
                      heldout_samples=4, train_options={"d_model": 32, "n_layers": 1, "n_heads": 2})
    first = run_sweep(cfg)
    assert (first["trained"], first["skipped"]) == (8, 0)
    rows = read_table(table)
    assert len(rows) == 8 * 3  # three token counts per run
    assert list(rows[0]) == ["run", "tokens", "params", *[f"ratio_{n}" for n in LANGS],
                             *[f"loss_{n}" for n in LANGS], "seed"]
    assert sorted({int(r["tokens"]) for r in rows}) == [2 * 8 * 32, 4 * 8 * 32, 8 * 8 * 32]
    for r in rows:
        assert sum(float(r[f"ratio_{n}"]) for n in LANGS) == pytest.approx(1, abs=1e-5)
        assert all(0 < float(r[f"loss_{n}"]) < 10 for n in LANGS)
    again = run_sweep(cfg)  # a rerun (say after a crash) trains nothing twice
    assert (again["trained"], again["skipped"]) == (0, 8)
    assert len(read_table(table)) == 8 * 3
    assert main(["fit", str(table), "--out", str(tmp_path / "law.yaml"), "--json"]) == 0


def test_command_trainer_contract(mds_corpus, design, tmp_path):
    script = tmp_path / "trainer.py"
    script.write_text(
        "import json, sys\n"
        "mix = json.load(open(sys.argv[1]))\n"
        "json.dump({'tokens': [100, 200], 'loss': {n: [3.0 - r, 2.0 - r] for n, r in mix.items()}, 'params': 7},"
        " open(sys.argv[2], 'w'))\n"
    )
    table = tmp_path / "runs.csv"
    cfg = SweepConfig(design=design, corpus=mds_corpus, runs_out=str(table),
                      trainer=f"{sys.executable} {script} {{mixture}} {{out}}", eval_fractions=(0.5, 1.0))
    assert run_sweep(cfg)["trained"] == 8
    rows = read_table(table)
    assert [int(r["tokens"]) for r in rows[:2]] == [100, 200]
    assert float(rows[0]["loss_aa"]) == pytest.approx(3.0 - float(rows[0]["ratio_aa"]), abs=1e-4)
    assert rows[0]["params"] == "7"


def test_command_trainer_failure_and_bad_output_are_named(mds_corpus, design, tmp_path):
    bad = SweepConfig(design=design, corpus=mds_corpus, runs_out=str(tmp_path / "a.csv"),
                      trainer=f"{sys.executable} -c \"import sys; sys.exit(3)\"")
    with pytest.raises(ConfigError, match="trainer command for run 0 failed \\(exit 3\\)"):
        run_sweep(bad)
    script = tmp_path / "half.py"
    script.write_text("import json, sys\njson.dump({'tokens': [1]}, open(sys.argv[1], 'w'))\n")
    half = SweepConfig(design=design, corpus=mds_corpus, runs_out=str(tmp_path / "b.csv"),
                       trainer=f"{sys.executable} {script} {{out}}")
    with pytest.raises(ConfigError, match="result.json: expected"):
        run_sweep(half)


def test_design_for_other_languages_is_refused(mds_corpus, tmp_path):
    path = tmp_path / "d.yaml"
    assert main(["design", "--langs", "aa,zz", "--runs", "2", "--out", str(path)]) == 0
    with pytest.raises(ConfigError, match="designed for languages aa, zz"):
        run_sweep(SweepConfig(design=str(path), corpus=mds_corpus, runs_out=str(tmp_path / "r.csv")))
