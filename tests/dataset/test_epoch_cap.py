"""Epoch caps: a clear error, or the whole stream ends at a global batch boundary."""

from __future__ import annotations

import pytest

from climbstream import ClimbStream
from climbstream.errors import EpochCapError

from .helpers import read_batches

B = 16
HEAVY_DD = {"aa": 0.1, "bb": 0.1, "cc": 0.1, "dd": 0.7}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_epoch_cap_error_names_the_language_after_every_batch_below_the_cap(mds_corpus, num_workers):
    s = ClimbStream(mds_corpus, HEAVY_DD, global_batch=B, rank=0, world_size=1, epoch_cap=1.0)
    dd = s.languages.index("dd")
    cap = s.samples_per_epoch()["dd"]
    passing = next(b for b in range(1000) if s.schedule.counts_at((b + 1) * B)[dd] > cap)
    loader = iter(s.dataloader(num_workers=num_workers))
    got = 0
    with pytest.raises(EpochCapError, match="language dd would pass its epoch cap of 1.0 epochs"):
        for _ in range(1000):
            next(loader)
            got += 1
    assert got == passing  # every batch within the cap reached the loop, the passing one did not


@pytest.mark.parametrize("num_workers", [0, 2])
def test_epoch_cap_stop_ends_every_reader_at_the_same_batch(mds_corpus, num_workers):
    s = ClimbStream(mds_corpus, HEAVY_DD, global_batch=B, rank=0, world_size=1, epoch_cap=2.0, on_epoch_cap="stop")
    batches = read_batches(s, 1000, num_workers=num_workers)
    per_epoch = s.samples_per_epoch()["dd"]
    n = len(batches)
    counts = s.schedule.counts_at(n * B)
    dd = s.languages.index("dd")
    assert counts[dd] <= 2 * per_epoch < s.schedule.counts_at((n + 1) * B)[dd]
    assert [b["positions"][0] for b in batches] == [i * B for i in range(n)]
