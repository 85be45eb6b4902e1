"""LanguageLossTracker sums against a direct, one-sample-at-a-time computation."""

from __future__ import annotations

import pytest
import torch

from climbstream.errors import ConfigError
from climbstream.train.losses import LanguageLossTracker
from tests.train.tracker_data import LANGUAGES, reference, reference_means


def _run(batches, *, flush_every, feed):
    tracker = LanguageLossTracker(LANGUAGES, flush_every=flush_every, seq_len=batches[0][0].shape[1])
    for step, (loss, lang, mask) in enumerate(batches):
        feed(tracker, loss, lang, mask)
        tracker.step(step, (step + 1) * loss.shape[0])
    return tracker


def _language_records(tracker, step):
    return {r["lang"]: r for r in tracker.history if r["kind"] == "language" and r["step"] == step}


@pytest.mark.parametrize("form", ["per_token_masked", "per_sample_masked", "per_sample_tokens"])
def test_flushed_means_equal_direct_computation_with_masks(batches, form):
    def feed(tracker, loss, lang, mask):
        if form == "per_token_masked":
            tracker.update(loss, lang, mask=mask)
        elif form == "per_sample_masked":
            tracker.update(torch.where(mask, loss, 0).sum(1) / mask.sum(1), lang, mask=mask)
        else:
            tracker.update(torch.where(mask, loss, 0).sum(1) / mask.sum(1), lang, tokens=mask.sum(1))

    tracker = _run(batches, flush_every=4, feed=feed)
    for flush in range(3):
        chunk = batches[4 * flush: 4 * flush + 4]
        expected, direct = reference_means(chunk, masked=True), reference(chunk, masked=True)
        got = _language_records(tracker, 4 * flush + 3)
        assert set(got) == set(LANGUAGES)
        for name in LANGUAGES:
            assert got[name]["tokens_interval"] == direct[name][1]
            assert got[name]["samples_interval"] == direct[name][2]
            if expected[name] is None:
                assert got[name]["loss_mean"] is None
            else:
                assert got[name]["loss_mean"] == pytest.approx(expected[name], rel=1e-6)
    total = reference(batches, masked=True)
    assert tracker.tokens_total == {name: total[name][1] for name in LANGUAGES}


def test_unmasked_per_token_and_per_sample_with_seq_len_agree_with_direct(batches):
    per_token = _run(batches, flush_every=12, feed=lambda t, loss, lang, mask: t.update(loss, lang))
    per_sample = _run(batches, flush_every=12, feed=lambda t, loss, lang, mask: t.update(loss.mean(1), lang))
    expected = reference_means(batches, masked=False)
    for tracker in (per_token, per_sample):
        got = _language_records(tracker, 11)
        for name in LANGUAGES:
            if expected[name] is None:
                assert got[name]["loss_mean"] is None and got[name]["tokens_interval"] == 0
            else:
                assert got[name]["loss_mean"] == pytest.approx(expected[name], rel=1e-6)
                assert got[name]["tokens_interval"] == reference(batches, masked=False)[name][1]


def test_language_absent_from_every_batch_reports_no_loss_and_zero_tokens(batches):
    tracker = _run(batches, flush_every=6, feed=lambda t, loss, lang, mask: t.update(loss, lang, mask=mask))
    sw = [r for r in tracker.history if r["lang"] == "sw"]
    assert len(sw) == 2
    assert all(r["loss_mean"] is None and r["tokens_interval"] == 0 and r["tokens_total"] == 0 for r in sw)


def test_update_performs_no_host_sync_and_returns_nothing(batches, monkeypatch):
    tracker = LanguageLossTracker(LANGUAGES, flush_every=100)
    loss, lang, mask = batches[0]
    tracker.update(loss, lang, mask=mask)  # first call allocates the accumulator

    def forbidden(*args, **kwargs):
        raise AssertionError("update() moved a tensor value to the host")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    weights = loss.clone().requires_grad_(True)
    results = [tracker.update(weights, lang, mask=mask), tracker.update(loss.mean(1), lang, tokens=7),
               tracker.update(loss.mean(1), lang, tokens=mask.sum(1))]
    monkeypatch.undo()
    assert results == [None, None, None]
    assert not tracker.accumulator.requires_grad


def test_language_id_out_of_range_is_reported_at_flush_naming_languages():
    tracker = LanguageLossTracker(LANGUAGES, flush_every=2)
    tracker.update(torch.ones(3, 4), torch.tensor([0, 5, 1]))
    tracker.step(0, 3)
    with pytest.raises(ConfigError, match=r"1 samples .* outside 0\.\.4.*'de', 'en'"):
        tracker.step(1, 6)


