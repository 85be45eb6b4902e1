"""torchdata's StatefulDataLoader out of the box: its state is the state of what the loop received.

Each case reads part of the stream through a StatefulDataLoader, saves `loader.state_dict()`
(through JSON, as a checkpoint would), builds a new stream and loader, loads it, and reads
on: the concatenation must be the uninterrupted stream, position for position.
"""

from __future__ import annotations

import itertools
import json

import pytest
from torchdata.stateful_dataloader import StatefulDataLoader

from climbstream.errors import StateError

from .helpers import by_position, describe_batch, described_from, read_batches, stream_of

B = 16
FIRST, REST = 7, 6


@pytest.fixture(scope="module")
def uninterrupted(mds_corpus):
    return by_position(read_batches(stream_of(mds_corpus), FIRST + REST))


def loader_of(stream, num_workers, persistent=False, context=None, **kw):
    if num_workers:
        kw.update(persistent_workers=persistent, multiprocessing_context=context)
    return StatefulDataLoader(stream, batch_size=B, num_workers=num_workers, **kw)


@pytest.mark.parametrize(
    "num_workers, persistent, context",
    [(0, False, None), (2, False, "fork"), (2, True, "spawn"), (3, True, "fork"), (3, False, "spawn")],
)
def test_stateful_dataloader_resumes_exactly(mds_corpus, uninterrupted, num_workers, persistent, context):
    loader = loader_of(stream_of(mds_corpus), num_workers, persistent, context)
    it = iter(loader)
    first = [describe_batch(next(it)) for _ in range(FIRST)]
    state = json.loads(json.dumps(loader.state_dict()))
    del it
    again = loader_of(stream_of(mds_corpus), num_workers, persistent, context)
    again.load_state_dict(state)
    rest = described_from(again, REST)
    assert rest[0]["positions"][0] == FIRST * B
    assert by_position(first + rest) == uninterrupted


def test_snapshots_every_few_steps_still_resume_exactly(mds_corpus, uninterrupted):
    loader = loader_of(stream_of(mds_corpus), 2, context="fork", snapshot_every_n_steps=3)
    it = iter(loader)
    first = [describe_batch(next(it)) for _ in range(FIRST)]
    state = loader.state_dict()
    del it
    again = loader_of(stream_of(mds_corpus), 2, context="fork", snapshot_every_n_steps=3)
    again.load_state_dict(state)
    assert by_position(first + described_from(again, REST)) == uninterrupted


def test_another_num_workers_is_refused_by_the_loader_and_works_through_the_stream(mds_corpus, uninterrupted):
    loader = loader_of(stream_of(mds_corpus), 3, context="fork")
    it = iter(loader)
    first = [describe_batch(next(it)) for _ in range(FIRST)]
    state = loader.state_dict()
    del it
    wrong = loader_of(stream_of(mds_corpus), 2, context="fork")
    wrong.load_state_dict(state)
    with pytest.raises(StateError, match="saved by DataLoader worker 0 of 3 and is loaded into worker 0 of 2"):
        next(iter(wrong))
    # the documented way: the stream reads the consumed position out of the loader's state
    stream = stream_of(mds_corpus)
    stream.load_state_dict(state)
    assert stream.position == FIRST * B
    rest = described_from(loader_of(stream, 2, context="fork"), REST)
    assert by_position(first + rest) == uninterrupted


def test_stream_state_dict_beside_a_multi_worker_stateful_loader_is_an_error_not_zero(mds_corpus):
    stream = stream_of(mds_corpus)
    it = iter(loader_of(stream, 2, context="fork"))
    next(it)
    with pytest.raises(StateError, match="consumed position is unknown"):
        stream.state_dict()


def test_stream_dataloader_state_dict_is_the_position_after_its_last_batch(mds_corpus, uninterrupted):
    stream = stream_of(mds_corpus)
    loader = stream.dataloader(num_workers=2)
    it = iter(loader)
    first = [describe_batch(next(it)) for _ in range(FIRST)]
    state = json.loads(json.dumps(loader.state_dict()))
    assert state == stream.state_dict() and state["position"] == FIRST * B
    del it
    again = stream_of(mds_corpus).dataloader(num_workers=3)
    again.load_state_dict(state)
    assert by_position(first + described_from(again, REST)) == uninterrupted


def test_marking_each_step_after_a_stateful_loader_resumed_continues_where_its_workers_start(mds_corpus,
                                                                                             uninterrupted):
    first = stream_of(mds_corpus)
    loader = loader_of(first, 2)
    got = []
    for batch in itertools.islice(loader, FIRST):
        got.append(describe_batch(batch))
        first.mark_consumed(batch)
    saved = json.loads(json.dumps(loader.state_dict()))
    resumed = stream_of(mds_corpus)  # its own position is 0: only the loader holds the saved state
    loader = loader_of(resumed, 2)
    loader.load_state_dict(saved)
    for batch in itertools.islice(loader, REST):
        got.append(describe_batch(batch))
        assert resumed.mark_consumed(batch) == (len(got)) * B  # the plain-DataLoader habit, no StateError
    assert resumed.state_dict()["position"] == (FIRST + REST) * B
    assert by_position(got) == uninterrupted
