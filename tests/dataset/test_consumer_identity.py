"""Who iterates the stream is what holds *this* stream: a DataLoader whose dataset is the stream or wraps
it, never whatever a local variable named `loader`, `dataloader` or `self` holds (decoys below)."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader

from climbstream import ClimbStream
from climbstream.errors import ConfigError
from tests.corpora import WEIGHTS

B = 32


def stream_of(corpus, global_batch=B):
    return ClimbStream(corpus, WEIGHTS, global_batch=global_batch, seed=0, rank=0, world_size=1)


def test_an_eval_loader_of_another_stream_named_loader_is_not_the_consumer(mds_corpus):
    train = stream_of(mds_corpus)
    loader = DataLoader(stream_of(mds_corpus, global_batch=16), batch_size=16)  # the decoy, never iterated
    dataloader = loader
    batch = next(iter(train.dataloader()))
    assert batch["position"].tolist() == list(range(B))
    assert dataloader is loader


def test_a_loader_of_another_stream_as_self_is_not_the_consumer(mds_corpus):
    train = stream_of(mds_corpus)

    class EvalLoader(DataLoader):
        def first_training_batch(self, stream):
            return next(iter(stream.dataloader()))  # `self`, a DataLoader of batch 16, is on the stack

    evaluator = EvalLoader(stream_of(mds_corpus, global_batch=16), batch_size=16)
    assert evaluator.first_training_batch(train)["position"].tolist() == list(range(B))


def test_this_streams_loader_is_found_under_any_name(mds_corpus):
    train = stream_of(mds_corpus)
    eval_loader = DataLoader(stream_of(mds_corpus, global_batch=16), batch_size=16)  # noqa: F841
    training_batches = DataLoader(train, batch_size=8)
    with pytest.raises(ConfigError, match="DataLoader batch_size 8: .* use stream.dataloader\\(\\) or batch_size=32"):
        next(iter(training_batches))


def test_a_wrapper_around_the_stream_is_followed_to_it(mds_corpus):
    train = stream_of(mds_corpus)

    class Wrapped(type(train).__mro__[1]):  # an IterableDataset holding the stream as .dataset
        def __init__(self, dataset):
            self.dataset = dataset

        def __iter__(self):
            return iter(self.dataset)

    with pytest.raises(ConfigError, match="DataLoader batch_size 8"):
        next(iter(DataLoader(Wrapped(train), batch_size=8)))
    assert next(iter(DataLoader(Wrapped(train), batch_size=B)))["position"].tolist() == list(range(B))
