"""Small helpers shared by the dataset tests: build a stream, read batches, describe them comparably,
and a free port for a process group."""

from __future__ import annotations

import hashlib
import itertools
import socket

import torch

from climbstream import ClimbStream
from tests.corpora import WEIGHTS


def stream_of(corpus, *, seed: int = 7, global_batch: int = 16, weights=WEIGHTS, rank: int = 0, world_size: int = 1,
              **kwargs) -> ClimbStream:
    """The dataset tests' stream: rank 0 of 1 unless told, WEIGHTS, B = 16."""
    return ClimbStream(corpus, weights, global_batch=global_batch, seed=seed, rank=rank, world_size=world_size,
                       **kwargs)


def batches_from(loader, n: int) -> list:
    """The first `n` batches of one iterator over `loader`, as collated."""
    return list(itertools.islice(loader, n))


def described_from(loader, n: int) -> list[dict]:
    """`describe_batch` of each of the first `n` batches of one iterator over `loader`."""
    return [describe_batch(b) for b in batches_from(loader, n)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago (for MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_key(tokens: torch.Tensor, lang: int, shard: int, index: int) -> tuple:
    """What a position holds, comparable across runs and processes."""
    digest = hashlib.sha1(tokens.numpy().tobytes()).hexdigest()[:16]
    return (int(lang), int(shard), int(index), digest)


def read_batches(stream, num_batches: int, num_workers: int = 0, mark: bool = True, **loader_kwargs) -> list[dict]:
    """Iterate a DataLoader over `stream` for `num_batches` batches.

    Returns one dict per batch: positions and sample keys. With `mark`, each batch is
    marked consumed, as a training loop does.
    """
    loader = stream.dataloader(num_workers=num_workers, **loader_kwargs)
    out = []
    for batch in itertools.islice(loader, num_batches):
        out.append(describe_batch(batch))
        if mark:
            stream.mark_consumed(batch)
    return out


def describe_batch(batch: dict) -> dict:
    """Positions and per-position keys of a collated batch."""
    positions = batch["position"].tolist()
    keys = [
        sample_key(batch["tokens"][j], batch["lang"][j], batch["shard"][j], batch["index"][j])
        for j in range(len(positions))
    ]
    return {"positions": positions, "keys": keys}


def by_position(batches: list[dict]) -> dict[int, tuple]:
    """{position: key} over batches; fails on a duplicate position."""
    table: dict[int, tuple] = {}
    for b in batches:
        for p, k in zip(b["positions"], b["keys"]):
            assert p not in table, f"position {p} produced twice"
            table[p] = k
    return table
