"""Shared fixtures for the format tests: one small parallel corpus, prepared once per format.

The corpus is JSONL with shared document ids across languages (like translations), and
each text starts with `[id=...]`, so a test can decode byte-tokenized samples back to text
and see which documents landed where.
"""

from __future__ import annotations

import json
import os
import random
import shutil

import numpy as np
import pytest

from tests.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

# Documents per language: skewed, with ids shared between languages.
SIZES = {"aa": 240, "bb": 90, "cc": 30}
SEQ_LEN = 32
SHARD_SAMPLES = 40
HELDOUT_FRAC = 0.2


def write_parallel_corpus(root: str, sizes: dict[str, int] = SIZES, seed: int = 0) -> str:
    """INPUT/<lang>.jsonl with {"id", "text"}; document d of every language has id "doc-d"."""
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    for li, (lang, n_docs) in enumerate(sorted(sizes.items())):
        alphabet = [chr(0x61 + (li * 7 + j) % 26) for j in range(9)] + ["é", "ж"]
        with open(os.path.join(root, f"{lang}.jsonl"), "w", encoding="utf-8") as f:
            for d in range(n_docs):
                words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
                         for _ in range(rng.randint(1, 25))]
                f.write(json.dumps({"id": f"doc-{d}", "text": f"[id=doc-{d}] " + " ".join(words)}) + "\n")
    return root


def reference_stream(corpus, lang: str, split: str, heldout_frac: float, eos: int = 256) -> np.ndarray:
    """The obviously-correct token stream of one (lang, split): bytes of each doc + eos, in order."""
    from climbstream.prepare.packing import is_heldout

    parts = []
    for doc in corpus.documents(lang):
        if is_heldout(doc.id, heldout_frac) == (split == "heldout"):
            parts.append(np.frombuffer(doc.text.encode("utf-8"), np.uint8).astype(np.int64))
            parts.append(np.array([eos], np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def read_all(reader, manifest, lang: str, split: str) -> np.ndarray:
    """Every sample of (lang, split), in shard order, concatenated."""
    rows = [reader.read(lang, split, s, i)
            for s, shard in enumerate(manifest.shards(lang, split)) for i in range(shard.samples)]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> str:
    return write_parallel_corpus(str(tmp_path_factory.mktemp("corpus") / "input"))


@pytest.fixture(scope="session")
def folder_corpus(corpus_dir):
    from climbstream.prepare.corpus import FolderCorpus

    return FolderCorpus(corpus_dir)


@pytest.fixture(scope="session", params=["mds", "wds"])
def prepared(request, folder_corpus, tmp_path_factory):
    """(format, Manifest) of the parallel corpus prepared locally, once per format."""
    from climbstream.prepare.prepare import prepare

    out = tmp_path_factory.mktemp(f"prepared-{request.param}")
    manifest = prepare(folder_corpus, str(out), fmt=request.param, seq_len=SEQ_LEN,
                       heldout_frac=HELDOUT_FRAC, shard_samples=SHARD_SAMPLES)
    return request.param, manifest


@pytest.fixture
def copy_of(prepared, tmp_path):
    """(format, Manifest) of a private copy of `prepared`, for tests that damage or swap its shards."""
    from climbstream.formats.manifest import Manifest

    fmt, manifest = prepared
    root = str(tmp_path / "corpus")
    shutil.copytree(manifest.root, root)
    return fmt, Manifest.load(root)
