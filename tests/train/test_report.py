"""`climbstream report`: PNG plots and a summary from a loss log written by the tracker."""

from __future__ import annotations

import re

import pytest

from climbstream.cli import main
from climbstream.report.plots import PLOT_FILES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_report_writes_valid_pngs_and_prints_summary(written_log, tmp_path, capsys):
    import matplotlib.image

    path, tracker = written_log
    out = tmp_path / "plots"
    assert main(["report", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in PLOT_FILES:
        png = out / name
        assert f"wrote {png}" in printed
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(png).shape
        assert width > 300 and height > 200
    last = {r["lang"]: r for r in tracker.history if r["kind"] == "language" and r["step"] == 11}
    for name, record in last.items():
        row = re.search(rf"^{name}\s+(\S+)\s+([\d,]+)\s+(\S+)\s+(\S+)", printed, re.MULTILINE)
        assert row, f"no summary row for {name} in:\n{printed}"
        final, tokens, _share, weight = row.groups()
        assert int(tokens.replace(",", "")) == record["tokens_total"]
        assert final == ("-" if record["loss_mean"] is None else f"{record['loss_mean']:.4f}")
        assert float(weight) == pytest.approx(record["weight"], abs=5e-4)
    assert "4 flushes, steps 2..11, last position 72" in printed
    # stage 1 began at step 6 = position 36 (6 samples a step), where the flush of step 5 ended
    assert "stages: 0 (from position 0), 1 (from position 36, after step 5)" in printed
    assert re.search(r"^de\s.*2\.5000$", printed, re.MULTILINE)  # held-out column


def test_report_defaults_to_the_log_directory(written_log, capsys):
    path, _ = written_log
    assert main(["report", str(path.parent)]) == 0
    assert all((path.parent / name).is_file() for name in PLOT_FILES)


def test_report_on_log_without_language_lines_fails_with_one_line(tmp_path, capsys):
    path = tmp_path / "losses.jsonl"
    path.write_text('{"kind": "loader", "step": 1, "wait_s": 0.1}\n')
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "LossLogError" in err and "no per-language records" in err and str(path) in err


def test_report_without_matplotlib_is_one_line_naming_the_extra(written_log, tmp_path, capsys, monkeypatch):
    path, _ = written_log
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(__import__("sys").modules, name, None)  # what an uninstalled package looks like
    assert main(["report", str(path), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "drawing plots needs matplotlib, which is not installed" in err and "pip install 'climbstream[plots]'" in err


def test_prepare_mds_without_mosaicml_streaming_names_the_mds_extra(text_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "streaming", None)
    code = main(["prepare", text_corpus, "--out", str(tmp_path / "c"), "--format", "mds", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert "writing MDS shards (--format mds) needs mosaicml-streaming" in err and "climbstream[mds]" in err
