"""prepare -> read, locally, for both formats: exact accounting, held-out choice, peer readers."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from climbstream.formats.manifest import Manifest
from climbstream.read.reader import open_reader
from tests.formats.conftest import HELDOUT_FRAC, SEQ_LEN, SHARD_SAMPLES, read_all, reference_stream


def test_every_token_of_every_kept_document_is_read_back_once_in_order(prepared, folder_corpus):
    fmt, manifest = prepared
    with open_reader(Manifest.load(manifest.root)) as reader:
        for lang in manifest.languages:
            info = manifest.language_info(lang)
            for split, prefix in (("train", ""), ("heldout", "heldout_")):
                expected = reference_stream(folder_corpus, lang, split, HELDOUT_FRAC)
                got = read_all(reader, manifest, lang, split)
                assert got.dtype == np.int64
                dropped = info[f"{prefix}dropped_tail_tokens"]
                assert len(got) + dropped == len(expected) == info[f"{prefix}document_tokens"]
                np.testing.assert_array_equal(got, expected[:len(got)])
                assert dropped < SEQ_LEN
        assert reader.metrics()["bytes_downloaded"] == 0  # local shards are read in place


def test_shards_are_cut_by_sample_count_and_laid_out_per_language_and_split(prepared):
    fmt, manifest = prepared
    shards = manifest.shards("aa")
    assert [s.samples for s in shards[:-1]] == [SHARD_SAMPLES] * (len(shards) - 1)
    assert 0 < shards[-1].samples <= SHARD_SAMPLES
    name = r"shard\.\d{5}\.mds" if fmt == "mds" else r"shard-\d{6}\.tar"
    assert all(re.fullmatch(rf"aa/train/{name}", s.path) for s in shards)
    assert all(re.fullmatch(rf"aa/heldout/{name}", s.path) for s in manifest.shards("aa", "heldout"))


def _heldout_ids(reader, manifest, lang):
    text = bytes(read_all(reader, manifest, lang, "heldout").clip(0, 255).astype(np.uint8))
    return set(re.findall(rb"\[id=(doc-\d+)\]", text))


def test_a_translated_document_is_held_out_in_every_language(prepared):
    _, manifest = prepared
    reader = open_reader(manifest)
    ids = {lang: _heldout_ids(reader, manifest, lang) for lang in manifest.languages}
    # cc holds doc-0..29, bb doc-0..89, aa doc-0..239: the shared ids are held out alike.
    shared = {i for i in ids["aa"] if int(i[4:]) < 30}
    assert shared and shared == ids["cc"] == {i for i in ids["bb"] if int(i[4:]) < 30}
    assert {i for i in ids["aa"] if int(i[4:]) < 90} == ids["bb"]


def test_peer_readers_read_our_shards(prepared):
    fmt, manifest = prepared
    reader = open_reader(manifest)
    shard = manifest.shards("bb")[0]
    if fmt == "mds":
        from streaming.base.format import reader_from_json

        folder = os.path.dirname(shard.url)
        with open(os.path.join(folder, "index.json")) as f:
            peer = reader_from_json(folder, None, json.load(f)["shards"][0])
        samples = [peer.get_item(i) for i in range(shard.samples)]
    else:
        import webdataset as wds

        samples = list(wds.WebDataset(shard.url, shardshuffle=False).decode())
        for s in samples:
            s["tokens"], s["lang"] = s["tokens.npy"], s["lang.txt"]
        assert samples[3]["__key__"] == "bb-train-000000-0000003"
    assert len(samples) == shard.samples
    for i, s in enumerate(samples):
        assert s["lang"] == "bb" and s["tokens"].dtype == np.uint16
        np.testing.assert_array_equal(s["tokens"], reader.read("bb", "train", 0, i))


@pytest.mark.parametrize("fmt", ["mds", "wds"])
def test_pad_tail_keeps_the_last_partial_sample_padded_with_eos(fmt, folder_corpus, tmp_path):
    from climbstream.prepare.prepare import prepare

    manifest = prepare(folder_corpus, str(tmp_path / "out"), fmt=fmt, seq_len=SEQ_LEN, tail="pad",
                       heldout_frac=HELDOUT_FRAC, shard_bytes=SHARD_SAMPLES * SEQ_LEN * 2)
    reader = open_reader(manifest)
    info = manifest.language_info("cc")
    expected = reference_stream(folder_corpus, "cc", "train", HELDOUT_FRAC)
    got = read_all(reader, manifest, "cc", "train")
    assert info["dropped_tail_tokens"] == 0 and 0 < info["pad_tokens"] < SEQ_LEN
    assert len(got) == len(expected) + info["pad_tokens"]
    np.testing.assert_array_equal(got[:len(expected)], expected)
    assert set(got[len(expected):].tolist()) == {256}
    assert manifest.shards("aa")[0].samples == SHARD_SAMPLES  # shard_bytes / (seq_len x 2 bytes)


def test_reader_survives_pickling_and_forked_dataloader_workers(prepared):
    import torch

    _, manifest = prepared
    reader = open_reader(manifest)
    first = reader.read("aa", "train", 0, 0)  # opens descriptors in the parent before the fork

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return manifest.samples("bb")

        def __getitem__(self, k):
            shard, index = divmod(k, SHARD_SAMPLES)
            return torch.from_numpy(reader.read("bb", "train", shard, index))

    loader = torch.utils.data.DataLoader(Samples(), batch_size=16, num_workers=2,
                                         multiprocessing_context="fork")
    got = torch.cat([b.reshape(-1) for b in loader]).numpy()
    np.testing.assert_array_equal(got, read_all(reader, manifest, "bb", "train"))
    import pickle

    clone = pickle.loads(pickle.dumps(reader))
    np.testing.assert_array_equal(clone.read("aa", "train", 0, 0), first)
