"""`prepare`: tokenize a corpus, pack fixed-length samples, write shards and the manifest.

Per language, documents are tokenized in input order, each followed by eos, split into
train/held-out by a hash of the document id (see packing.is_heldout), and packed into
`seq_len` samples (see packing.Packer for the exact accounting). The last partial sample
of each split is dropped (default; its tokens are logged and recorded per language as
`dropped_tail_tokens`) or padded with eos (`tail="pad"`, recorded as `pad_tokens`).

Output goes to a local folder, or to s3://bucket/prefix by writing to a temporary folder
and uploading each file with the storage layer, the manifest last, so a reader never
sees a manifest whose shards are not all there.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from climbstream.errors import ConfigError
from climbstream.formats.corpus import Corpus
from climbstream.formats.manifest import MANIFEST_NAME, MANIFEST_VERSION, Manifest, to_json
from climbstream.storage.remote import is_remote
from climbstream.formats.packing import Packer, is_heldout
from climbstream.formats.tokenizer import ByteTokenizer
from climbstream.formats.writers import open_split_writer, token_dtype

log = logging.getLogger(__name__)

DEFAULT_SEQ_LEN = 256
DEFAULT_SHARD_BYTES = 4 << 20  # a few MB per shard


def shard_samples_for(seq_len: int, itemsize: int, shard_samples: int | None, shard_bytes: int | None) -> int:
    """Samples per shard: given directly, or the most samples whose tokens fit in shard_bytes."""
    if shard_samples is not None and shard_bytes is not None:
        raise ConfigError("give shard_samples or shard_bytes, not both")
    if shard_samples is not None:
        if shard_samples < 1:
            raise ConfigError(f"shard_samples must be >= 1, got {shard_samples}")
        return shard_samples
    budget = DEFAULT_SHARD_BYTES if shard_bytes is None else shard_bytes
    if budget < 1:
        raise ConfigError(f"shard_bytes must be >= 1, got {budget}")
    return max(1, budget // (seq_len * itemsize))


def prepare(corpus: Corpus, out: str, *, fmt: str = "mds", seq_len: int = DEFAULT_SEQ_LEN,
            tokenizer: Any = None, tail: str = "drop", heldout_frac: float = 0.05,
            shard_samples: int | None = None, shard_bytes: int | None = None,
            storage: Any = None, overwrite: bool = False, progress: bool = False) -> Manifest:
    """Write `corpus` as a prepared corpus at `out` (folder or s3:// prefix); return its Manifest."""
    if fmt not in ("mds", "wds"):
        raise ConfigError(f"format must be 'mds' or 'wds', got {fmt!r}")
    if not 0.0 <= heldout_frac < 1.0:
        raise ConfigError(f"heldout_frac must be in [0, 1), got {heldout_frac}")
    tokenizer = tokenizer or ByteTokenizer()
    dtype = token_dtype(tokenizer.vocab_size)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 2 <= seq_len <= 2**24:
        raise ConfigError(f"prepare: seq_len must be an integer in [2, 2**24] (tokens per sample), got {seq_len!r}")
    per_shard = shard_samples_for(seq_len, dtype.itemsize, shard_samples, shard_bytes)
    Packer(seq_len, tokenizer.eos_id, tail)  # validates seq_len and tail before any work

    if is_remote(out):
        with tempfile.TemporaryDirectory(prefix="climbstream-prepare-") as staging:
            data = _write_corpus(corpus, staging, fmt, seq_len, tokenizer, tail, heldout_frac,
                                 per_shard, dtype, progress)
            _upload(staging, out, storage, data, overwrite)
        return Manifest.from_dict(data, out.rstrip("/"), f"{out.rstrip('/')}/{MANIFEST_NAME}")

    root = os.path.abspath(out)
    _clear_local(root, corpus.languages, overwrite)
    data = _write_corpus(corpus, root, fmt, seq_len, tokenizer, tail, heldout_frac, per_shard,
                         dtype, progress)
    path = os.path.join(root, MANIFEST_NAME)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(to_json(data))
    os.replace(path + ".tmp", path)
    log.info("wrote %s", path)
    return Manifest.from_dict(data, root, path)


def _write_corpus(corpus: Corpus, root: str, fmt: str, seq_len: int, tokenizer: Any, tail: str,
                  heldout_frac: float, per_shard: int, dtype, progress: bool) -> dict:
    from tqdm import tqdm

    languages = {}
    # Progress in input bytes, so the bar has a total and an ETA from its first update; the
    # count per document is its text's size, and each language ends at its input's size.
    sizes = getattr(corpus, "input_bytes", None)
    expected = {lang: sizes(lang) for lang in corpus.languages} if sizes else None
    bar = tqdm(total=sum(expected.values()) if expected else None, unit="B", unit_scale=True, desc="prepare",
               disable=not progress, dynamic_ncols=True, mininterval=0.5)
    done = 0
    try:
        for lang in corpus.languages:
            bar.set_postfix_str(lang, refresh=True)
            writers = {split: open_split_writer(fmt, root, lang, split, seq_len, dtype, per_shard)
                       for split in ("train", "heldout")}
            packers = {split: Packer(seq_len, tokenizer.eos_id, tail) for split in writers}
            for doc in corpus.documents(lang):
                split = "heldout" if is_heldout(doc.id, heldout_frac) else "train"
                for sample in packers[split].add(tokenizer.encode(doc.text)):
                    writers[split].write(sample)
                if expected is None or bar.n < done + expected[lang]:
                    bar.update(len(doc.text.encode("utf-8")) if expected is None else
                               min(len(doc.text.encode("utf-8")), done + expected[lang] - bar.n))
            if expected is not None:
                done += expected[lang]
                bar.update(done - bar.n)
            entry: dict = {}
            for split, packer in packers.items():
                last, report = packer.finish()
                if last is not None:
                    writers[split].write(last)
                shards = writers[split].finish()
                entry[split] = shards
                prefix = "" if split == "train" else "heldout_"
                entry[f"{prefix}documents"] = packer.documents
                entry[f"{prefix}document_tokens"] = packer.document_tokens
                entry[f"{prefix}dropped_tail_tokens"] = report.dropped_tokens
                entry[f"{prefix}pad_tokens"] = report.pad_tokens
                if report.dropped_tokens:
                    log.info("%s/%s: dropped the last partial sample (%d tokens); use tail='pad' "
                             "to keep it", lang, split, report.dropped_tokens)
            entry["samples"] = sum(s["samples"] for s in entry["train"])
            entry["tokens"] = entry["samples"] * seq_len
            entry["heldout_samples"] = sum(s["samples"] for s in entry["heldout"])
            if not entry["train"]:
                raise ConfigError(f"language {lang!r}: no training sample of {seq_len} tokens "
                                  f"({entry['document_tokens']} tokens in {entry['documents']} "
                                  f"documents); give it more text, lower --seq-len, or use --tail pad")
            languages[lang] = entry
    finally:
        bar.close()
    return {
        "version": MANIFEST_VERSION, "format": fmt, "seq_len": seq_len,
        "tokenizer": tokenizer.describe(), "languages": languages, "tokens_field": "tokens",
        "prepare": {"tail": tail, "heldout_frac": heldout_frac, "shard_samples": per_shard,
                    "corpus": getattr(corpus, "description", {})},
    }


def _clear_local(root: str, languages: list[str], overwrite: bool) -> None:
    manifest = os.path.join(root, MANIFEST_NAME)
    existing = [lang for lang in languages if os.path.exists(os.path.join(root, lang))]
    if (os.path.exists(manifest) or existing) and not overwrite:
        raise ConfigError(f"{root}: already holds a prepared corpus ({MANIFEST_NAME} or language "
                          f"folders {existing}); pass --overwrite or choose another --out")
    if os.path.exists(manifest):
        os.remove(manifest)
    for lang in existing:
        shutil.rmtree(os.path.join(root, lang))
    os.makedirs(root, exist_ok=True)


def _upload(staging: str, out: str, storage: Any, data: dict, overwrite: bool) -> None:
    from climbstream.storage.remote import join_url, open_store

    store = open_store(out, storage)
    manifest_url = join_url(out, MANIFEST_NAME)
    if store.exists(manifest_url) and not overwrite:
        raise ConfigError(f"{manifest_url} already exists; pass --overwrite or choose another --out")
    files = sorted(os.path.relpath(os.path.join(d, f), staging)
                   for d, _, fs in os.walk(staging) for f in fs)
    for rel in files:
        store.put_file(os.path.join(staging, rel), join_url(out, rel.replace(os.sep, "/")))
    store.put_bytes(to_json(data).encode("utf-8"), manifest_url)
    log.info("uploaded %d files and %s", len(files), manifest_url)
