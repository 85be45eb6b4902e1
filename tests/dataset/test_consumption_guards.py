"""The loop's side of exactness: batches consumed in order, from a current iterator."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from climbstream.errors import ConfigError, StateError
from tests.corpora import WEIGHTS

from .helpers import batches_from, read_batches, stream_of

B = 16


def test_identically_seeded_loaders_still_continue_the_stream(mds_corpus):
    s = stream_of(mds_corpus, seed=1)
    seen = []
    for _ in range(3):  # a fresh loader each time, seeded the same: same base seed per iterator
        loader = s.dataloader(num_workers=2, generator=torch.Generator().manual_seed(0))
        for batch in batches_from(loader, 2):
            seen.extend(batch["position"].tolist())
            s.mark_consumed(batch)
    assert seen == list(range(6 * B))


def test_out_of_order_batches_are_refused(mds_corpus):
    s = stream_of(mds_corpus, seed=1)
    with pytest.raises(ConfigError, match="in_order=False"):
        s.dataloader(in_order=False)
    # a plain DataLoader with workers: only mark_consumed tells the stream what was consumed
    it = iter(DataLoader(s, batch_size=B, num_workers=2))
    next(it)
    second = next(it)
    with pytest.raises(StateError, match="global batch 1 \\(position 16\\) arrived, but global batch 0 is next"):
        s.mark_consumed(second)
    with pytest.raises(StateError, match="the consumed position is unknown"):
        s.state_dict()


def test_the_loaders_own_batches_move_the_position_without_mark_consumed(mds_corpus):
    s = stream_of(mds_corpus, seed=1)
    it = iter(s.dataloader(num_workers=2))
    next(it)
    second = next(it)
    assert s.position == 2 * B
    assert s.mark_consumed(second) == 2 * B  # marking what the loader followed changes nothing
    assert s.state_dict()["position"] == 2 * B


def test_a_plain_multi_worker_loader_without_mark_consumed_leaves_no_silent_position(mds_corpus):
    s = stream_of(mds_corpus, seed=1)
    it = iter(DataLoader(s, batch_size=B, num_workers=2))
    for _ in range(3):
        next(it)
    for ask in (s.state_dict, lambda: s.position, lambda: s.add_stage(WEIGHTS)):
        with pytest.raises(StateError, match="consumed position is unknown.*stream.dataloader\\(\\)"):
            ask()
    del it
    # a plain loader in the main process (num_workers=0) is followed: its iterator moves the position
    t = stream_of(mds_corpus, seed=1)
    plain = iter(DataLoader(t, batch_size=B, num_workers=0))
    for _ in range(3):
        next(plain)
    assert t.state_dict()["position"] == 3 * B


def test_batches_prefetched_before_add_stage_cannot_be_consumed(mds_corpus):
    s = stream_of(mds_corpus, seed=1)
    it = iter(s.dataloader(num_workers=2))
    s.mark_consumed(next(it))
    s.add_stage({"aa": 0.1, "bb": 0.1, "cc": 0.1, "dd": 0.7})
    with pytest.raises(StateError, match="was made before add_stage or load_state_dict replaced the stages"):
        s.mark_consumed(next(it))  # the stale iterator's next batch is refused, wherever it was made
    del it
    assert s.position == B
    fresh = read_batches(s, 1, num_workers=2)
    assert fresh[0]["positions"][0] == B


def test_workers_of_a_plain_loader_stop_producing_under_replaced_stages(mds_corpus):
    s = stream_of(mds_corpus, seed=1)
    it = iter(DataLoader(s, batch_size=B, num_workers=2, prefetch_factor=1))
    s.mark_consumed(next(it))
    s.add_stage({"aa": 0.1, "bb": 0.1, "cc": 0.1, "dd": 0.7})
    with pytest.raises(StateError, match=r"global batch \d+: this batch was made before add_stage"):
        for _ in range(8):  # the batches already in flight arrive; the next one a worker makes is refused
            next(it)
