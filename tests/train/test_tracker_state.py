"""state_dict round trips: a resumed tracker continues totals and the log exactly."""

from __future__ import annotations

import json
import logging

import pytest

from climbstream.errors import StateError
from climbstream.formats.loss_log import LossLog
from climbstream.train.losses import LanguageLossTracker
from climbstream.train.sinks import JsonlSink
from tests.train.tracker_data import LANGUAGES


def _train(tracker, batches, steps):
    for step in steps:
        loss, lang, mask = batches[step]
        tracker.update(loss, lang, mask=mask)
        tracker.step(step, (step + 1) * 6, stage=step // 6, weights={"de": 1 + step // 6, "en": 1})


@pytest.mark.parametrize("stop", [4, 6, 9])  # right after a flush, and in the middle of intervals
def test_resume_from_state_dict_continues_log_and_totals_exactly(tmp_path, batches, stop):
    whole = LanguageLossTracker(LANGUAGES, flush_every=4, sinks=[JsonlSink(tmp_path / "whole.jsonl")])
    _train(whole, batches, range(12))
    whole.close()

    first = LanguageLossTracker(LANGUAGES, flush_every=4, sinks=[JsonlSink(tmp_path / "resumed.jsonl")])
    _train(first, batches, range(stop))
    first.close()
    state = json.loads(json.dumps(first.state_dict()))  # a checkpoint is plain JSON-able data
    second = LanguageLossTracker(LANGUAGES, flush_every=4, sinks=[JsonlSink(tmp_path / "resumed.jsonl")])
    second.load_state_dict(state)
    _train(second, batches, range(stop, 12))
    second.close()

    assert first.history + second.history == whole.history
    assert second.tokens_total == whole.tokens_total and second.samples_total == whole.samples_total
    assert (tmp_path / "resumed.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()


def test_resume_from_an_older_checkpoint_reads_back_as_the_uninterrupted_history(tmp_path, batches):
    whole = LanguageLossTracker(LANGUAGES, flush_every=4)
    _train(whole, batches, range(12))
    path = tmp_path / "losses.jsonl"
    crashed = LanguageLossTracker(LANGUAGES, flush_every=4, sinks=[JsonlSink(path)])
    _train(crashed, batches, range(6))
    checkpoint = crashed.state_dict()
    _train(crashed, batches, range(6, 10))  # flushed step 7, then the job died
    crashed.close()
    resumed = LanguageLossTracker(LANGUAGES, flush_every=4, sinks=[JsonlSink(path)])
    resumed.load_state_dict(checkpoint)
    _train(resumed, batches, range(6, 12))
    resumed.close()
    assert len(path.read_text().splitlines()) == 4 * len(LANGUAGES)  # step 7 is in the file twice
    assert LossLog.read(path).records == LossLog.from_records(whole.history).records


def test_pending_sums_of_another_rank_are_dropped_with_a_warning(batches, caplog):
    source = LanguageLossTracker(LANGUAGES, flush_every=4)
    _train(source, batches, range(2))
    state = source.state_dict()
    state["pending"]["rank"], state["pending"]["world_size"] = 1, 2
    target = LanguageLossTracker(LANGUAGES, flush_every=4)
    with caplog.at_level(logging.WARNING, logger="climbstream.train.losses"):
        target.load_state_dict(state)
    assert "saved by rank 1 of 2 (this is rank 0 of 1)" in caplog.text
    _train(target, batches, range(2, 4))
    fresh = LanguageLossTracker(LANGUAGES, flush_every=2)
    _train(fresh, batches, range(2, 4))
    assert [r["tokens_interval"] for r in target.history] == [r["tokens_interval"] for r in fresh.history]


def test_state_for_other_languages_or_version_is_refused():
    state = LanguageLossTracker(("de", "en")).state_dict()
    with pytest.raises(StateError, match=r"saved for languages \['de', 'en'\], this tracker has \['de', 'fr'\]"):
        LanguageLossTracker(("de", "fr")).load_state_dict(state)
    with pytest.raises(StateError, match="unsupported version 9"):
        LanguageLossTracker(("de", "en")).load_state_dict({**state, "version": 9})
