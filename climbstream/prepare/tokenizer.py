"""Tokenizers for `prepare`: UTF-8 bytes by default, or any Hugging Face `tokenizer.json`.

The manifest records `{kind, vocab_size, eos_id, hash}` so a corpus says exactly how it
was tokenized: "bytes-v1" for the byte tokenizer, the file's sha256 for a tokenizer.json.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from climbstream.errors import ConfigError
from climbstream.extras import require

log = logging.getLogger(__name__)

# Names tried, in order, when a tokenizer.json's end-of-sequence token is not given.
EOS_NAMES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[EOS]", "<|eot_id|>", "[SEP]")


@dataclass
class ByteTokenizer:
    """ids 0..255 are the UTF-8 bytes of the text; 256 is eos; vocab 257."""

    kind: str = "bytes"
    vocab_size: int = 257
    eos_id: int = 256
    hash: str = "bytes-v1"

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int64)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(text) for text in texts]

    def describe(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "eos_id": self.eos_id, "hash": self.hash}


class HFTokenizer:
    """A `tokenizers` tokenizer.json; no special tokens are added (eos is added by packing)."""

    kind = "hf-tokenizers"

    def __init__(self, path: str, eos_id: int | None = None):
        Tokenizer = require("tokenizers", f"--tokenizer {path} (or drop --tokenizer for UTF-8 bytes)").Tokenizer
        try:
            self._tok: Any = Tokenizer.from_file(path)
        except Exception as err:  # tokenizers raises its own untyped Exception subclasses
            raise ConfigError(f"--tokenizer {path}: not a readable tokenizer.json ({err})") from None
        self.path = path
        self.vocab_size = int(self._tok.get_vocab_size(with_added_tokens=True))
        with open(path, "rb") as f:
            self.hash = hashlib.sha256(f.read()).hexdigest()
        self.eos_id = self._find_eos() if eos_id is None else int(eos_id)
        if not 0 <= self.eos_id < self.vocab_size:
            raise ConfigError(f"--eos-id {self.eos_id} is outside the vocabulary of {path} "
                              f"(size {self.vocab_size})")

    def _find_eos(self) -> int:
        for name in EOS_NAMES:
            token_id = self._tok.token_to_id(name)
            if token_id is not None:
                log.info("%s: using %r (id %d) as end of sequence", self.path, name, token_id)
                return int(token_id)
        raise ConfigError(f"--tokenizer {self.path}: no end-of-sequence token among {list(EOS_NAMES)}; "
                          f"pass --eos-id")

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, np.int64)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """The same ids as `encode` on each text; tokenizers spreads a batch over its threads."""
        return [np.asarray(e.ids, np.int64) for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def describe(self) -> dict:
        return {"kind": self.kind, "vocab_size": self.vocab_size, "eos_id": self.eos_id, "hash": self.hash}


def load_tokenizer(path: str | None = None, eos_id: int | None = None):
    """The byte tokenizer when `path` is None, else the tokenizer.json at `path`."""
    if path is None:
        if eos_id is not None and eos_id != 256:
            raise ConfigError(f"--eos-id {eos_id}: the byte tokenizer's eos is fixed at 256")
        return ByteTokenizer()
    return HFTokenizer(path, eos_id)
