"""Build a manifest for shards written by someone else (`climbstream manifest`).

The corpus root holds one top-level folder per language (renamed through a mapping when
given); a shard is held out when any folder on its path is `heldout`, `val` or
`validation`, else it is training data. MDS shards are found through their `index.json`
files, tar shards by name (`*.tar`). Every shard is read once: each sample's token array
is checked to have exactly `seq_len` tokens (taken from the first sample unless given),
the shard is hashed, and the byte offsets that range reads need are recorded, with the
per-sample checksums that verify them (`<shard>.sums` beside each uncompressed shard,
formats/sample_sums.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from typing import Any, Iterator

import numpy as np

from climbstream.errors import ConfigError, ManifestError
from climbstream.formats import sample_sums
from climbstream.formats.manifest import MANIFEST_NAME, MANIFEST_VERSION, Manifest, inside_root, to_json
from climbstream.storage.urls import is_remote, local_path
from climbstream.formats.mds import ShardFormatError, decode_column, parse_header
from climbstream.formats.wds import encode_offsets, scan_tar

log = logging.getLogger(__name__)

_SUMS = "_sample_sums_blob"  # an entry's sidecar bytes, until build_manifest writes them
HELDOUT_NAMES = ("heldout", "val", "validation")


def split_of(rel_path: str) -> str:
    parts = rel_path.split("/")[:-1]
    return "heldout" if any(p.lower() in HELDOUT_NAMES for p in parts) else "train"


def load_lang_map(path: str | None) -> dict[str, str]:
    """A JSON or YAML mapping {top-level folder: language NAME}."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        mapping = yaml.safe_load(text)
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                for k, v in mapping.items()):
        raise ConfigError(f"{path}: a language map is a mapping of folder name to language name")
    return mapping


class _Checker:
    """Seq_len and vocabulary bookkeeping across all shards."""

    def __init__(self, seq_len: int | None):
        self.seq_len = seq_len
        self.max_id = -1

    def check(self, tokens: np.ndarray, where: str, index: int) -> None:
        tokens = tokens.reshape(-1)
        if self.seq_len is None:
            self.seq_len = int(tokens.size)
            log.info("seq_len %d, from the first sample of %s", self.seq_len, where)
        if tokens.size != self.seq_len:
            raise ManifestError(
                f"{where}: sample {index} has {tokens.size} tokens, expected seq_len {self.seq_len}; "
                f"v1 needs every sample packed to the same length (repack with 'climbstream prepare')"
            )
        if tokens.size:
            self.max_id = max(self.max_id, int(tokens.max()))


def _mds_entry(path: str, rel: str, expected_samples: int, column: str, checker: _Checker,
               compression: str | None = None) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    raw = data
    if compression:
        from climbstream.storage.unpack import decompress

        try:
            raw = decompress(compression, data)
        except ConfigError:
            raise
        except Exception as err:  # each codec raises its own error type
            raise ShardFormatError(f"{rel}: cannot decompress ({compression}: {err}); the shard is "
                                   f"truncated or corrupted") from None
    header = parse_header(raw, rel, expected_samples, len(raw))
    view = memoryview(raw)
    for j in range(header.num_samples):
        start, end = header.sample_range(j)
        checker.check(decode_column(view[start:end], header, column, f"{rel} sample {j}"), rel, j)
    entry = {"path": rel, "samples": header.num_samples, "bytes": len(data),
             "sha256": hashlib.sha256(data).hexdigest(), "header_bytes": header.header_bytes}
    if compression:  # read through the cache only, never by ranges: no sums needed
        entry.update(compression=compression, raw_bytes=len(raw))
    else:
        ranges = [header.sample_range(j) for j in range(header.num_samples)]
        entry[_SUMS] = sample_sums.of_ranges(data, ranges, header.header_bytes)
    return entry


def _tar_entry(path: str, rel: str, column: str, checker: _Checker) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    samples = scan_tar(io.BytesIO(data), rel, f"{column}.npy")
    dtypes = {s.dtype for s in samples}
    if len(dtypes) > 1:
        raise ShardFormatError(f"{rel}: token arrays mix dtypes {sorted(dtypes)}; use one dtype per shard")
    for j, s in enumerate(samples):
        tokens = np.frombuffer(data, np.dtype(s.dtype), count=s.length, offset=s.data_offset)
        checker.check(tokens, rel, j)
    ranges = [(s.data_offset, s.data_offset + s.length * np.dtype(s.dtype).itemsize) for s in samples]
    return {"path": rel, "samples": len(samples), "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "tokens_dtype": dtypes.pop() if dtypes else "<u2",
            "token_offsets": encode_offsets([s.data_offset for s in samples]),
            _SUMS: sample_sums.of_ranges(data, ranges)}


