"""Several manifests read as one corpus: each language's reads and hints go to the reader of
its own manifest (read/corpus_reader.py), so the stream is the one of a single manifest."""

from __future__ import annotations

import os
import shutil

from tests.corpora import prepare

from .helpers import by_position, read_batches, stream_of


def test_two_manifests_give_the_stream_of_one_holding_both(mds_corpus, text_corpus, tmp_path):
    roots = []
    for part in (("aa", "cc"), ("bb", "dd")):
        src = tmp_path / ("text-" + "".join(part))
        os.makedirs(src)
        for lang in part:
            shutil.copy(os.path.join(text_corpus, f"{lang}.txt"), src / f"{lang}.txt")
        roots.append(prepare(str(src), str(tmp_path / ("mds-" + "".join(part))), "mds"))
    split = stream_of(roots)
    assert split.languages == stream_of(mds_corpus).languages == ["aa", "bb", "cc", "dd"]
    assert by_position(read_batches(split, 6, num_workers=2)) == by_position(read_batches(stream_of(mds_corpus), 6))
    metrics = split.readers.get(0).metrics()  # summed over both manifests' readers
    assert set(metrics) >= {"wait_s", "bytes_downloaded", "cache_hits", "cache_misses"}
