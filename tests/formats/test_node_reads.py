"""A node reads whole only the shards its partitions own at least half of, the rest by range.

The rule is pure (read/node_reads.py, read_modes.ranges_for_unowned); the reader applies
it per read (`whole=False`: by verified range in "shard" mode) and the corpus reader keeps
those shards out of the prefetcher. Where ranges cannot be read or checked the shards
stay whole, through the cache, as without partitions.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from climbstream.formats import sample_sums
from climbstream.formats.manifest import Manifest
from climbstream.prepare.prepare import prepare
from climbstream.read.node_reads import NodeReads
from climbstream.read.read_modes import ranges_for_unowned
from climbstream.read.reader import open_reader
from climbstream.stream.corpus_view import CorpusView
from tests.formats.conftest import HELDOUT_FRAC, SEQ_LEN, SHARD_SAMPLES


def _without(manifest: Manifest, key: str, root: str) -> Manifest:
    """The manifest with `key` dropped from every shard, as if it lived at `root`."""
    data = dict(manifest.data)
    data["languages"] = {n: {**e, "train": [{k: v for k, v in s.items() if k != key} for s in e["train"]],
                             "heldout": [{k: v for k, v in s.items() if k != key} for s in e["heldout"]]}
                         for n, e in data["languages"].items()}
    return Manifest.from_dict(data, root, f"{root}/m.json")


def test_unowned_shards_are_read_by_range_only_where_ranges_are_samples_and_verified(prepared):
    local = prepared[1]
    remote = Manifest.from_dict(local.data, "s3://no-such-bucket/c", "s3://no-such-bucket/c/m.json")
    assert ranges_for_unowned(remote, "shard", "auto")  # sample sums listed: verified ranges
    assert ranges_for_unowned(remote, "shard", "size")
    assert not ranges_for_unowned(remote, "shard", "sha256")  # crc32 is no sha256: whole, hashed on download
    assert not ranges_for_unowned(_without(local, "sample_sums", "s3://no-such-bucket/c"), "shard", "auto")
    assert ranges_for_unowned(_without(local, "sample_sums", "s3://no-such-bucket/c"), "shard", "size")
    assert not ranges_for_unowned(local, "local", "auto")  # read in place: nothing downloaded
    assert not ranges_for_unowned(remote, "range", "auto")  # everything is a range already
    packed = dict(remote.data)
    packed["languages"] = {n: {**e, "train": [dict(s, compression="zstd", raw_bytes=s["bytes"]) for s in e["train"]]}
                           for n, e in packed["languages"].items()}
    assert not ranges_for_unowned(Manifest.from_dict(packed, remote.root), "shard", "auto")  # ranges of zstd


@pytest.mark.parametrize("partitions,nodes", [(4, 4), (4, 2), (6, 3)])
def test_each_node_reads_whole_what_its_partitions_own_half_of(prepared, partitions, nodes):
    view = CorpusView([prepared[1]], [prepared[1].root])
    orders = view.orders(seed=5, window_shards=2, partitions=partitions)
    per = partitions // nodes
    reads = [NodeReads(orders, n * per, (n + 1) * per) for n in range(nodes)]
    for i, name in enumerate(view.languages):
        shards = np.arange(len(orders.shard_samples[i]))
        whole = np.array([r.whole(np.full(shards.size, i), shards) for r in reads])
        for n in range(nodes):
            np.testing.assert_array_equal(whole[n], orders.read_whole(i, n * per, (n + 1) * per))
            owned = orders.owned_samples(i, n * per, (n + 1) * per)
            assert (whole[n] == (2 * owned >= orders.shard_samples[i]) & (owned > 0)).all(), name
        assert (whole.sum(axis=0) <= 2).all(), name  # per epoch a shard is downloaded whole at most twice
    assert sum(r.whole_shards() for r in reads) >= sum(len(s) for s in orders.shard_samples) - (partitions - 1)
    assert NodeReads.of(view.orders(seed=5, window_shards=2), 0, 1) is None  # P = 1: the read mode alone


def test_a_node_reads_whole_only_the_languages_whose_window_it_trains_through_within_the_limit(prepared):
    """The density half of the rule: at a language's share s of a global batch B, one of P
    partitions trains through its window (min(part, W x mean shard) samples) in
    window / (s B / P) batches; shards of languages slower than `within` are read by range."""
    view = CorpusView([prepared[1]], [prepared[1].root])
    partitions, batch, window = 4, 64, 2
    orders = view.orders(seed=5, window_shards=window, partitions=partitions)
    shares = np.linspace(0.05, 0.4, len(orders))
    shares /= shares.sum()
    turnover = []
    for i in range(len(orders)):
        samples = orders.shard_samples[i]
        expected = min(samples.sum() / partitions, window * samples.sum() / (samples > 0).sum()) / (
            shares[i] * batch / partitions)
        assert orders.window_batches(i, shares[i], batch) == pytest.approx(expected)
        turnover.append(expected)
    assert orders.window_batches(0, 0.0, batch) == float("inf")  # a language with no draws is never whole
    within = float(np.median(turnover))
    node = NodeReads(orders, 0, 2, shares, batch, within)
    owned_only = NodeReads(orders, 0, 2)
    for i in range(len(orders)):
        shards = np.arange(len(orders.shard_samples[i]))
        got = node.whole(np.full(shards.size, i), shards)
        if turnover[i] <= within:
            np.testing.assert_array_equal(got, owned_only.whole(np.full(shards.size, i), shards))
        else:
            assert not got.any(), view.languages[i]
    assert 0 < node.whole_shards() < owned_only.whole_shards()
    assert NodeReads(orders, 0, 2, shares, batch, 0.0).whole_shards() == 0  # within 0: every sample by range
    assert NodeReads(orders, 0, 2, shares, batch, float("inf")).whole_shards() == owned_only.whole_shards()


@pytest.fixture
def remote_mds(s3_bucket, folder_corpus):
    options = s3_bucket.options()
    url = f"{s3_bucket.url}/corpora/mds"
    prepare(folder_corpus, url, fmt="mds", seq_len=SEQ_LEN, heldout_frac=HELDOUT_FRAC,
            shard_samples=SHARD_SAMPLES, storage=options)
    return Manifest.load(url, storage=options), options


def _cached(cache_dir) -> list[str]:
    """The whole shards in the cache (not the sample sums and headers of range-read shards)."""
    return [name for name in _entries(cache_dir) if not name.endswith((".sums", "_header"))]


def _entries(cache_dir) -> list[str]:
    data = os.path.join(cache_dir, "data")
    return sorted(os.listdir(data)) if os.path.isdir(data) else []


def test_a_shard_the_node_does_not_read_whole_is_read_by_range_and_never_cached(remote_mds, tmp_path):
    manifest, options = remote_mds
    shard = manifest.shards("bb")[0]
    ranged = open_reader(manifest, storage=options, read_mode="range")
    expected = [ranged.read("bb", "train", 0, i).copy() for i in range(shard.samples)]
    cache = str(tmp_path / "cache")
    reader = open_reader(manifest, storage=options, read_mode="shard", cache_dir=cache)
    assert reader.mode == "shard" and reader.unowned_by_range
    with reader.holding():
        got = [reader.read_with("bb", "train", 0, i, (), whole=False)[0] for i in range(shard.samples)]
    np.testing.assert_array_equal(np.stack(got), np.stack(expected))
    assert _cached(cache) == []  # nothing downloaded whole
    assert len(_entries(cache)) == 2  # its sample sums and header, for the node's other processes
    sums, header = shard.extra["sample_sums"]["bytes"], shard.extra["header_bytes"]
    assert reader.metrics()["bytes_downloaded"] == ranged.metrics()["bytes_downloaded"]
    assert reader.metrics()["bytes_downloaded"] <= shard.bytes + sums + header
    reader.read_with("bb", "train", 1, 0, ())  # a shard it reads whole: through the cache
    assert len(_cached(cache)) == 1
    reader.close()
    ranged.close()


def test_a_range_read_shards_sums_and_header_are_fetched_once_per_node_and_checked_from_the_cache(
        remote_mds, tmp_path):
    """Readers sharing a cache_dir (a node's ranks and workers) fetch a range-read shard's sums
    head and header once: the later ones download only their samples and, per process, the
    block of sums they fall in (never cached). A copy corrupted on the
    node's disk is caught when read, naming the shard and the file."""
    from climbstream.storage.retry import IntegrityError

    manifest, options = remote_mds
    shard = manifest.shards("bb")[0]
    head, header = shard.extra["sample_sums"]["head_bytes"], shard.extra["header_bytes"]
    block = 4 * min(shard.samples, sample_sums.BLOCK)  # the block of sums samples 0..2 fall in
    sample = (shard.bytes - header) // shard.samples
    cache = str(tmp_path / "cache")
    readers = [open_reader(manifest, storage=options, read_mode="shard", cache_dir=cache) for _ in range(3)]
    for reader in readers:
        for i in (0, 1):
            reader.read_with("bb", "train", 0, i, (), whole=False)
    got = [r.metrics()["bytes_downloaded"] for r in readers]
    assert got == [head + block + header + 2 * sample] + [block + 2 * sample] * 2, (got, head, header, sample)
    per_process = [open_reader(manifest, storage=options, read_mode="range") for _ in range(2)]  # no cache_dir
    for reader in per_process:
        reader.read_with("bb", "train", 0, 0, ())
    assert [r.metrics()["bytes_downloaded"] for r in per_process] == [head + block + header + sample] * 2
    for reader in readers + per_process:
        reader.close()

    for suffix, what in ((".sums", "sample sums .* copy (.*) fails its sha256"),
                         ("_header", "header: .* copy (.*) fails its checksum")):
        path = os.path.join(cache, "data", next(n for n in _entries(cache) if n.endswith(suffix)))
        data = bytearray(open(path, "rb").read())
        data[-1] ^= 0xFF
        with open(path, "wb") as f:
            f.write(data)
        reader = open_reader(manifest, storage=options, read_mode="shard", cache_dir=cache)
        with pytest.raises(IntegrityError, match=rf"languages\.bb\.train\[0\].*{what}") as caught:
            reader.read_with("bb", "train", 0, 2, (), whole=False)
        assert re.search(what, str(caught.value)).group(1) == path
        reader.close()
        os.unlink(path)  # as the message says: deleted, it is fetched again
        reader = open_reader(manifest, storage=options, read_mode="shard", cache_dir=cache)
        reader.read_with("bb", "train", 0, 2, (), whole=False)
        assert reader.metrics()["bytes_downloaded"] == (head if suffix == ".sums" else header) + block + sample
        reader.close()


def test_hints_name_only_whole_shards_and_sha256_keeps_every_shard_whole(remote_mds, tmp_path):
    manifest, options = remote_mds
    view = CorpusView([manifest], [manifest.root])
    cache = str(tmp_path / "cache")
    readers = view.open_readers(storage=options, read_mode="shard", cache_dir=cache, prefetch_depth=2)
    readers.hint([("bb", 0), ("bb", 1)], whole=[False, True])
    readers.read_with("bb", 1, 0)  # waits for shard 1's download; shard 0, were it planned, started first
    readers.close()  # joins the prefetch threads: a download they started is complete now
    assert len(_cached(cache)) == 1 and "shard.00001" in _cached(cache)[0]

    hashed = str(tmp_path / "hashed")  # verify="sha256": no range reads, so the shard comes whole
    readers = view.open_readers(storage=options, read_mode="shard", cache_dir=hashed, verify="sha256")
    assert not readers.readers[0].unowned_by_range
    readers.read_with("bb", 0, 3, whole=False)
    assert len(_cached(hashed)) == 1 and readers.metrics()["bytes_downloaded"] == manifest.shards("bb")[0].bytes
    readers.close()
