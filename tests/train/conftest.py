"""Fixtures for the training-hook tests (tracker, sinks, loss log, report)."""

from __future__ import annotations

import pytest

from tests.train.tracker_data import LANGUAGES, random_batches


@pytest.fixture(scope="session")
def languages():
    return LANGUAGES


@pytest.fixture(scope="session")
def batches():
    """Twelve steps of random batches in which 'sw' (id 4) never occurs."""
    return random_batches(seed=7, steps=12, absent=(4,))


@pytest.fixture
def written_log(tmp_path, batches):
    """A JSONL loss log of a 12-step run with a stage change, loader metrics and held-out scores."""
    import torch

    from climbstream.train.losses import LanguageLossTracker
    from climbstream.train.sinks import JsonlSink

    path = tmp_path / "run" / "losses.jsonl"
    tracker = LanguageLossTracker(LANGUAGES, flush_every=3, sinks=[JsonlSink(path)])
    for step, (loss, lang, mask) in enumerate(batches):
        stage = 0 if step < 6 else 1
        weights = {"de": 1, "en": 2, "fi": 1, "fr": 1, "sw": 0} if stage == 0 else \
            {"de": 1, "en": 1, "fi": 2, "fr": 1, "sw": 1}
        tracker.update(loss, lang, mask=mask)
        tracker.step(step, (step + 1) * 6, stage=stage, weights=weights,
                     loader_metrics={"wait_s": 0.01 * step, "cache_hit_rate": 0.5, "bytes_downloaded": 1000 * step})
    tracker.score_heldout(lambda tokens: torch.full(tokens.shape, 2.5), {"de": [torch.zeros(4)] * 3}, 10)
    tracker.close()
    return path, tracker
