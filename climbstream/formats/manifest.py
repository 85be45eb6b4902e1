"""The manifest: what a prepared corpus holds, per language and split, shard by shard.

`climbstream-manifest.json` sits at the root of a corpus (a local folder or an
s3:// prefix) and follows the contract in interfaces.md:

    {version: 1, format: "mds"|"wds", seq_len, tokenizer: {kind, vocab_size, eos_id, hash},
     languages: {NAME: {train: [SHARD...], heldout: [SHARD...], samples, tokens,
                        heldout_samples, ...}}}
    SHARD = {path (relative to the manifest), samples, tokens, bytes, sha256, ...}

Extra fields are allowed and kept (per-shard byte offsets for range reads, dropped tail
tokens, corpus totals). A shard may list `sample_sums: {path, bytes, sha256, head_bytes,
head_sha256}`, the sidecar of per-sample checksums that verifies its range reads
(formats/sample_sums.py; `head_*` from version 2 on, which range readers fetch by block);
manifests without it (written before it existed) stay valid at the same version, read
unverified. Loading validates everything the dataset relies on, so a bad
manifest fails here with the file and key named, not later inside a DataLoader worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from climbstream.errors import ManifestError
from climbstream.storage.urls import is_remote, join_url, local_path

log = logging.getLogger(__name__)

MANIFEST_NAME = "climbstream-manifest.json"
MANIFEST_VERSION = 1
FORMATS = ("mds", "wds")
SPLITS = ("train", "heldout")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ShardInfo:
    """One shard as listed in the manifest, with its absolute `url` resolved.

    `extra` holds format-specific fields (e.g. `header_bytes` for MDS, `token_offsets`
    and `tokens_dtype` for tar) that the readers use for byte-range reads.
    """

    path: str
    samples: int
    tokens: int
    bytes: int
    sha256: str
    url: str
    lang: str
    split: str
    index: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """How error messages name this shard: manifest key and URL."""
        return f"languages.{self.lang}.{self.split}[{self.index}] ({self.url})"


class Manifest:
    """A validated manifest. Languages are sorted by name; shards keep their listed order."""

    def __init__(self, data: dict, root: str, where: str):
        self._data = data
        self.root = root
        self.where = where
        self._shards: dict[tuple[str, str], list[ShardInfo]] = {}
        for lang, entry in data["languages"].items():
            for split in SPLITS:
                self._shards[(lang, split)] = [
                    ShardInfo(
                        path=s["path"], samples=int(s["samples"]), tokens=int(s["tokens"]),
                        bytes=int(s["bytes"]), sha256=s["sha256"], url=join_url(root, s["path"]),
                        lang=lang, split=split, index=i,
                        extra={k: v for k, v in s.items() if k not in _SHARD_KEYS},
                    )
                    for i, s in enumerate(entry.get(split, []))
                ]

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, url_or_path: str, storage: Any = None) -> "Manifest":
        """Load from a corpus folder/prefix or the manifest file itself (local or remote).

        Raises ManifestError naming the file when it is missing or invalid.
        """
        url = str(url_or_path)
        if url.endswith(".json"):
            file_url = url
            root = url.rsplit("/", 1)[0] if "/" in url else "."
        else:
            root = url.rstrip("/") or "/"
            file_url = join_url(root, MANIFEST_NAME)
        if not is_remote(root):
            root = os.path.abspath(local_path(root))
            file_url = os.path.abspath(local_path(file_url))
        return cls.from_dict(_read_manifest(file_url, storage), root, file_url)

    @classmethod
    def from_dict(cls, d: Any, root: str, where: str = MANIFEST_NAME) -> "Manifest":
        """Validate a parsed manifest; `where` names the file in error messages."""
        _validate(d, where)
        return cls(d, root, where)

    # -- accessors -----------------------------------------------------------------------
    @property
    def format(self) -> str:
        return self._data["format"]

    @property
    def seq_len(self) -> int:
        return int(self._data["seq_len"])

    @property
    def tokenizer(self) -> dict:
        return dict(self._data["tokenizer"])

    @property
    def languages(self) -> list[str]:
        return sorted(self._data["languages"])

    @property
    def data(self) -> dict:
        """The parsed JSON (treat as read-only)."""
        return self._data

    def language_info(self, lang: str) -> dict:
        """The raw per-language entry (samples, tokens, dropped_tail_tokens, ...)."""
        return self._data["languages"][self._check_lang(lang)]

    def shards(self, lang: str, split: str = "train") -> list[ShardInfo]:
        self._check_lang(lang)
        if split not in SPLITS:
            raise ManifestError(f"{self.where}: unknown split {split!r}; use one of {list(SPLITS)}")
        return list(self._shards[(lang, split)])

    def samples(self, lang: str, split: str = "train") -> int:
        return sum(s.samples for s in self.shards(lang, split))

    def tokens(self, lang: str, split: str = "train") -> int:
        return sum(s.tokens for s in self.shards(lang, split))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of languages, format, seq_len and tokenizer.

        Two manifests with equal fingerprints describe the same samples in the same places;
        the dataset state stores it to refuse resuming on changed data. Shards' `sample_sums`
        entries are left out: recording checksums (rerunning 'manifest' on an older corpus)
        changes no sample, so a run resumes on the new manifest.
        """
        core = {k: self._data[k] for k in ("languages", "format", "seq_len", "tokenizer")}
        core["languages"] = _without_sums(core["languages"])
        text = json.dumps(core, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_json(self) -> str:
        return to_json(self._data)

    def _check_lang(self, lang: str) -> str:
        if lang not in self._data["languages"]:
            raise ManifestError(
                f"{self.where}: no language {lang!r} (it has {', '.join(self.languages)})"
            )
        return lang

    def __repr__(self) -> str:
        return (f"Manifest({self.root!r}, format={self.format!r}, seq_len={self.seq_len}, "
                f"languages={len(self.languages)})")


CHECKSUM_KEY = "content_sha256"
SAMPLE_SUMS_KEY = "sample_sums"


def _without_sums(languages: dict) -> dict:
    return {lang: {k: ([{f: v for f, v in s.items() if f != SAMPLE_SUMS_KEY} for s in v]
                       if k in SPLITS and isinstance(v, list) else v) for k, v in entry.items()}
            for lang, entry in languages.items()}


def content_sha256(data: dict) -> str:
    """sha256 of a manifest's canonical JSON, without its own checksum key."""
    body = {k: v for k, v in data.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
                          .encode("utf-8")).hexdigest()


def to_json(data: dict) -> str:
    """The on-disk text of a manifest dict: sorted keys, stable across writers, and the
    checksum of everything else (a byte flipped in transit or on disk would otherwise
    change a sample count or offset unnoticed)."""
    return json.dumps({**data, CHECKSUM_KEY: content_sha256(data)}, sort_keys=True, indent=1,
                      ensure_ascii=False) + "\n"


def _parse(raw: bytes, file_url: str) -> dict:
    """The manifest's JSON, its checksum checked when it has one (older manifests do not)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(
            f"{file_url}: not valid JSON ({err}); rewrite it with 'climbstream prepare' "
            f"or 'climbstream manifest'"
        ) from None
    if isinstance(data, dict) and CHECKSUM_KEY in data and data[CHECKSUM_KEY] != content_sha256(data):
        raise ManifestError(
            f"{file_url}: {CHECKSUM_KEY} does not match the content (corrupted, or edited by hand); "
            f"rerun 'climbstream manifest' on the corpus (or delete the {CHECKSUM_KEY} key after an edit)"
        )
    return data


_SHARD_KEYS = ("path", "samples", "tokens", "bytes", "sha256")


def _read_manifest(file_url: str, storage: Any) -> dict:
    """The parsed, checked manifest; a remote one that fails its check is fetched again
    (with the store's retries), as a download would be."""
    if not is_remote(file_url):
        try:
            with open(file_url, "rb") as f:
                return _parse(f.read(), file_url)
        except FileNotFoundError:
            raise ManifestError(
                f"{file_url}: no manifest here; create one with 'climbstream prepare' or, for "
                f"shards written elsewhere, 'climbstream manifest {os.path.dirname(file_url)}'"
            ) from None
        except OSError as err:
            raise ManifestError(f"{file_url}: cannot read the manifest ({err})") from None
    from climbstream.errors import StorageError
    from climbstream.storage.registry import open_store
    from climbstream.storage.retry import SuspectBytes

    store = open_store(file_url, storage)

    def fetch() -> dict:
        try:
            return _parse(store.read_bytes(file_url, 0, store.size(file_url)), file_url)
        except ManifestError as err:
            log.warning("%s; fetching it again", err)
            raise SuspectBytes(err) from None

    try:
        if not store.exists(file_url):
            raise ManifestError(
                f"{file_url}: no manifest here; create one with 'climbstream prepare' or "
                f"'climbstream manifest {file_url.rsplit('/', 1)[0]}'"
            )
        return store.retried("read", file_url, fetch)
    except StorageError as err:
        raise ManifestError(f"{file_url}: cannot read the manifest ({err})") from None


def _int(value: Any, where: str, key: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ManifestError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def _first_shard(languages: Any) -> str:
    if isinstance(languages, dict):
        for lang in sorted(languages):
            entry = languages[lang]
            for split in SPLITS:
                shards = entry.get(split) if isinstance(entry, dict) else None
                if shards and isinstance(shards[0], dict):
                    return f"languages.{lang}.{split}[0] ({shards[0].get('path')})"
    return "no shard listed"


def _validate(d: Any, where: str) -> None:
    """Raise ManifestError naming `where` and the key for anything the readers rely on."""
    if not isinstance(d, dict):
        raise ManifestError(f"{where}: a manifest is a JSON object, got {type(d).__name__}")
    version = d.get("version")
    if version != MANIFEST_VERSION:
        raise ManifestError(
            f"{where}: unsupported manifest version {version!r} (this climbstream reads version "
            f"{MANIFEST_VERSION}); rewrite it with 'climbstream manifest' or use the climbstream "
            f"that wrote it"
        )
    if d.get("format") not in FORMATS:
        raise ManifestError(
            f"{where}: format must be one of {list(FORMATS)}, got {d.get('format')!r}"
        )
    languages = d.get("languages")
    seq_len = d.get("seq_len")
    if seq_len is None or isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ManifestError(
            f"{where}: seq_len is {seq_len!r}, but v1 schedules fixed-length samples; shard "
            f"{_first_shard(languages)} has no fixed sample length. Pack the corpus with "
            f"'climbstream prepare --seq-len N' or rebuild with 'climbstream manifest'"
        )
    tok = d.get("tokenizer")
    if not isinstance(tok, dict) or any(k not in tok for k in ("kind", "vocab_size", "eos_id", "hash")):
        raise ManifestError(
            f"{where}: tokenizer must be an object with kind, vocab_size, eos_id and hash, "
            f"got {tok!r}"
        )
    if not isinstance(languages, dict) or not languages:
        raise ManifestError(f"{where}: languages must be a non-empty object")
    for lang, entry in languages.items():
        key = f"languages.{lang}"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: {key} must be an object")
        for split in SPLITS:
            shards = entry.get(split, [] if split == "heldout" else None)
            if not isinstance(shards, list):
                raise ManifestError(f"{where}: {key}.{split} must be a list of shards")
            for i, shard in enumerate(shards):
                _validate_shard(shard, where, f"{key}.{split}[{i}]", seq_len)
        train = sum(s["samples"] for s in entry["train"])
        heldout = sum(s["samples"] for s in entry.get("heldout", []))
        for name, expected in (("samples", train), ("heldout_samples", heldout)):
            found = entry.get(name)
            if found != expected:
                raise ManifestError(
                    f"{where}: {key}.{name} is {found!r} but its shards hold {expected} samples; "
                    f"the manifest and shards disagree, rebuild it with 'climbstream manifest'"
                )
        if entry.get("tokens") != train * seq_len:
            raise ManifestError(
                f"{where}: {key}.tokens is {entry.get('tokens')!r}, expected samples x seq_len "
                f"= {train * seq_len}; rebuild it with 'climbstream manifest'"
            )


def inside_root(path: str, root: str, where: str) -> str:
    """`path`, if it resolves (symlinks followed) inside the corpus folder `root`; else ManifestError.

    Manifests list relative paths without '..', but a shard that is a symlink to a file
    elsewhere would still be read: whoever can write the corpus folder could make the
    loader read (and train on, or hash and report) any file this process can open.
    """
    real, base = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, base]) != base:
        raise ManifestError(f"{where}: resolves to {real}, outside the corpus folder {base} (a symlink out "
                            f"of the corpus); copy the shard into the corpus instead")
    return path


def _validate_shard(shard: Any, where: str, key: str, seq_len: int) -> None:
    if not isinstance(shard, dict):
        raise ManifestError(f"{where}: {key} must be an object")
    path = shard.get("path")
    if not isinstance(path, str) or not path or path.startswith("/") or "://" in path \
            or ".." in path.split("/"):
        raise ManifestError(
            f"{where}: {key}.path must be a relative path inside the corpus, got {path!r}"
        )
    samples = _int(shard.get("samples"), where, f"{key}.samples ({path})")
    tokens = _int(shard.get("tokens"), where, f"{key}.tokens ({path})")
    _int(shard.get("bytes"), where, f"{key}.bytes ({path})", minimum=1)
    if "seq_len" in shard and shard["seq_len"] != seq_len:
        raise ManifestError(
            f"{where}: {key} ({path}) has seq_len {shard['seq_len']!r} but the manifest says "
            f"{seq_len}; every sample must have exactly seq_len tokens"
        )
    if tokens != samples * seq_len:
        raise ManifestError(
            f"{where}: {key} ({path}) lists {samples} samples and {tokens} tokens, which is "
            f"not samples x seq_len ({seq_len}); the sample count disagrees with the tokens, "
            f"rebuild it with 'climbstream manifest'"
        )
    sha = shard.get("sha256")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise ManifestError(
            f"{where}: {key}.sha256 ({path}) must be 64 lowercase hex digits, got {sha!r}"
        )
    sums = shard.get(SAMPLE_SUMS_KEY)
    if sums is not None:  # the sidecar of per-sample checksums (formats/sample_sums.py)
        if not isinstance(sums, dict) or not isinstance(sums.get("path"), str) \
                or sums["path"] != f"{path}.sums" or not _SHA256.match(str(sums.get("sha256"))):
            raise ManifestError(f"{where}: {key}.{SAMPLE_SUMS_KEY} ({path}) must be {{path: '{path}.sums', bytes, "
                                f"sha256}}, got {sums!r}; rerun 'climbstream manifest'")
        _int(sums.get("bytes"), where, f"{key}.{SAMPLE_SUMS_KEY}.bytes ({path})", minimum=1)
        if "head_sha256" in sums or "head_bytes" in sums:  # version 2: the head a range reader fetches first
            if not _SHA256.match(str(sums.get("head_sha256"))):
                raise ManifestError(f"{where}: {key}.{SAMPLE_SUMS_KEY}.head_sha256 ({path}) must be 64 lowercase "
                                    f"hex digits, got {sums.get('head_sha256')!r}; rerun 'climbstream manifest'")
            _int(sums.get("head_bytes"), where, f"{key}.{SAMPLE_SUMS_KEY}.head_bytes ({path})", minimum=32)
    if shard.get("compression") is not None:  # bytes and sha256 are the compressed file's
        if not isinstance(shard["compression"], str):
            raise ManifestError(f"{where}: {key}.compression ({path}) must be a codec name, got "
                                f"{shard['compression']!r}")
        _int(shard.get("raw_bytes"), where, f"{key}.raw_bytes ({path}, the decompressed size)", minimum=1)
