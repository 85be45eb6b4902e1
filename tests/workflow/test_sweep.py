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


# -- parts: one machine's share of the runs each, and the merge ---------------------------
def _trainer(tmp_path) -> str:
    """A command trainer whose losses are a pure function of the mixture (and the run)."""
    script = tmp_path / "trainer.py"
    script.write_text(
        "import json, sys\n"
        "mix, run = json.load(open(sys.argv[1])), int(sys.argv[3])\n"
        "json.dump({'tokens': [100, 200], 'loss': {n: [3.0 - r + run / 100, 2.0 - r] for n, r in mix.items()}},"
        " open(sys.argv[2], 'w'))\n"
    )
    return f"{sys.executable} {script} {{mixture}} {{out}} {{run}}"


def test_parts_deal_out_the_designs_runs_from_the_run_count_alone():
    from climbstream.train.sweep_parts import runs_of_part

    assert [runs_of_part(8, i, 3) for i in (1, 2, 3)] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    for n, count in ((1, 1), (5, 8), (100, 7)):
        parts = [runs_of_part(n, i, count) for i in range(1, count + 1)]
        assert sorted(r for p in parts for r in p) == list(range(n))  # each run in exactly one part
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_sweep_run_as_parts_in_any_order_merges_into_the_single_machine_table(mds_corpus, design, tmp_path):
    trainer = _trainer(tmp_path)
    single = tmp_path / "one" / "runs.csv"
    run_sweep(SweepConfig(design=design, corpus=mds_corpus, runs_out=str(single), trainer=trainer))
    out = tmp_path / "parts" / "runs.csv"
    for i in (3, 1, 2):  # the order a scheduler happens to start them in
        assert main(["sweep", design, "--corpus", mds_corpus, "--out", str(out), "--trainer", trainer,
                     "--part", f"{i}/3", "--quiet"]) == 0
    assert sorted(p.name for p in out.parent.glob("runs.part-*")) == [
        "runs.part-00001-of-00003.csv", "runs.part-00002-of-00003.csv", "runs.part-00003-of-00003.csv"]
    assert {int(r["run"]) for r in read_table(out.parent / "runs.part-00002-of-00003.csv")} == {1, 4, 7}
    assert main(["sweep", design, "--out", str(out), "--merge"]) == 0
    assert out.read_bytes() == single.read_bytes()  # same rows, same order, same bytes
    assert main(["sweep", design, "--out", str(out), "--merge"]) == 2  # refuses to replace it ...
    assert main(["sweep", design, "--out", str(out), "--merge", "--overwrite"]) == 0  # ... unless asked
    assert out.read_bytes() == single.read_bytes()


def test_builtin_parts_merge_into_the_single_machine_table(mds_corpus, tmp_path):
    path = tmp_path / "d.yaml"
    assert main(["design", "--langs", ",".join(LANGS), "--runs", "3", "--method", "dirichlet", "--seed", "5",
                 "--out", str(path)]) == 0
    options = dict(design=str(path), corpus=mds_corpus, steps=4, global_batch=8, heldout_samples=4,
                   eval_fractions=(0.5, 1.0), train_options={"d_model": 16, "n_layers": 1, "n_heads": 2})
    run_sweep(SweepConfig(runs_out=str(tmp_path / "one.csv"), **options))
    for i in (1, 2):
        run_sweep(SweepConfig(runs_out=str(tmp_path / "two.csv"), part=(i, 2), **options))
    from climbstream.train.sweep_parts import merge_runs

    assert merge_runs(str(path), str(tmp_path / "two.csv"))["rows"] == 3 * 2
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


def test_merge_names_a_missing_part_a_misplaced_run_and_another_design(mds_corpus, design, tmp_path):
    from climbstream.train.sweep_parts import merge_runs

    trainer = _trainer(tmp_path)
    out = tmp_path / "runs.csv"
    for i in (1, 2):
        run_sweep(SweepConfig(design=design, corpus=mds_corpus, runs_out=str(out), trainer=trainer, part=(i, 3)))
    with pytest.raises(ConfigError, match=r"parts \[3\] of 3 have written no table yet"):
        merge_runs(design, str(out))
    run_sweep(SweepConfig(design=design, corpus=mds_corpus, runs_out=str(out), trainer=trainer, part=(3, 3)))
    first, second = (tmp_path / f"runs.part-0000{i}-of-00003.csv" for i in (1, 2))
    first.rename(tmp_path / "swap.csv")
    second.rename(first)
    (tmp_path / "swap.csv").rename(second)
    with pytest.raises(ConfigError, match=r"part-00001-of-00003.csv: run 1 belongs to part 2 of 3, not 1"):
        merge_runs(design, str(out))
    second.rename(tmp_path / "swap.csv")
    first.rename(second)
    (tmp_path / "swap.csv").rename(first)
    with pytest.raises(ConfigError, match=r"no part tables"):
        merge_runs(design, str(tmp_path / "elsewhere.csv"))
    other = tmp_path / "other.yaml"
    assert main(["design", "--langs", ",".join(LANGS), "--runs", "8", "--method", "dirichlet", "--seed", "4",
                 "--out", str(other)]) == 0
    with pytest.raises(ConfigError, match=r"run 0 has other ratios than .*other.yaml gives it"):
        merge_runs(str(other), str(out))
