"""Sample sums: written beside every uncompressed shard by prepare and manifest, versioned,
listed in the manifest without changing its fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct

import numpy as np
import pytest

from climbstream.errors import ManifestError
from climbstream.formats import sample_sums
from climbstream.formats.manifest import Manifest
from climbstream.formats.mds import parse_header
from climbstream.prepare.scan import build_manifest


def _ranges(manifest, shard, data: bytes) -> list[tuple[int, int]]:
    if manifest.format == "mds":
        header = parse_header(data, shard.path, shard.samples, len(data))
        return [header.sample_range(j) for j in range(shard.samples)]
    from climbstream.formats.wds import token_offset

    width = manifest.seq_len * np.dtype(shard.extra["tokens_dtype"]).itemsize
    starts = [token_offset(shard.extra["token_offsets"], j, shard.where) for j in range(shard.samples)]
    return [(a, a + width) for a in starts]


def test_prepare_writes_each_shards_sums_beside_it_and_lists_them(prepared):
    fmt, manifest = prepared
    for lang in manifest.languages:
        for split in ("train", "heldout"):
            for shard in manifest.shards(lang, split):
                entry = shard.extra["sample_sums"]
                with open(shard.url, "rb") as f:
                    data = f.read()
                with open(shard.url + ".sums", "rb") as f:
                    blob = f.read()
                head_bytes = 32 + 4 * -(-shard.samples // sample_sums.BLOCK)
                assert entry == {"path": shard.path + ".sums", "bytes": len(blob),
                                 "sha256": hashlib.sha256(blob).hexdigest(), "head_bytes": head_bytes,
                                 "head_sha256": hashlib.sha256(blob[:head_bytes]).hexdigest()}
                assert len(blob) == head_bytes + 4 * shard.samples
                sums = sample_sums.decode(blob, shard.path, shard.samples)
                want = [sample_sums.checksum(data[a:b]) for a, b in _ranges(manifest, shard, data)]
                assert sums.samples.tolist() == want
                if fmt == "mds":
                    assert sums.header_bytes == shard.extra["header_bytes"]
                    assert sums.header_sum == sample_sums.checksum(data[:sums.header_bytes])


def test_manifest_writes_the_same_sums_as_prepare_and_the_same_fingerprint_without_them(prepared, tmp_path):
    fmt, manifest = prepared
    root = str(tmp_path / "corpus")
    shutil.copytree(manifest.root, root)
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".sums") or f == "climbstream-manifest.json":
                os.remove(os.path.join(d, f))
    scanned = build_manifest(root, fmt)
    shard = scanned.shards("aa")[0]
    assert shard.extra["sample_sums"] == manifest.shards("aa")[0].extra["sample_sums"]
    with open(os.path.join(root, shard.path + ".sums"), "rb") as f, open(shard.url + ".sums", "rb") as g:
        assert f.read() == g.read()
    # a manifest from before sample sums describes the same samples: resume is allowed across it
    old = json.loads(scanned.to_json())
    for entry in old["languages"].values():
        for split in ("train", "heldout"):
            for s in entry[split]:
                s.pop("sample_sums")
    assert Manifest.from_dict(old, root).fingerprint() == scanned.fingerprint()
    dry = build_manifest(root, fmt, write=False)  # writes nothing, so lists no sums
    assert "sample_sums" not in dry.shards("aa")[0].extra


def test_another_sums_version_or_a_bad_entry_is_an_error_naming_the_file(prepared):
    fmt, manifest = prepared
    shard = manifest.shards("aa")[0]
    with open(shard.url + ".sums", "rb") as f:
        blob = f.read()
    newer = blob[:8] + struct.pack("<I", 3) + blob[12:]
    with pytest.raises(ManifestError, match=r"x\.sums: sample-sums version 3 .* this climbstream reads versions 1, 2"):
        sample_sums.decode(newer, "x.sums", shard.samples)
    with pytest.raises(ManifestError, match="sums for .* samples .* but the shard has"):
        sample_sums.decode(blob, "x.sums", shard.samples + 1)
    with pytest.raises(ManifestError, match="not a climbstream sample-sums file"):
        sample_sums.decode(b"PK" + blob[2:], "x.sums", shard.samples)
    data = json.loads(manifest.to_json())
    data["languages"]["aa"]["train"][0]["sample_sums"]["path"] = "../elsewhere.sums"
    with pytest.raises(ManifestError, match=r"languages\.aa\.train\[0\]\.sample_sums .* must be \{path: "):
        Manifest.from_dict(data, manifest.root)
