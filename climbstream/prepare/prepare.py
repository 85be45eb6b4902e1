"""`prepare`: tokenize a corpus, pack fixed-length samples, write shards and the manifest.

Per language, documents are tokenized in input order, each followed by eos, split into
train/held-out by a hash of the document id (see packing.is_heldout), and packed into
`seq_len` samples (see packing.Packer for the exact accounting). The last partial sample
of each split is dropped (default; its tokens are logged and recorded per language as
`dropped_tail_tokens`) or padded with eos (`tail="pad"`, recorded as `pad_tokens`).

Output goes to a local folder, or to s3://bucket/prefix by writing to a temporary folder
and uploading each file with the storage layer, the manifest last, so a reader never
sees a manifest whose shards are not all there.

Languages are independent, so they are the unit of parallel work: `workers=N` runs N
processes on one machine, and `part="i/N"` prepares one of N parts on one of N machines
(prepare/parts.py), both writing the same bytes as one process would.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from climbstream.errors import ConfigError
from climbstream.prepare.corpus import Corpus
from climbstream.formats.manifest import MANIFEST_NAME, MANIFEST_VERSION, Manifest, to_json
from climbstream.storage.urls import is_remote
from climbstream.prepare.packing import Packer, is_heldout
from climbstream.prepare.parts import PART_KEY, assign_parts, parse_part, part_manifest_name
from climbstream.prepare.tokenizer import ByteTokenizer
from climbstream.prepare.writers import open_split_writer, token_dtype

log = logging.getLogger(__name__)

DEFAULT_SEQ_LEN = 256
DEFAULT_SHARD_BYTES = 4 << 20  # a few MB per shard
ENCODE_BATCH = 256  # documents given to the tokenizer at once (tokenizers' encode_batch)


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


@dataclass(frozen=True)
class _Settings:
    """What every language is prepared with (sent whole to each worker process)."""

    fmt: str
    seq_len: int
    tokenizer: Any
    tail: str
    heldout_frac: float
    per_shard: int
    dtype: np.dtype


def prepare(corpus: Corpus, out: str, *, fmt: str = "mds", seq_len: int = DEFAULT_SEQ_LEN,
            tokenizer: Any = None, tail: str = "drop", heldout_frac: float = 0.05,
            shard_samples: int | None = None, shard_bytes: int | None = None,
            storage: Any = None, overwrite: bool = False, progress: bool = False,
            workers: int = 1, part: str | tuple[int, int] | None = None) -> Manifest:
    """Write `corpus` as a prepared corpus at `out` (folder or s3:// prefix); return its Manifest.

    `workers` processes prepare languages side by side (a language is one process's work,
    so the output is the same bytes whatever `workers` is). `part="i/N"` prepares only
    the i-th of N parts of the languages and writes a part manifest; `merge_parts` (the
    CLI's `manifest --merge`) joins the N parts (see prepare/parts.py).
    """
    if fmt not in ("mds", "wds"):
        raise ConfigError(f"format must be 'mds' or 'wds', got {fmt!r}")
    if not 0.0 <= heldout_frac < 1.0:
        raise ConfigError(f"heldout_frac must be in [0, 1), got {heldout_frac}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024:
        raise ConfigError(f"prepare: workers must be an integer in [1, 1024], got {workers!r}")
    tokenizer = tokenizer or ByteTokenizer()
    dtype = token_dtype(tokenizer.vocab_size)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 2 <= seq_len <= 2**24:
        raise ConfigError(f"prepare: seq_len must be an integer in [2, 2**24] (tokens per sample), got {seq_len!r}")
    per_shard = shard_samples_for(seq_len, dtype.itemsize, shard_samples, shard_bytes)
    Packer(seq_len, tokenizer.eos_id, tail)  # validates seq_len and tail before any work
    settings = _Settings(fmt, seq_len, tokenizer, tail, heldout_frac, per_shard, dtype)

    languages = list(corpus.languages)
    manifest_name, part_info = MANIFEST_NAME, None
    if part is not None:
        index, count = parse_part(part)
        sizes = getattr(corpus, "input_bytes", None)
        chosen = assign_parts({lang: sizes(lang) if sizes else 1 for lang in languages}, count)[index - 1]
        part_info = {"index": index, "count": count, "corpus_languages": languages}
        manifest_name, languages = part_manifest_name(index, count), chosen
        log.info("part %d/%d: languages %s", index, count, chosen)

    if is_remote(out):
        with tempfile.TemporaryDirectory(prefix="climbstream-prepare-") as staging:
            data = _write_corpus(corpus, staging, settings, languages, workers, progress, part_info)
            _upload(staging, out, storage, data, overwrite, manifest_name)
        where = f"{out.rstrip('/')}/{manifest_name}"
        return Manifest.from_dict(data, out.rstrip("/"), where)

    root = os.path.abspath(out)
    _clear_local(root, languages, overwrite, manifest_name)
    data = _write_corpus(corpus, root, settings, languages, workers, progress, part_info)
    path = os.path.join(root, manifest_name)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(to_json(data))
    os.replace(path + ".tmp", path)
    log.info("wrote %s", path)
    return Manifest.from_dict(data, root, path)


def _write_corpus(corpus: Corpus, root: str, settings: _Settings, languages: list[str], workers: int,
                  progress: bool, part_info: dict | None) -> dict:
    from tqdm import tqdm

    # Progress in input bytes, so the bar has a total and an ETA from its first update; the
    # count per document is its text's size, and each language ends at its input's size.
    sizes = getattr(corpus, "input_bytes", None)
    expected = {lang: sizes(lang) for lang in languages} if sizes else {lang: None for lang in languages}
    total = sum(expected.values()) if sizes else None
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="prepare", disable=not progress,
               dynamic_ncols=True, mininterval=0.5)
    try:
        if workers == 1 or len(languages) == 1:
            entries = {}
            for lang in languages:
                bar.set_postfix_str(lang, refresh=True)
                entries[lang] = _write_language(corpus, lang, root, settings, expected[lang], bar.update)
        else:
            entries = _write_in_processes(corpus, root, settings, languages, workers, expected, bar)
    finally:
        bar.close()
    data = {
        "version": MANIFEST_VERSION, "format": settings.fmt, "seq_len": settings.seq_len,
        "tokenizer": settings.tokenizer.describe(), "tokens_field": "tokens",
        "languages": {lang: entries[lang] for lang in languages},
        "prepare": {"tail": settings.tail, "heldout_frac": settings.heldout_frac,
                    "shard_samples": settings.per_shard, "corpus": getattr(corpus, "description", {})},
    }
    if part_info is not None:
        data[PART_KEY] = part_info
    return data


def _write_language(corpus: Corpus, lang: str, root: str, s: _Settings, expected: int | None,
                    report: Callable[[int], Any]) -> dict:
    """Tokenize, pack and write one language; returns its manifest entry.

    `report(n)` is told of input bytes as documents are read, `expected` in all (the
    counts stop there, and are made up to it at the end, so the bar never overshoots).
    """
    writers = {split: open_split_writer(s.fmt, root, lang, split, s.seq_len, s.dtype, s.per_shard)
               for split in ("train", "heldout")}
    packers = {split: Packer(s.seq_len, s.tokenizer.eos_id, s.tail) for split in writers}
    reported = 0
    for docs in _batches(corpus.documents(lang), ENCODE_BATCH):
        for doc, tokens in zip(docs, s.tokenizer.encode_batch([d.text for d in docs])):
            split = "heldout" if is_heldout(doc.id, s.heldout_frac) else "train"
            for sample in packers[split].add(tokens):
                writers[split].write(sample)
        step = sum(len(d.text.encode("utf-8")) for d in docs)
        if expected is not None:
            step = min(step, expected - reported)
        reported += step
        report(step)
    if expected is not None:
        report(expected - reported)
    entry: dict = {}
    for split, packer in packers.items():
        last, tail = packer.finish()
        if last is not None:
            writers[split].write(last)
        entry[split] = writers[split].finish()
        prefix = "" if split == "train" else "heldout_"
        entry[f"{prefix}documents"] = packer.documents
        entry[f"{prefix}document_tokens"] = packer.document_tokens
        entry[f"{prefix}dropped_tail_tokens"] = tail.dropped_tokens
        entry[f"{prefix}pad_tokens"] = tail.pad_tokens
        if tail.dropped_tokens:
            log.info("%s/%s: dropped the last partial sample (%d tokens); use tail='pad' "
                     "to keep it", lang, split, tail.dropped_tokens)
    entry["samples"] = sum(shard["samples"] for shard in entry["train"])
    entry["tokens"] = entry["samples"] * s.seq_len
    entry["heldout_samples"] = sum(shard["samples"] for shard in entry["heldout"])
    if not entry["train"]:
        raise ConfigError(f"language {lang!r}: no training sample of {s.seq_len} tokens "
                          f"({entry['document_tokens']} tokens in {entry['documents']} "
                          f"documents); give it more text, lower --seq-len, or use --tail pad")
    return entry


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- worker processes ---------------------------------------------------------------------
_progress_counter: Any = None  # in a worker: the shared count of input bytes read


def _init_worker(counter: Any) -> None:
    global _progress_counter
    _progress_counter = counter
    # One process per core already; the tokenizer's own threads would only compete.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _count(n: int) -> None:
    with _progress_counter.get_lock():
        _progress_counter.value += n


def _language_task(corpus: Corpus, lang: str, root: str, settings: _Settings, expected: int | None) -> dict:
    return _write_language(corpus, lang, root, settings, expected, _count)


def _write_in_processes(corpus: Corpus, root: str, settings: _Settings, languages: list[str],
                        workers: int, expected: dict, bar) -> dict:
    """Languages prepared by a pool of `workers` processes, largest first (so the last one
    to start is small); each writes its own folders, so the output does not depend on
    which process took which language."""
    import multiprocessing as mp

    if settings.fmt == "mds":  # imported once here, not once per forked worker
        from climbstream.extras import require

        require("streaming", "writing MDS shards (--format mds)")
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    counter = ctx.Value("q", 0)
    order = sorted(languages, key=lambda lang: (-(expected[lang] or 0), lang))
    with ctx.Pool(min(workers, len(languages)), initializer=_init_worker, initargs=(counter,)) as pool:
        pending = {lang: pool.apply_async(_language_task, (corpus, lang, root, settings, expected[lang]))
                   for lang in order}
        entries = {}
        while pending:
            for lang in [lang for lang, result in pending.items() if result.ready()]:
                entries[lang] = pending.pop(lang).get()  # a worker's error is raised here
            bar.update(counter.value - bar.n)
            if pending:
                bar.set_postfix_str(f"{len(pending)} languages to go", refresh=False)
                next(iter(pending.values())).wait(0.05)  # back as soon as it is done, or to update the bar
    return entries


def _clear_local(root: str, languages: list[str], overwrite: bool, manifest_name: str) -> None:
    """Refuse to write over a prepared corpus unless told to; a part also replaces the whole
    corpus's manifest (it would point at shards this part rewrites)."""
    manifests = [os.path.join(root, name) for name in {MANIFEST_NAME, manifest_name}]
    manifests = [path for path in manifests if os.path.exists(path)]
    existing = [lang for lang in languages if os.path.exists(os.path.join(root, lang))]
    if (manifests or existing) and not overwrite:
        raise ConfigError(f"{root}: already holds a prepared corpus ({manifest_name} or language "
                          f"folders {existing}); pass --overwrite or choose another --out")
    for path in manifests:
        os.remove(path)
    for lang in existing:
        shutil.rmtree(os.path.join(root, lang))
    os.makedirs(root, exist_ok=True)


def _upload(staging: str, out: str, storage: Any, data: dict, overwrite: bool, manifest_name: str) -> None:
    from climbstream.storage.registry import open_store
    from climbstream.storage.urls import join_url

    store = open_store(out, storage)
    manifest_url = join_url(out, manifest_name)
    if store.exists(manifest_url) and not overwrite:
        raise ConfigError(f"{manifest_url} already exists; pass --overwrite or choose another --out")
    files = sorted(os.path.relpath(os.path.join(d, f), staging)
                   for d, _, fs in os.walk(staging) for f in fs)
    for rel in files:
        store.put_file(os.path.join(staging, rel), join_url(out, rel.replace(os.sep, "/")))
    store.put_bytes(to_json(data).encode("utf-8"), manifest_url)
    log.info("uploaded %d files and %s", len(files), manifest_url)
