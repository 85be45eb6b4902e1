"""Packing and the held-out choice (pure functions)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from climbstream.prepare.packing import Packer, heldout_score, is_heldout

EOS = 99


def _pack(docs, seq_len, tail):
    packer = Packer(seq_len, EOS, tail)
    samples = [s for d in docs for s in packer.add(np.asarray(d, np.int64))]
    last, report = packer.finish()
    if last is not None:
        samples.append(last)
    return samples, report


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 98), max_size=40), max_size=30), st.integers(1, 17))
def test_every_token_of_every_document_appears_once_in_order_then_the_dropped_tail(docs, seq_len):
    samples, report = _pack(docs, seq_len, "drop")
    expected = [t for d in docs for t in [*d, EOS]]
    assert all(len(s) == seq_len for s in samples)
    flat = [int(t) for s in samples for t in s]
    assert flat + expected[len(flat):] == expected
    assert report.dropped_tokens == len(expected) - len(flat) < seq_len
    assert report.pad_tokens == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 98), max_size=40), min_size=1, max_size=30), st.integers(1, 17))
def test_pad_tail_keeps_every_token_and_pads_only_the_last_sample_with_eos(docs, seq_len):
    samples, report = _pack(docs, seq_len, "pad")
    expected = [t for d in docs for t in [*d, EOS]]
    flat = [int(t) for s in samples for t in s]
    assert flat[:len(expected)] == expected
    assert flat[len(expected):] == [EOS] * report.pad_tokens
    assert report.pad_tokens < seq_len and report.dropped_tokens == 0
    assert len(flat) % seq_len == 0


def test_heldout_choice_depends_only_on_the_document_id_and_matches_the_fraction():
    ids = [f"doc-{i}" for i in range(20000)]
    chosen = [is_heldout(i, 0.05) for i in ids]
    assert 0.04 < sum(chosen) / len(ids) < 0.06
    assert chosen == [is_heldout(i, 0.05) for i in ids]  # no state, no language input
    assert all(is_heldout(i, 0.2) for i, c in zip(ids, chosen) if c)  # nested as the fraction grows
    assert 0.0 <= min(map(heldout_score, ids)) and max(map(heldout_score, ids)) < 1.0
