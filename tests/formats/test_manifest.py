"""Manifest loading and validation: every rejection names the file and the key."""

from __future__ import annotations

import copy
import json
import os

import pytest

from climbstream.errors import ManifestError
from climbstream.formats.manifest import MANIFEST_NAME, Manifest


def _minimal(seq_len=4) -> dict:
    shard = {"path": "fr/train/shard.00000.mds", "samples": 3, "tokens": 3 * seq_len, "bytes": 100,
             "sha256": "a" * 64}
    return {"version": 1, "format": "mds", "seq_len": seq_len,
            "tokenizer": {"kind": "bytes", "vocab_size": 257, "eos_id": 256, "hash": "bytes-v1"},
            "languages": {"fr": {"train": [shard], "heldout": [], "samples": 3, "tokens": 3 * seq_len,
                                 "heldout_samples": 0}}}


def test_load_accepts_folder_or_manifest_file_and_resolves_shard_urls(prepared):
    _, manifest = prepared
    by_dir = Manifest.load(manifest.root)
    by_file = Manifest.load(os.path.join(manifest.root, MANIFEST_NAME))
    assert by_dir.fingerprint() == by_file.fingerprint() == manifest.fingerprint()
    assert by_dir.root == by_file.root == manifest.root
    assert by_dir.languages == ["aa", "bb", "cc"]
    shard = by_dir.shards("aa")[0]
    assert shard.url == os.path.join(manifest.root, shard.path)
    assert os.path.getsize(shard.url) == shard.bytes
    assert by_dir.tokens("aa") == by_dir.samples("aa") * by_dir.seq_len


def test_fingerprint_ignores_key_order_and_changes_with_any_shard():
    data = _minimal()
    reordered = json.loads(json.dumps(data, sort_keys=False))
    reordered = dict(reversed(list(reordered.items())))
    a = Manifest.from_dict(data, "/x")
    assert a.fingerprint() == Manifest.from_dict(reordered, "/y").fingerprint()
    changed = copy.deepcopy(data)
    changed["languages"]["fr"]["train"][0]["sha256"] = "b" * 64
    assert Manifest.from_dict(changed, "/x").fingerprint() != a.fingerprint()
    assert Manifest.from_dict(json.loads(a.to_json()), "/x").fingerprint() == a.fingerprint()


def test_missing_manifest_names_the_file_and_the_command_to_run(tmp_path):
    with pytest.raises(ManifestError, match=rf"{tmp_path}/{MANIFEST_NAME}: no manifest here.*climbstream"):
        Manifest.load(str(tmp_path))


def test_wrong_version_names_both_versions_and_the_file(tmp_path):
    data = _minimal()
    data["version"] = 7
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"climbstream-manifest.json: unsupported manifest version 7 "
                                            r"\(this climbstream reads version 1\)"):
        Manifest.load(str(tmp_path))


def test_missing_seq_len_is_rejected_naming_the_offending_shard():
    data = _minimal()
    del data["seq_len"]
    with pytest.raises(ManifestError, match=r"m.json: seq_len is None.*languages\.fr\.train\[0\] "
                                            r"\(fr/train/shard\.00000\.mds\)"):
        Manifest.from_dict(data, "/x", "m.json")


def test_shard_with_its_own_different_seq_len_is_rejected():
    data = _minimal()
    data["languages"]["fr"]["train"][0]["seq_len"] = 8
    with pytest.raises(ManifestError, match=r"languages\.fr\.train\[0\].*seq_len 8.*says 4"):
        Manifest.from_dict(data, "/x", "m.json")


def test_unknown_format_is_rejected():
    data = _minimal()
    data["format"] = "parquet"
    with pytest.raises(ManifestError, match=r"m.json: format must be one of \['mds', 'wds'\], got 'parquet'"):
        Manifest.from_dict(data, "/x", "m.json")


def test_language_sample_count_disagreeing_with_its_shards_is_rejected():
    data = _minimal()
    data["languages"]["fr"]["samples"] = 5
    with pytest.raises(ManifestError, match=r"m.json: languages\.fr\.samples is 5 but its shards hold 3"):
        Manifest.from_dict(data, "/x", "m.json")


def test_shard_whose_samples_disagree_with_its_tokens_is_rejected():
    data = _minimal()
    data["languages"]["fr"]["train"][0]["samples"] = 2
    data["languages"]["fr"]["samples"] = 2
    with pytest.raises(ManifestError, match=r"languages\.fr\.train\[0\] \(fr/train/shard\.00000\.mds\) "
                                            r"lists 2 samples and 12 tokens"):
        Manifest.from_dict(data, "/x", "m.json")


def test_shard_path_escaping_the_corpus_is_rejected():
    data = _minimal()
    data["languages"]["fr"]["train"][0]["path"] = "../elsewhere.mds"
    with pytest.raises(ManifestError, match=r"languages\.fr\.train\[0\]\.path must be a relative path"):
        Manifest.from_dict(data, "/x", "m.json")


def test_unknown_language_error_lists_the_known_ones():
    m = Manifest.from_dict(_minimal(), "/x", "m.json")
    with pytest.raises(ManifestError, match=r"no language 'de' \(it has fr\)"):
        m.shards("de")


def test_a_manifest_changed_after_it_was_written_is_refused_unless_its_checksum_goes(mds_corpus, tmp_path):
    import shutil

    from climbstream.formats.manifest import CHECKSUM_KEY

    corpus = tmp_path / "corpus"
    shutil.copytree(mds_corpus, corpus)
    path = corpus / MANIFEST_NAME
    data = json.loads(path.read_text())
    assert CHECKSUM_KEY in data
    data["languages"]["aa"]["train"][0]["samples"] += 1  # one digit flipped: every later position would shift
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=rf"{MANIFEST_NAME}: content_sha256 does not match the content "
                                            r"\(corrupted, or edited by hand\); rerun 'climbstream manifest'"):
        Manifest.load(str(corpus))
    data["languages"]["aa"]["train"][0]["samples"] -= 1
    data["tokenizer"]["kind"] = "renamed by hand"  # an edit the user stands by
    del data[CHECKSUM_KEY]
    path.write_text(json.dumps(data))
    assert Manifest.load(str(corpus)).data["tokenizer"]["kind"] == "renamed by hand"


@pytest.mark.parametrize("head,message", [
    ({"head_bytes": 36, "head_sha256": "XYZ"}, r"sample_sums\.head_sha256 \(fr/train/shard\.00000\.mds\) must be 64"),
    ({"head_bytes": 8, "head_sha256": "c" * 64}, r"sample_sums\.head_bytes \(fr/train/shard\.00000\.mds\) must be an "
                                                 r"integer >= 32"),
    ({"head_sha256": "c" * 64}, r"sample_sums\.head_bytes .* got None"),
])
def test_a_bad_version_2_sums_head_is_named(head, message):
    data = _minimal()
    data["languages"]["fr"]["train"][0]["sample_sums"] = {"path": "fr/train/shard.00000.mds.sums", "bytes": 48,
                                                          "sha256": "b" * 64, **head}
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict(data, "/x", "m.json")
    data["languages"]["fr"]["train"][0]["sample_sums"].update(head_bytes=36, head_sha256="c" * 64)
    Manifest.from_dict(data, "/x", "m.json")  # a well-formed head loads
