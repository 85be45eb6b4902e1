"""Sinks write the interfaces' loss-log lines; file sinks stay silent off rank 0."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

from climbstream.formats.loss_log import CSV_COLUMNS, LossLog
from climbstream.train.losses import LanguageLossTracker
from climbstream.train.sinks import CallbackSink, CsvSink, JsonlSink, SinkError, TensorBoardSink, WandbSink
from tests.train.tracker_data import LANGUAGES

INTERFACE_LANGUAGE_FIELDS = {"step", "position", "lang", "loss_mean", "tokens_interval", "tokens_total",
                             "stage", "weight"}
INTERFACE_LOADER_FIELDS = {"step", "wait_s", "cache_hit_rate", "bytes_downloaded"}


def test_jsonl_lines_carry_the_interface_fields(written_log):
    path, tracker = written_log
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    language = [r for r in lines if r["kind"] == "language"]
    loader = [r for r in lines if r["kind"] == "loader"]
    assert len(language) == 4 * len(LANGUAGES) and len(loader) == 4
    for r in language:
        assert set(r) == INTERFACE_LANGUAGE_FIELDS | {"kind", "version", "samples_interval"}
        assert r["version"] == 1 and isinstance(r["step"], int) and isinstance(r["tokens_total"], int)
    for r in loader:
        assert INTERFACE_LOADER_FIELDS <= set(r)
    assert loader[-1] == {"version": 1, "kind": "loader", "step": 11, "position": 72, "wait_s": 0.11,
                          "cache_hit_rate": 0.5, "bytes_downloaded": 11000}
    assert lines == tracker.history


def test_csv_has_fixed_columns_and_reads_back_like_the_jsonl(tmp_path, batches):
    csv_path, jsonl_path = tmp_path / "losses.csv", tmp_path / "losses.jsonl"
    tracker = LanguageLossTracker(LANGUAGES, flush_every=4, sinks=[CsvSink(csv_path), JsonlSink(jsonl_path)])
    for step, (loss, lang, mask) in enumerate(batches):
        tracker.update(loss, lang, mask=mask)
        tracker.step(step, step + 1, stage=0, loader_metrics={"wait_s": 0.5, "extra_metric": 3})
    tracker.close()
    with csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 3 * (len(LANGUAGES) + 1)
    from_csv, from_jsonl = LossLog.read(csv_path), LossLog.read(jsonl_path)
    strip = [{k: v for k, v in r.items() if k != "extra_metric" and v is not None} for r in from_jsonl.records]
    assert [{k: v for k, v in r.items() if v is not None} for r in from_csv.records] == strip
    for key in ("loss_mean", "tokens_total", "tokens_interval", "weight", "position"):
        np.testing.assert_array_equal(from_csv.arrays()[key], from_jsonl.arrays()[key])


def test_csv_with_other_columns_is_not_appended_to(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text("step,loss\n1,2.0\n")
    with pytest.raises(SinkError, match=r"losses.csv has columns \['step', 'loss'\]"):
        CsvSink(path).write([{"kind": "loader", "step": 1}])


def test_file_sinks_write_nothing_off_rank_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    seen = []
    sinks = [JsonlSink(tmp_path / "a.jsonl"), CsvSink(tmp_path / "a.csv"), TensorBoardSink(tmp_path / "tb"),
             CallbackSink(seen.extend), CallbackSink(pytest.fail, rank_zero_only=True)]
    tracker = LanguageLossTracker(("de",), flush_every=1, sinks=sinks)
    tracker.step(0, 1)
    tracker.close()
    assert list(tmp_path.iterdir()) == []
    assert [r["lang"] for r in seen] == ["de"]


def test_jsonl_sink_appends_so_a_resumed_run_continues_the_file(tmp_path):
    path = tmp_path / "losses.jsonl"
    for step in (0, 1):
        sink = JsonlSink(path)
        sink.write([{"version": 1, "kind": "loader", "step": step, "wait_s": 1.0}])
        sink.close()
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [0, 1]


def test_tensorboard_sink_writes_scalars_per_language(written_log, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, tracker = written_log
    sink = TensorBoardSink(tmp_path / "tb")
    sink.write(tracker.history)
    sink.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/de", "tokens/fr", "weight/sw", "heldout/de", "loader/wait_s"} <= tags
    assert "loss/sw" not in tags  # never seen: no loss to plot
    assert [e.step for e in events.Scalars("loss/de")] == [2, 5, 8, 11]


def test_tensorboard_sink_without_tensorboard_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    from climbstream.extras import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"TensorBoardSink\(.*\) needs tensorboard, .*climbstream\[tb\]"):
        TensorBoardSink(tmp_path / "tb")


def test_callback_sink_rejects_non_callables():
    with pytest.raises(SinkError, match="is not callable"):
        CallbackSink("print")


def test_loader_metrics_cannot_overwrite_record_keys_and_become_plain_numbers():
    import numpy as np
    import torch

    tracker = LanguageLossTracker(("de",), flush_every=1)
    records = tracker.step(5, 10, loader_metrics={"step": 99, "kind": "x", "wait_s": np.float32(0.5),
                                                  "bytes_downloaded": torch.tensor(7)})
    loader = records[-1]
    assert loader == {"wait_s": 0.5, "cache_hit_rate": None, "bytes_downloaded": 7, "version": 1,
                      "kind": "loader", "step": 5, "position": 10}
    assert type(loader["wait_s"]) is float and type(loader["bytes_downloaded"]) is int


class RecordingRun:
    """What WandbSink needs of a wandb run: log(dict, step=)."""

    def __init__(self):
        self.calls = []

    def log(self, data, step=None):
        self.calls.append((step, dict(data)))


def test_wandb_sink_logs_the_tensorboard_scalars_once_per_step(written_log):
    _, tracker = written_log
    run = RecordingRun()
    sink = WandbSink(run)
    sink.write(tracker.history)
    sink.close()
    steps = [step for step, _ in run.calls]
    assert steps == [2, 5, 8, 11]  # one call per step, increasing, as wandb requires
    logged = {step: data for step, data in run.calls}
    last_de = [r for r in tracker.history if r["kind"] == "language" and r["lang"] == "de"][-1]
    assert logged[last_de["step"]]["loss/de"] == pytest.approx(last_de["loss_mean"])
    assert "heldout/de" in logged[11] and "loader/wait_s" in logged[2]
    assert all("loss/sw" not in data for data in logged.values())


def test_wandb_sink_logs_nothing_off_rank_zero(written_log, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    run = RecordingRun()
    WandbSink(run).write(written_log[1].history)
    assert run.calls == []


def test_wandb_sink_without_wandb_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    from climbstream.extras import MissingExtraError

    with pytest.raises(MissingExtraError, match=r"WandbSink needs wandb.*climbstream\[wandb\]"):
        WandbSink()
