"""What a saved state remembers of the corpus it read: enough to tell growth from a rewrite.

Why: a corpus may grow between stages (shards appended to a language, languages added or
retired) and the stream stays exactly-once across it (schedule/growth.py); a rewrite
(a shard whose content changed, or shards removed from a language that keeps weight)
cannot be made exact and is refused, naming the shards. Per language the state keeps

- `shards`, `samples`: the counts of its train shard list at each corpus version (the
  grown orders need them; a version's shards are a prefix of the next one's);
- `digest`: sha256 of the (path, sha256, samples) lines of that list (32 hex digits);
- for the last version only, `tags`: at most TAGS tags of 8 hex digits, each over a run
  of ceil(shards / TAGS) consecutive shards, so a rewrite names its shards (or the run
  they are in) while the state stays under 700 bytes per language and version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from climbstream.errors import StateError

TAGS = 64
_TAG_HEX = 8
_SHOWN = 5


def _line(shard) -> bytes:
    return f"{shard.path}\t{shard.sha256}\t{int(shard.samples)}\n".encode()


def shard_digest(shards: Sequence) -> str:
    """The digest of a shard list (32 hex digits); equal digests: the same shards in the same order."""
    return hashlib.sha256(b"".join(_line(s) for s in shards)).hexdigest()[:32]


def _run(count: int) -> int:
    return max(1, -(-count // TAGS))


def shard_tags(shards: Sequence, count: int | None = None) -> str:
    """Tags of the first `count` shards (default all), one per run of ceil(count / TAGS) shards."""
    count = len(shards) if count is None else count
    run = _run(count)
    lines = [_line(s) for s in shards[:count]]
    return "".join(hashlib.sha256(b"".join(lines[a:a + run])).hexdigest()[:_TAG_HEX] for a in range(0, count, run))


@dataclass(frozen=True)
class LanguageRecord:
    """A language's train shard list at one corpus version; `restart`: its old shards went away."""

    shards: int
    samples: int
    digest: str
    restart: bool = False

    @classmethod
    def of(cls, shards: Sequence, restart: bool = False) -> "LanguageRecord":
        return cls(len(shards), sum(int(s.samples) for s in shards), shard_digest(shards), restart)

    def to_dict(self) -> dict:
        out = {"shards": self.shards, "samples": self.samples, "digest": self.digest}
        return {**out, "restart": True} if self.restart else out

    @classmethod
    def from_dict(cls, data, where: str) -> "LanguageRecord":
        try:
            record = cls(int(data["shards"]), int(data["samples"]), str(data["digest"]), bool(data.get("restart")))
        except (KeyError, TypeError, ValueError) as err:
            raise StateError(f"{where}: expected {{shards, samples, digest}}, got {data!r} ({err})") from None
        if record.shards < 0 or record.samples < 0:
            raise StateError(f"{where}: negative shard or sample count in {data!r}; the state is damaged")
        return record

    def same_shards(self, other: "LanguageRecord") -> bool:
        return (self.shards, self.samples, self.digest) == (other.shards, other.samples, other.digest)


EMPTY = LanguageRecord(0, 0, shard_digest([]))


@dataclass(frozen=True)
class CorpusVersion:
    """The corpus the stream read from position `start` on: a record per language name."""

    start: int
    languages: tuple[tuple[str, LanguageRecord], ...]

    @classmethod
    def of(cls, start: int, shards: Mapping[str, Sequence]) -> "CorpusVersion":
        return cls(int(start), tuple((n, LanguageRecord.of(shards[n])) for n in sorted(shards)))

    def record(self, name: str) -> LanguageRecord:
        """The language's record; a language this version did not have is EMPTY."""
        return dict(self.languages).get(name, EMPTY)

    def to_dict(self) -> dict:
        return {"start": self.start, "languages": {n: r.to_dict() for n, r in self.languages}}

    @classmethod
    def from_dict(cls, data, where: str) -> "CorpusVersion":
        if not isinstance(data, Mapping) or not isinstance(data.get("languages"), Mapping) or "start" not in data:
            raise StateError(f"{where}: expected {{start, languages: {{NAME: record}}}}, got {data!r}")
        languages = tuple((str(n), LanguageRecord.from_dict(r, f"{where}.languages.{n}"))
                          for n, r in sorted(data["languages"].items()))
        return cls(int(data["start"]), languages)


@dataclass(frozen=True)
class LanguageChange:
    """How one language's shard list changed since the saved version.

    kind: "same", "appended" (the saved list is a prefix of the current one), "added",
    "retired" (no train shards left) or "rewritten" (a saved shard changed or is gone);
    `shards` names the rewritten or removed shards (at most a few, then a count).
    """

    name: str
    kind: str
    shards: str = ""


def compare_language(name: str, saved: LanguageRecord, tags: str, current: Sequence) -> LanguageChange:
    """Classify `current` (this corpus's train shards of `name`) against the saved record and tags."""
    if saved.samples == 0 and saved.shards == 0:
        return LanguageChange(name, "same" if not current else "added")
    if not current:
        return LanguageChange(name, "retired")
    if len(current) >= saved.shards and shard_digest(current[:saved.shards]) == saved.digest:
        return LanguageChange(name, "same" if len(current) == saved.shards else "appended")
    return LanguageChange(name, "rewritten", _changed_shards(name, saved, tags, current))


def _changed_shards(name: str, saved: LanguageRecord, tags: str, current: Sequence) -> str:
    run = _run(saved.shards)
    named = []
    for t, a in enumerate(range(0, saved.shards, run)):
        b = min(a + run, saved.shards)
        old = tags[t * _TAG_HEX:(t + 1) * _TAG_HEX]
        if b > len(current):  # this run and every later one reach past the shards left
            first, last = max(a, len(current)), saved.shards - 1
            named.append(f"train[{first}] (removed)" if first == last else f"train[{first}..{last}] (removed)")
            break
        if shard_digest(current[a:b])[:_TAG_HEX] != old:
            named.append(_name(current, a, b - 1))
    if not named:
        named.append(f"train[0..{saved.shards - 1}] (reordered)")
    more = f" and {len(named) - _SHOWN} more" if len(named) > _SHOWN else ""
    return ", ".join(named[:_SHOWN]) + more


def _name(current: Sequence, a: int, b: int) -> str:
    if a == b:
        return f"train[{a}] {current[a].path}"
    return f"train[{a}..{b}] (one of {current[a].path} .. {current[b].path})"