def test_per_sample_loss_without_token_count_is_a_clear_error():
    tracker = LanguageLossTracker(LANGUAGES)
    with pytest.raises(ConfigError, match="per-sample loss needs tokens="):
        tracker.update(torch.ones(3), torch.tensor([0, 1, 2]))


def test_lang_that_does_not_match_the_batch_is_a_clear_error():
    tracker = LanguageLossTracker(LANGUAGES)
    with pytest.raises(ConfigError, match=r"lang has shape \(2,\) but the loss has 3 samples"):
        tracker.update(torch.ones(3, 4), torch.tensor([0, 1]))


def test_weights_are_normalized_ratios_and_unknown_names_rejected():
    tracker = LanguageLossTracker(LANGUAGES, flush_every=1)
    tracker.update(torch.ones(1, 2), torch.tensor([0]))
    records = tracker.step(0, 1, stage=3, weights={"de": 2**31, "en": 2**31})
    assert {r["lang"]: r["weight"] for r in records} == {"de": 0.5, "en": 0.5, "fi": 0.0, "fr": 0.0, "sw": 0.0}
    assert {r["stage"] for r in records} == {3}
    with pytest.raises(ConfigError, match=r"\['xx'\].*not among the tracked languages"):
        tracker.step(1, 2, weights={"xx": 1})


def test_stage_and_weights_persist_until_given_again():
    tracker = LanguageLossTracker(("a", "b"), flush_every=2)
    tracker.step(0, 1, stage=0, weights={"a": 1, "b": 3})
    first = tracker.step(1, 2)
    tracker.step(2, 3)
    second = tracker.step(3, 4)
    assert [r["weight"] for r in first] == [r["weight"] for r in second] == [0.25, 0.75]
    assert {r["stage"] for r in first + second} == {0}


def test_heldout_scores_equal_direct_mean_and_respect_max_samples():
    tracker = LanguageLossTracker(("a", "b"), flush_every=10)
    tracker.step(4, 40)
    stream_a = [{"tokens": torch.full((5,), float(i))} for i in range(10)]
    stream_b = [torch.full((2, 5), 1.0), torch.full((2, 5), 3.0)]
    scores = tracker.score_heldout(lambda tokens: tokens.float(), {"a": stream_a, "b": stream_b},
                                   max_samples=3, batch_size=2)
    assert scores == {"a": pytest.approx(1.0), "b": pytest.approx(5 / 3)}
    records = [r for r in tracker.history if r["kind"] == "heldout"]
    assert [(r["lang"], r["samples"], r["tokens"], r["step"], r["position"]) for r in records] == \
        [("a", 3, 15, 4, 40), ("b", 3, 15, 4, 40)]


def test_heldout_due_follows_heldout_every_and_next_flush_is_announced():
    tracker = LanguageLossTracker(("a",), flush_every=3, heldout_every=2)
    due, announced = [], []
    for step in range(6):
        announced.append(tracker.flushes_on_next_step)
        flushed = bool(tracker.step(step, step + 1))
        due.append(tracker.heldout_due)
        assert announced[-1] == flushed
    assert due == [False, True, False, True, False, True]
    assert announced == [False, False, True, False, False, True]



@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_accumulation_matches_direct_and_never_syncs_between_flushes(batches):
    tracker = LanguageLossTracker(LANGUAGES, flush_every=len(batches))
    on_device = [(loss.cuda(), lang.cuda(), mask.cuda()) for loss, lang, mask in batches]
    torch.cuda.synchronize()
    for step, (loss, lang, mask) in enumerate(on_device):
        check = not tracker.flushes_on_next_step
        torch.cuda.set_sync_debug_mode("error" if check else "default")
        try:
            tracker.update(loss, lang, mask=mask)
            tracker.update(loss.mean(1), lang, tokens=loss.shape[1])
            records = tracker.step(step, step + 1)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert tracker.accumulator.device.type == "cuda"
    masked, unmasked = reference(batches, masked=True), reference(batches, masked=False)
    got = {r["lang"]: r for r in records}
    for name in LANGUAGES:
        tokens = masked[name][1] + unmasked[name][1]
        assert got[name]["tokens_interval"] == tokens
        if tokens:
            expected = (masked[name][0] + unmasked[name][0]) / tokens
            assert got[name]["loss_mean"] == pytest.approx(expected, rel=1e-6)
