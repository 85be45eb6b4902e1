"""MDS written with compression: scanned, decompressed once into the cache, read exactly."""

from __future__ import annotations

import os

import numpy as np
import pytest

from climbstream import ClimbStream
from climbstream.cli import main as cli_main
from climbstream.errors import ConfigError
from climbstream.formats.manifest import Manifest
from climbstream.read.reader import open_reader
from climbstream.prepare.scan import build_manifest

SEQ = 32
LANGS = {"en": 90, "fr": 40, "sw": 12}


def _arrays(lang: str, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(sum(map(ord, lang)))
    return [rng.integers(0, 60000, SEQ).astype(np.uint16) for _ in range(n)]


def _write(root: str, compression: str | None) -> dict[str, list[np.ndarray]]:
    from streaming import MDSWriter

    data = {}
    for lang, n in LANGS.items():
        data[lang] = _arrays(lang, n)
        with MDSWriter(out=os.path.join(root, lang, "train"), columns={"tokens": "ndarray:uint16", "id": "int"},
                       compression=compression, size_limit=1500) as writer:
            for i, tokens in enumerate(data[lang]):
                writer.write({"tokens": tokens, "id": i})
    return data


def _everything(reader, manifest, lang):
    return np.stack([reader.read(lang, "train", s, i) for s, shard in enumerate(manifest.shards(lang))
                     for i in range(shard.samples)])


@pytest.mark.parametrize("compression", ["zstd", "zstd:7", "gz", "bz2", "br", "snappy"])
def test_every_mdswriter_compression_reads_back_through_the_cache(tmp_path, compression):
    root = str(tmp_path / "corpus")
    data = _write(root, compression)
    assert cli_main(["manifest", root, "--format", "mds", "--quiet"]) == 0
    manifest = Manifest.load(root)
    shard = manifest.shards("en")[0]
    assert len(manifest.shards("en")) > 1 and shard.path.endswith(".mds." + compression.split(":")[0])
    assert shard.extra["compression"] == compression and shard.extra["raw_bytes"] > 0
    cache = tmp_path / "cache"
    reader = open_reader(manifest, cache_dir=str(cache))
    assert reader.mode == "shard"
    for lang in LANGS:
        np.testing.assert_array_equal(_everything(reader, manifest, lang), np.stack(data[lang]).astype(np.int64))
    reader.close()
    cached = sorted(os.path.getsize(cache / "data" / f) for f in os.listdir(cache / "data"))
    raw = sorted(s.extra["raw_bytes"] for lang in LANGS for s in manifest.shards(lang))
    assert cached == raw  # the cache holds each shard once, decompressed


def test_without_a_cache_dir_compressed_shards_use_the_machines_default_cache(tmp_path, monkeypatch):
    root = str(tmp_path / "corpus")
    data = _write(root, "zstd")
    manifest = build_manifest(root, "mds")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    reader = open_reader(manifest)
    assert reader.mode == "shard" and reader.cache_dir == str(tmp_path / "xdg" / "climbstream")
    np.testing.assert_array_equal(_everything(reader, manifest, "fr"), np.stack(data["fr"]).astype(np.int64))
    reader.close()
    raw = sorted(s.extra["raw_bytes"] for s in manifest.shards("fr"))
    assert sorted(os.path.getsize(p) for p in (tmp_path / "xdg" / "climbstream" / "data").iterdir()) == raw

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    weights = {"en": 0.5, "fr": 0.3, "sw": 0.2}
    stream = ClimbStream(root, weights, global_batch=8, seed=1, rank=0, world_size=1)
    batch = next(iter(stream.dataloader(num_workers=1)))
    assert batch["tokens"].shape == (8, SEQ)
    assert os.listdir(tmp_path / "home" / ".cache" / "climbstream" / "data")  # decompressed there
    given = tmp_path / "given"
    assert open_reader(manifest, cache_dir=str(given)).cache_dir == str(given)  # an explicit one wins


def test_the_default_cache_follows_xdg_and_home():
    from climbstream.storage.cache_location import default_cache_dir

    assert default_cache_dir({"XDG_CACHE_HOME": "/scratch/c", "HOME": "/h"}) == "/scratch/c/climbstream"
    assert default_cache_dir({"XDG_CACHE_HOME": "relative", "HOME": "/h"}) == "/h/.cache/climbstream"
    assert default_cache_dir({"HOME": "/h"}) == "/h/.cache/climbstream"


def test_compressed_shards_refuse_range_reads_and_a_cache_too_small(tmp_path):
    root = str(tmp_path / "corpus")
    _write(root, "zstd")
    manifest = build_manifest(root, "mds")
    with pytest.raises(ConfigError, match="byte ranges of a compressed shard are not samples"):
        open_reader(manifest, cache_dir=str(tmp_path / "c"), read_mode="range")
    largest_raw = max(s.extra["raw_bytes"] for lang in LANGS for s in manifest.shards(lang))
    largest_packed = max(s.bytes for lang in LANGS for s in manifest.shards(lang))
    assert largest_packed < largest_raw
    limit = largest_raw * len(LANGS) * 5 - 1  # the shards in use, counted decompressed, do not fit
    reader = open_reader(manifest, cache_dir=str(tmp_path / "c"), cache_limit_bytes=limit)
    with pytest.raises(ConfigError, match="is smaller than what must be resident at once"):
        reader.read("en", "train", 0, 0)


def test_compressed_corpus_on_s3_streams_the_same_batches_as_uncompressed(tmp_path, s3_bucket):
    from climbstream.storage.registry import open_store

    plain, packed = str(tmp_path / "plain"), str(tmp_path / "packed")
    _write(plain, None)
    _write(packed, "zstd")
    build_manifest(plain, "mds")
    url = f"{s3_bucket.url}/zstd"
    store = open_store(url, s3_bucket.options())
    for d, _, files in os.walk(packed):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), packed).replace(os.sep, "/")
            store.put_file(os.path.join(d, f), f"{url}/{rel}")
    assert cli_main(["manifest", url, "--format", "mds", "--endpoint-url", s3_bucket.endpoint_url, "--quiet"]) == 0

    weights = {"en": 0.5, "fr": 0.3, "sw": 0.2}
    reference = ClimbStream(plain, weights, global_batch=8, seed=5, rank=0, world_size=1)
    stream = ClimbStream(url, weights, global_batch=8, seed=5, rank=0, world_size=1,
                         cache_dir=str(tmp_path / "cache"), storage=s3_bucket.options())
    got, want = {}, {}
    for table, s, workers in ((want, reference, 0), (got, stream, 2)):
        for b, batch in zip(range(10), s.dataloader(num_workers=workers)):
            for j, position in enumerate(batch["position"].tolist()):
                table[position] = (int(batch["lang"][j]), int(batch["index"][j]), batch["tokens"][j].tolist())
    assert sorted(got) == list(range(80)) and got == want
