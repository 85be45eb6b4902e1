"""Packing documents into fixed-length samples, and the held-out choice. Pure functions.

Promise (the accounting the tests check): for one (language, split), the concatenation of
all emitted samples, followed by the dropped tail, equals the concatenation of
`tokens(doc) + [eos]` over the documents in input order; with `tail="pad"` the last
sample is that remainder followed by `pad_tokens` eos ids. Nothing else is dropped,
reordered or repeated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from climbstream.errors import ConfigError

TAIL_POLICIES = ("drop", "pad")


def heldout_score(doc_id: str) -> float:
    """A uniform number in [0, 1) from the document id alone (same in every language)."""
    digest = hashlib.sha256(b"climbstream-heldout-v1\0" + doc_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_heldout(doc_id: str, heldout_frac: float) -> bool:
    """Whether a document goes to the held-out split: a translated document (same id) is
    held out in every language, so held-out loss never sees a translation trained on."""
    return heldout_score(doc_id) < heldout_frac


@dataclass
class TailReport:
    """What happened to the last partial sample of one (language, split)."""

    dropped_tokens: int = 0
    pad_tokens: int = 0


class Packer:
    """Concatenates documents (each followed by eos) and cuts seq_len samples."""

    def __init__(self, seq_len: int, eos_id: int, tail: str = "drop"):
        if seq_len < 1:
            raise ConfigError(f"seq_len must be >= 1, got {seq_len}")
        if tail not in TAIL_POLICIES:
            raise ConfigError(f"tail must be one of {list(TAIL_POLICIES)}, got {tail!r}")
        self.seq_len, self.eos_id, self.tail = seq_len, eos_id, tail
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self.documents = 0
        self.document_tokens = 0  # tokens of documents, eos included

    def add(self, tokens: np.ndarray) -> Iterator[np.ndarray]:
        """Add one document; yields every sample it completes (int64[seq_len])."""
        doc = np.empty(len(tokens) + 1, np.int64)
        doc[:-1] = tokens
        doc[-1] = self.eos_id
        self.documents += 1
        self.document_tokens += len(doc)
        self._pending.append(doc)
        self._pending_len += len(doc)
        if self._pending_len >= self.seq_len:
            flat = np.concatenate(self._pending)
            full = len(flat) // self.seq_len * self.seq_len
            yield from flat[:full].reshape(-1, self.seq_len)
            rest = flat[full:]
            self._pending = [rest] if len(rest) else []
            self._pending_len = len(rest)

    def finish(self) -> tuple[np.ndarray | None, TailReport]:
        """The last sample under the tail policy (None when dropped or empty) and its report."""
        if not self._pending_len:
            return None, TailReport()
        rest = np.concatenate(self._pending)
        self._pending, self._pending_len = [], 0
        if self.tail == "drop":
            return None, TailReport(dropped_tokens=len(rest))
        pad = self.seq_len - len(rest)
        sample = np.concatenate([rest, np.full(pad, self.eos_id, np.int64)])
        return sample, TailReport(pad_tokens=pad)
