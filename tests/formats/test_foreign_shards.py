"""`climbstream manifest` on shards written directly by MDSWriter and webdataset.ShardWriter."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from climbstream.cli import main as cli_main
from climbstream.errors import ManifestError
from climbstream.formats.manifest import Manifest
from climbstream.read.reader import open_reader
from climbstream.prepare.scan import build_manifest

SEQ = 24


def _samples(seed: int, n: int, seq: int = SEQ) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 50000, seq).astype(np.int32) for _ in range(n)]


def _write_mds(folder: str, arrays: list[np.ndarray], size_limit=4000) -> None:
    from streaming import MDSWriter

    with MDSWriter(out=folder, columns={"id": "int", "tokens": "ndarray:int32", "text": "str"},
                   size_limit=size_limit) as writer:
        for i, a in enumerate(arrays):
            writer.write({"id": i, "tokens": a, "text": f"sample {i}"})


def _write_tars(folder: str, arrays: list[np.ndarray], maxcount=7) -> None:
    import webdataset as wds

    os.makedirs(folder, exist_ok=True)
    with wds.ShardWriter(os.path.join(folder, "part-%04d.tar"), maxcount=maxcount, verbose=0) as writer:
        for i, a in enumerate(arrays):
            # Keys and members of varying length, as other tools write them.
            writer.write({"__key__": f"s{i:0{1 + i % 3}d}", "tokens.npy": a, "meta.json": {"i": i, "pad": "x" * (400 * (i % 4))}})


def _read_everything(manifest, lang, split):
    reader = open_reader(manifest)
    return [reader.read(lang, split, s, i) for s, sh in enumerate(manifest.shards(lang, split))
            for i in range(sh.samples)]


def test_mds_written_by_mdswriter_reads_back_after_manifest(tmp_path):
    root = tmp_path / "corpus"
    data = {("en", "train"): _samples(1, 50), ("en", "val"): _samples(2, 9), ("sw", "train"): _samples(3, 13)}
    for (lang, split), arrays in data.items():
        _write_mds(str(root / lang / split), arrays)
    assert cli_main(["manifest", str(root), "--format", "mds", "--quiet"]) == 0
    manifest = Manifest.load(str(root))
    assert manifest.languages == ["en", "sw"] and manifest.seq_len == SEQ
    assert len(manifest.shards("en")) > 1  # size_limit cut several shards
    assert manifest.tokenizer["vocab_size"] == 1 + max(int(a.max()) for v in data.values() for a in v)
    for (lang, split), arrays in data.items():
        got = _read_everything(manifest, lang, "heldout" if split == "val" else "train")
        np.testing.assert_array_equal(np.stack(got), np.stack(arrays).astype(np.int64))


def test_tars_written_by_shardwriter_read_back_with_a_language_map(tmp_path):
    root = tmp_path / "corpus"
    data = {("english", "train"): _samples(4, 30), ("english", "validation"): _samples(5, 4),
            ("swahili", "x/train"): _samples(6, 11)}
    for (folder, split), arrays in data.items():
        _write_tars(str(root / folder / split), arrays)
    lang_map = tmp_path / "langs.json"
    lang_map.write_text(json.dumps({"english": "en", "swahili": "sw"}))
    assert cli_main(["manifest", str(root), "--format", "wds", "--lang-map", str(lang_map), "--quiet"]) == 0
    manifest = Manifest.load(str(root))
    assert manifest.languages == ["en", "sw"]
    assert isinstance(manifest.shards("en")[0].extra["token_offsets"], list)  # uneven member offsets
    np.testing.assert_array_equal(np.stack(_read_everything(manifest, "en", "train")),
                                  np.stack(data[("english", "train")]))
    np.testing.assert_array_equal(np.stack(_read_everything(manifest, "en", "heldout")),
                                  np.stack(data[("english", "validation")]))
    np.testing.assert_array_equal(np.stack(_read_everything(manifest, "sw", "train")),
                                  np.stack(data[("swahili", "x/train")]))


@pytest.mark.parametrize("fmt", ["mds", "wds"])
def test_a_sample_of_the_wrong_length_is_named_with_its_shard(fmt, tmp_path):
    arrays = _samples(7, 12)
    arrays[9] = arrays[9][:SEQ - 3]
    folder = tmp_path / "c" / "fr" / "train"
    (_write_mds if fmt == "mds" else _write_tars)(str(folder), arrays, 1 << 20 if fmt == "mds" else 100)
    shard = "shard.00000.mds" if fmt == "mds" else "part-0000.tar"
    with pytest.raises(ManifestError, match=rf"fr/train/{shard}: sample 9 has {SEQ - 3} tokens, "
                                            rf"expected seq_len {SEQ}"):
        build_manifest(str(tmp_path / "c"), fmt)


def test_shards_outside_a_language_folder_and_compressed_tars_are_refused(tmp_path):
    _write_mds(str(tmp_path / "flat"), _samples(8, 3))
    with pytest.raises(ManifestError, match=r"shard\.00000\.mds: shard is not inside a language folder"):
        build_manifest(str(tmp_path / "flat"), "mds")
    import gzip

    _write_tars(str(tmp_path / "z" / "fr"), _samples(9, 3))
    with open(tmp_path / "z" / "fr" / "part-0000.tar", "rb") as f, gzip.open(tmp_path / "z" / "fr" / "part-0001.tar.gz", "wb") as g:
        g.write(f.read())
    with pytest.raises(ManifestError, match=r"fr/part-0001\.tar\.gz: compressed tar shards cannot be read sample by sample"):
        build_manifest(str(tmp_path / "z"), "wds")


@pytest.mark.parametrize("cut", ["inside a header", "inside a member", "before the end marker"])
def test_manifest_refuses_a_truncated_tar_and_names_it(tmp_path, cut):
    import tarfile

    folder = tmp_path / "c" / "fr" / "train"
    _write_tars(str(folder), _samples(10, 16), maxcount=100)
    shard = folder / "part-0000.tar"
    data = shard.read_bytes()
    with tarfile.open(shard) as tar:
        members = tar.getmembers()
    last = members[-1]
    at = {"inside a header": members[20].offset + 100, "inside a member": last.offset_data + last.size // 2,
          "before the end marker": last.offset_data + last.size + 10}[cut]
    shard.write_bytes(data[:at])
    with pytest.raises(ManifestError, match=r"fr/train/part-0000\.tar: .*the shard is truncated"):
        build_manifest(str(tmp_path / "c"), "wds")
    assert cli_main(["manifest", str(tmp_path / "c"), "--format", "wds", "--quiet"]) == 2


def test_a_pickle_encoded_token_column_is_refused_before_it_runs(tmp_path):
    from streaming import MDSWriter

    marker = tmp_path / "ran"

    class Payload:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "c" / "fr"
    with MDSWriter(out=str(folder), columns={"tokens": "pkl"}) as writer:
        writer.write({"tokens": Payload()})
    with pytest.raises(ManifestError, match=r"fr/shard\.00000\.mds sample 0: the column is pickle-encoded "
                                            r"\('pkl'\), and unpickling runs code"):
        build_manifest(str(tmp_path / "c"), "mds")
    assert not marker.exists()
