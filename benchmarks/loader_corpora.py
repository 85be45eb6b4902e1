"""The loader benchmark's corpora: generated text, prepared as MDS and as tar with equal contents.

Two shapes matter for a block-exact mixer, whose every worker reads all languages at once:
`small` (8 languages, skewed sizes, a few large shards each) and `wide` (100 languages,
skewed sizes, 4 to 100 small shards each), where open streams, caches and prefetch are
stressed. `tiny` is for the smoke test.

Text is generated, not downloaded: language i has its own alphabet and vocabulary and
about `largest_samples * (smallest_samples / largest_samples) ** (i / (K - 1))` samples
of `seq_len` byte tokens, so sizes are geometrically skewed. Both formats come from the
same documents through `climbstream.prepare.prepare.prepare`, so the peers read shards
written by their own writers (streaming.MDSWriter, webdataset.ShardWriter).

Built corpora are kept under `<work_dir>/corpora/<name>-<fmt>` with a stamp of the spec;
a later run with the same spec reuses them. Folder names are valid S3 bucket names, so
serving `<work_dir>/corpora` with `rclone serve s3` makes `s3://<name>-<fmt>` the corpus.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

log = logging.getLogger(__name__)

STAMP = "bench-corpus.json"
FORMATS = ("mds", "wds")


@dataclass(frozen=True)
class CorpusSpec:
    """Shape of a generated corpus (samples are `seq_len` tokens, shards `shard_samples`)."""

    name: str
    languages: int
    largest_samples: int
    smallest_samples: int
    shard_samples: int
    seq_len: int = 256
    seed: int = 0

    def samples_of(self, i: int) -> int:
        """Target training samples of language i (0 = the largest)."""
        if self.languages == 1:
            return self.largest_samples
        ratio = self.smallest_samples / self.largest_samples
        return max(1, int(round(self.largest_samples * ratio ** (i / (self.languages - 1)))))

    def language_names(self) -> list[str]:
        return [f"l{i:03d}" for i in range(self.languages)]


SPECS = {
    "tiny": CorpusSpec("tiny", languages=3, largest_samples=96, smallest_samples=24, shard_samples=16, seq_len=64),
    "small": CorpusSpec("small", languages=8, largest_samples=16000, smallest_samples=500, shard_samples=200),
    "wide": CorpusSpec("wide", languages=100, largest_samples=2400, smallest_samples=96, shard_samples=24),
}


class GeneratedCorpus:
    """A `climbstream.prepare.corpus.Corpus` of seeded generated text shaped by a CorpusSpec."""

    def __init__(self, spec: CorpusSpec):
        self.spec = spec
        self.description = {"kind": "generated", **asdict(spec)}

    @property
    def languages(self) -> list[str]:
        return self.spec.language_names()

    def documents(self, lang: str) -> Iterator:
        from climbstream.prepare.documents import Document

        i = self.languages.index(lang)
        rng = np.random.default_rng([self.spec.seed, i])
        base = 0x61 if i % 2 == 0 else 0x3B1 + (i % 5) * 0x10  # Latin or a Greek/Cyrillic slice
        letters = np.array([chr(base + j) for j in range(20)])
        vocab = np.array(["".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(800)])
        # Bytes wanted: every sample full, with slack for eos and the dropped last sample.
        wanted = (self.spec.samples_of(i) + 1) * self.spec.seq_len
        written, d = 0, 0
        while written < wanted:
            text = " ".join(vocab[rng.integers(0, len(vocab), size=rng.integers(20, 200))])
            n = len(text.encode("utf-8")) + 1
            if written + n > wanted:  # trim the last document so sizes land on target
                text = text.encode("utf-8")[: max(1, wanted - written - 1)].decode("utf-8", "ignore")
                n = len(text.encode("utf-8")) + 1
            written += n
            yield Document(f"doc-{d:07d}", text)
            d += 1


def corpus_root(work_dir: str, name: str, fmt: str) -> str:
    return os.path.join(os.path.abspath(work_dir), "corpora", f"{name}-{fmt}")


def build_corpus(spec: CorpusSpec, work_dir: str, fmt: str) -> str:
    """Prepare `spec` in format `fmt` under work_dir (reused when already built); return its root."""
    from climbstream.formats.manifest import MANIFEST_NAME
    from climbstream.prepare.prepare import prepare

    root = corpus_root(work_dir, spec.name, fmt)
    stamp = {"spec": asdict(spec), "format": fmt, "stamp_version": 1}
    stamp_path = os.path.join(root, STAMP)
    if os.path.exists(os.path.join(root, MANIFEST_NAME)) and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if json.load(f) == stamp:
                return root
    log.info("preparing corpus %s (%s) at %s", spec.name, fmt, root)
    prepare(GeneratedCorpus(spec), root, fmt=fmt, seq_len=spec.seq_len, heldout_frac=0.0,
            shard_samples=spec.shard_samples, overwrite=True)
    with open(stamp_path, "w") as f:
        json.dump(stamp, f)
    return root


def build_corpora(spec: CorpusSpec, work_dir: str) -> dict[str, str]:
    """Both formats of `spec`: {"mds": root, "wds": root}."""
    return {fmt: build_corpus(spec, work_dir, fmt) for fmt in FORMATS}


def corpus_facts(root: str) -> dict:
    """What the peers need from a prepared corpus, read from its manifest.

    {languages (sorted), seq_len, samples: {NAME: n}, shards: {NAME: [relative paths]}}:
    MDS peers use the `<lang>/train` folders (index.json), tar peers the shard lists.
    """
    from climbstream.formats.manifest import Manifest

    manifest = Manifest.load(root)
    return {
        "languages": list(manifest.languages),
        "seq_len": int(manifest.seq_len),
        "samples": {n: sum(int(s.samples) for s in manifest.shards(n, "train")) for n in manifest.languages},
        "shards": {n: [s.path for s in manifest.shards(n, "train")] for n in manifest.languages},
    }


def mixture_weights(samples: dict[str, int], temperature: float = 0.5) -> dict[str, float]:
    """Temperature-sampling weights w_i proportional to samples_i ** temperature (sum 1).

    Skewed, with the small languages upsampled over epochs: every peer must repeat them.
    """
    raw = {n: float(c) ** temperature for n, c in samples.items()}
    total = sum(raw.values())
    return {n: v / total for n, v in sorted(raw.items())}
