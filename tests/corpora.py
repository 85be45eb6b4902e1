"""Small skewed multilingual corpora for tests, built with `climbstream prepare`."""

from __future__ import annotations

import os
import random

from climbstream.cli import main as cli_main

# Skewed sizes (documents per language): a high-resource language and a tiny one that
# must be upsampled across epochs.
SIZES = {"aa": 300, "bb": 150, "cc": 60, "dd": 20}
SEQ_LEN = 32


def write_text_corpus(root: str, sizes: dict[str, int], seed: int = 0) -> str:
    """One file per language, one document per paragraph, distinct alphabets."""
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    for li, (lang, n_docs) in enumerate(sorted(sizes.items())):
        alphabet = [chr(ord("a") + (li * 5 + j) % 26) for j in range(8)]
        paragraphs = []
        for d in range(n_docs):
            words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 7))) for _ in range(rng.randint(4, 20))]
            paragraphs.append(f"{lang}{d} " + " ".join(words))
        with open(os.path.join(root, f"{lang}.txt"), "w", encoding="utf-8") as f:
            f.write("\n\n".join(paragraphs) + "\n")
    return root


def prepare(src: str, out: str, fmt: str, shard_samples: int = 16) -> str:
    rc = cli_main(["prepare", src, "--out", out, "--format", fmt, "--seq-len", str(SEQ_LEN),
                   "--shard-samples", str(shard_samples), "--heldout-frac", "0.1", "--quiet"])
    assert rc == 0
    return out


WEIGHTS = {"aa": 0.4, "bb": 0.3, "cc": 0.2, "dd": 0.1}