def _write_file(path: str, data: bytes) -> None:
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def _shards(files: list[str], fmt: str, fetch) -> Iterator[tuple[str, int | None, str | None]]:
    """(relative shard path, expected samples or None, compression or None) in a stable order.

    Compressed MDS is listed by its compressed file (what is downloaded and hashed); the
    reader decompresses it into the cache. Compressed tar is refused: a .tar.gz has no
    index to find a sample by, and recompressing it as MDS or plain tar is one command.
    """
    if fmt == "wds":
        for rel in files:
            if rel.endswith((".tar.gz", ".tgz", ".tar.zst", ".tar.bz2", ".tar.xz")):
                raise ManifestError(f"{rel}: compressed tar shards cannot be read sample by sample; "
                                    f"recompress them as plain .tar, or write MDS with compression "
                                    f"(read through the shard cache)")
            if rel.endswith(".tar"):
                yield rel, None, None
        return
    for rel in files:
        if rel.split("/")[-1] != "index.json":
            continue
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        with open(fetch(rel), encoding="utf-8") as f:
            index = json.load(f)
        for shard in index.get("shards", []):
            if shard.get("format") != "mds":
                raise ManifestError(f"{rel}: shard format {shard.get('format')!r} is not mds; use "
                                    f"--format wds for tar shards")
            compression = shard.get("compression") if shard.get("zip_data") else None
            name = shard["zip_data" if compression else "raw_data"]["basename"]
            yield (f"{folder}/{name}" if folder else name), int(shard["samples"]), compression


def build_manifest(root: str, fmt: str, lang_map: dict[str, str] | None = None, seq_len: int | None = None,
                   column: str = "tokens", vocab_size: int | None = None, eos_id: int | None = None,
                   storage: Any = None, write: bool = True, progress: bool = False,
                   known: dict[str, dict] | None = None, write_manifest: bool = True) -> Manifest:
    """Scan the shards under `root` (folder or URL) and return (and by default write) the manifest.

    `known`: manifest entries by shard path, taken as they are instead of reading those shards
    again (`manifest --append`, prepare/append.py); `write_manifest=False`: write the new shards'
    sidecars but leave the manifest file to the caller.
    """
    from tqdm import tqdm

    if fmt not in ("mds", "wds"):
        raise ConfigError(f"--format must be mds or wds, got {fmt!r}")
    lang_map = lang_map or {}
    remote = is_remote(root)
    root = root.rstrip("/") if remote else os.path.abspath(local_path(root))
    store = None
    if remote:
        from climbstream.storage.registry import open_store

        store = open_store(root, storage)
        files = sorted(url[len(root) + 1:] for url in store.list(root))
    else:
        if not os.path.isdir(root):
            raise ConfigError(f"{root}: not a folder; give the corpus root holding one folder per language")
        files = sorted(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
                       for d, _, fs in os.walk(root) for f in fs)
    checker = _Checker(seq_len)
    languages: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="climbstream-manifest-") as tmp:
        def fetch(rel: str) -> str:
            if not remote:
                return inside_root(os.path.join(root, *rel.split("/")), root, f"{root}/{rel}")
            dest = os.path.join(tmp, "shard")
            store.download(f"{root}/{rel}", dest)
            return dest

        shards = list(_shards(files, fmt, fetch))
        listed = set(files)
        if not shards:
            raise ManifestError(f"{root}: no {'index.json' if fmt == 'mds' else '*.tar'} shards found; "
                                f"check --format and the path")
        for rel, expected, compression in tqdm(shards, unit="shard", desc="manifest", disable=not progress):
            if "/" not in rel:
                raise ManifestError(f"{root}/{rel}: shard is not inside a language folder; put each "
                                    f"language's shards under a top-level folder named after it")
            top = rel.split("/", 1)[0]
            lang = lang_map.get(top, top)
            if known and rel in known:  # already in the manifest: not read, not hashed again
                if rel not in listed:  # an MDS index may still name a shard file that is gone
                    continue
                languages.setdefault(lang, {"train": [], "heldout": []})[split_of(rel)].append(dict(known[rel]))
                continue
            path = fetch(rel)
            entry = (_mds_entry(path, rel, expected, column, checker, compression) if fmt == "mds"
                     else _tar_entry(path, rel, column, checker))
            blob = entry.pop(_SUMS, None)
            if blob is not None and write:  # beside the shard; listed only once written
                sums_url = f"{root}/{rel}{sample_sums.SUFFIX}"
                if remote:
                    store.put_bytes(blob, sums_url)
                else:
                    _write_file(os.path.join(root, *rel.split("/")) + sample_sums.SUFFIX, blob)
                entry["sample_sums"] = sample_sums.sidecar_entry(rel, blob)
            languages.setdefault(lang, {"train": [], "heldout": []})[split_of(rel)].append(entry)
    for entry in languages.values():
        for split in ("train", "heldout"):
            for shard in entry[split]:
                shard["tokens"] = shard["samples"] * checker.seq_len
        entry["samples"] = sum(s["samples"] for s in entry["train"])
        entry["tokens"] = entry["samples"] * checker.seq_len
        entry["heldout_samples"] = sum(s["samples"] for s in entry["heldout"])
    data = {
        "version": MANIFEST_VERSION, "format": fmt, "seq_len": checker.seq_len,
        "tokenizer": {"kind": "unknown", "vocab_size": vocab_size or checker.max_id + 1,
                      "eos_id": eos_id, "hash": None},
        "languages": languages, "tokens_field": column,
    }
    manifest_url = f"{root}/{MANIFEST_NAME}" if remote else os.path.join(root, MANIFEST_NAME)
    manifest = Manifest.from_dict(data, root, manifest_url)
    if write and write_manifest:
        if remote:
            store.put_bytes(to_json(data).encode("utf-8"), manifest_url)
        else:
            with open(manifest_url + ".tmp", "w", encoding="utf-8") as f:
                f.write(to_json(data))
            os.replace(manifest_url + ".tmp", manifest_url)
        log.info("wrote %s (%d languages, %d shards)", manifest_url, len(languages), len(shards))
    return manifest
