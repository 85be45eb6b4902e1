"""Reading a loss log back: arrays, curves, the resume rule and errors that name file:line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from climbstream.errors import StateError
from climbstream.formats.loss_log import LossLog, LossLogError, supersede


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _lang(step, lang, loss, tokens, total, **extra):
    return {"step": step, "position": 10 * (step + 1), "lang": lang, "loss_mean": loss,
            "tokens_interval": tokens, "tokens_total": total, "stage": 0, "weight": 0.5, **extra}


def test_arrays_are_dense_per_flush_and_language_without_kind_fields(tmp_path):
    path = _write(tmp_path / "log.jsonl", [
        _lang(1, "fr", 3.0, 10, 10), _lang(1, "de", None, 0, 0), {"step": 1, "wait_s": 0.2},
        _lang(3, "fr", 2.5, 10, 20), _lang(3, "de", 4.0, 5, 5)])
    log = LossLog.read(path)
    arrays = log.arrays()
    assert list(arrays["languages"]) == ["de", "fr"]
    assert arrays["step"].tolist() == [1, 3] and arrays["position"].tolist() == [20, 40]
    np.testing.assert_array_equal(arrays["loss_mean"], [[np.nan, 3.0], [4.0, 2.5]])
    assert arrays["tokens_total"].tolist() == [[0, 10], [5, 20]]
    assert [r["kind"] for r in log.records] == ["language", "language", "loader", "language", "language"]
    tokens, loss = log.curve("de")
    assert tokens.tolist() == [5] and loss.tolist() == [4.0]


def test_curve_of_unknown_language_names_the_ones_present(tmp_path):
    log = LossLog.read(_write(tmp_path / "log.jsonl", [_lang(1, "fr", 3.0, 10, 10)]))
    with pytest.raises(LossLogError, match=r"language 'xx' is not in the loss log \(it has fr\)"):
        log.curve("xx")


def test_lower_step_supersedes_later_lines_and_repeats_keep_the_last():
    def r(step, loss):
        return {"kind": "language", "step": step, "lang": "fr", "loss_mean": loss}

    records = [r(1, 1.0), r(3, 3.0), r(5, 5.0), r(3, 3.5), r(5, 5.5), r(5, 5.75), r(7, 7.0)]
    assert [(x["step"], x["loss_mean"]) for x in supersede(records)] == [(1, 1.0), (3, 3.5), (5, 5.75), (7, 7.0)]


def test_truncated_line_error_names_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(_lang(1, "fr", 3.0, 10, 10)) + '\n{"step": 3, "lang": "fr", "loss_')
    with pytest.raises(LossLogError, match=r"log\.jsonl:2: not valid JSON .*delete it"):
        LossLog.read(path)


def test_unknown_version_names_file_line_and_both_versions(tmp_path):
    path = _write(tmp_path / "log.jsonl", [{**_lang(1, "fr", 3.0, 10, 10), "version": 2}])
    with pytest.raises(StateError, match=r"log\.jsonl:1: unsupported version 2 .*reads version 1"):
        LossLog.read(path)


def test_missing_field_and_unknown_kind_are_named(tmp_path):
    line = _lang(1, "fr", 3.0, 10, 10)
    del line["tokens_total"]
    with pytest.raises(LossLogError, match=r":1: language line has no field 'tokens_total'"):
        LossLog.read(_write(tmp_path / "a.jsonl", [line]))
    with pytest.raises(LossLogError, match=r":1: unknown kind 'gradients'"):
        LossLog.read(_write(tmp_path / "b.jsonl", [{"kind": "gradients", "step": 1}]))


def test_directory_resolves_to_its_log_or_explains_why_not(tmp_path, written_log):
    path, _ = written_log
    assert LossLog.read(path.parent).source == str(path)
    (tmp_path / "two").mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / "two" / name).write_text("")
    with pytest.raises(LossLogError, match=r"several \*\.jsonl files \(a\.jsonl, b\.jsonl\)"):
        LossLog.read(tmp_path / "two")
    with pytest.raises(LossLogError, match="no such file or directory"):
        LossLog.read(tmp_path / "missing")


def test_tracker_history_reads_as_the_written_file(written_log):
    path, tracker = written_log
    assert LossLog.from_records(tracker.history).records == LossLog.read(path).records
