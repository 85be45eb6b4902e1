"""Benchmark: a corpus that grows mid-run, audited by token content, and what a change costs.

Audit (the table of issue 31): 3 gettext languages (the 3 with most messages; a seeded
synthetic corpus where the machine has none), seq_len 64, 32 samples per shard, global
batch B = 12, uniform weights, 28 train shards per language before the change and 29
appended to each at position 240. The run trains positions [0, 240) on the 28-shard
corpus, saves its state, and resumes on the grown corpus with
`load_state_dict(state, allow_manifest_change=True)`. Per language it then reads draws
until the language has had old + appended draws in all (the epoch the change falls in)
and compares the token contents drawn with the grown corpus's samples: `repeated` are
samples drawn more often than the corpus holds them, `not_reached` the ones drawn less.
Positions [0, 240) are also read again under the changed state and compared with the
first run (`before_change_unchanged`).

Cost: a GrownOrder for 10**6 samples per language (31,250 shards of 32) with a change
at draw 400,000 and 10**6 appended samples: construction time, the first and a later
locate of a global batch's draws, the Python heap it holds (tracemalloc), and the state
bytes the corpus record adds per language.

Run:  .venv/bin/python benchmarks/growth.py [--out FILE] [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter

import numpy as np

SEQ_LEN, SHARD_SAMPLES, B, CHANGE = 64, 32, 12, 240
BEFORE_SHARDS, APPENDED_SHARDS = 28, 29
SEED = 3


def _digest(tokens) -> str:
    return hashlib.sha256(np.asarray(tokens, dtype=np.int64).tobytes()).hexdigest()


def build_corpora(work: str) -> tuple[str, str, list[str]]:
    """(before root, grown root, languages): two manifests over the same shard files."""
    from climbstream.formats.manifest import MANIFEST_NAME, to_json
    from climbstream.prepare.gettext_corpus import gettext_corpus
    from climbstream.prepare.prepare import prepare

    full = os.path.join(work, "full")
    total = BEFORE_SHARDS + APPENDED_SHARDS
    if not os.path.exists(os.path.join(full, MANIFEST_NAME)):
        corpus = gettext_corpus(langs=3, max_bytes_per_lang=4 * total * SHARD_SAMPLES * SEQ_LEN * 4)
        prepare(corpus, full, fmt="mds", seq_len=SEQ_LEN, heldout_frac=0.0, shard_samples=SHARD_SAMPLES,
                overwrite=True)
    with open(os.path.join(full, MANIFEST_NAME)) as f:
        data = json.load(f)
    data.pop("content_sha256", None)
    roots = []
    for name, shards in (("before", BEFORE_SHARDS), ("grown", total)):
        root = os.path.join(work, name)
        os.makedirs(root, exist_ok=True)
        out = json.loads(json.dumps(data))
        for lang, entry in out["languages"].items():
            if len(entry["train"]) < total:
                raise SystemExit(f"{lang}: {len(entry['train'])} shards, fewer than the {total} the audit needs")
            entry["train"] = entry["train"][:shards]
            entry["samples"] = sum(s["samples"] for s in entry["train"])
            entry["tokens"] = entry["samples"] * SEQ_LEN
            link = os.path.join(root, lang)
            if not os.path.exists(link):  # hard links: the same shard files, inside each corpus folder
                shutil.copytree(os.path.join(full, lang), link, copy_function=os.link)
        with open(os.path.join(root, MANIFEST_NAME), "w") as f:
            f.write(to_json(out))
        roots.append(root)
    return roots[0], roots[1], sorted(data["languages"])


def _stream(root: str, languages: list[str]):
    from climbstream import ClimbStream

    return ClimbStream(root, {n: 1.0 / len(languages) for n in languages}, global_batch=B, seed=SEED, rank=0,
                       world_size=1)


def _read(stream, until) -> list[tuple[int, int, str]]:
    """(position, lang, content digest) from the stream's position until `until(rows)` holds."""
    rows = []
    for batch in stream.dataloader(num_workers=0):
        for p, lang, tokens in zip(batch["position"].tolist(), batch["lang"].tolist(), batch["tokens"]):
            rows.append((p, lang, _digest(tokens)))
        stream.mark_consumed(batch)
        if until(rows):
            return rows
    return rows


def audit(work: str) -> dict:
    from climbstream.stream.corpus_view import CorpusView

    before, grown, languages = build_corpora(work)
    first = _stream(before, languages)
    head = _read(first, lambda rows: len(rows) >= CHANGE)
    state = first.state_dict()
    second = _stream(grown, languages)
    second.load_state_dict(state, allow_manifest_change=True)
    epoch = {i: second.samples_per_epoch()[n] for i, n in enumerate(languages)}
    drawn = Counter(lang for _, lang, _ in head)

    def done(rows):
        seen = Counter(lang for _, lang, _ in rows)
        return all(drawn[i] + seen[i] >= epoch[i] for i in epoch)

    tail = _read(second, done)
    view = CorpusView.load([grown])
    from climbstream.read.reader import open_reader

    reader = open_reader(view.manifests[0])
    result = {}
    for i, name in enumerate(languages):
        corpus = Counter()
        for s, shard in enumerate(view.manifests[0].shards(name)):
            for j in range(shard.samples):
                corpus[_digest(reader.read_with(name, "train", s, j, (), True)[0])] += 1
        draws = [d for _, lang, d in head + tail if lang == i][:epoch[i]]
        got = Counter(draws)
        result[name] = {"samples_before": sum(1 for _, lang, _ in head if lang == i),
                        "epoch_samples": epoch[i],
                        "repeated": sum((got - corpus).values()), "not_reached": sum((corpus - got).values())}
    reader.close()
    replay = _stream(grown, languages)
    replay.load_state_dict({**second.state_dict(), "position": 0})
    again = _read(replay, lambda rows: len(rows) >= CHANGE)
    result["before_change_unchanged"] = [r[1:] for r in again[:CHANGE]] == [r[1:] for r in head[:CHANGE]]
    return result


def cost(samples: int = 10**6, shard_samples: int = 32) -> dict:
    from types import SimpleNamespace

    from climbstream.formats.corpus_record import TAGS, LanguageRecord, compare_language, shard_tags
    from climbstream.schedule.growth import GrownOrder, Version
    from climbstream.schedule.order import LanguageOrder, language_key

    shards = samples // shard_samples
    sizes = np.full(2 * shards, shard_samples, dtype=np.int64)
    key = language_key("fr")
    change = min(400_000, samples // 2)
    versions = [Version(0, shards, samples), Version(change, 2 * shards, 2 * samples)]
    ks = np.arange(change, change + 4096)  # a global batch's worth of draws just after the change

    def timed(fn, repeat=1):
        t0 = time.perf_counter()
        for _ in range(repeat):
            out = fn()
        return (time.perf_counter() - t0) / repeat, out

    listing = [SimpleNamespace(path=f"fr/shard-{i:06d}.mds", sha256=f"{i:064x}", samples=shard_samples)
               for i in range(2 * shards)]
    record_s, (record, tags) = timed(lambda: (LanguageRecord.of(listing[:shards]), shard_tags(listing[:shards])))
    compare_s, change = timed(lambda: compare_language("fr", record, tags, listing))
    assert change.kind == "appended"
    GrownOrder(SEED, key, [3, 2, 4], [Version(0, 2, 5), Version(2, 3, 9)]).locate(np.arange(12))  # numba warm
    construct_s, order = timed(lambda: GrownOrder(SEED, key, sizes, versions))
    first_s, _ = timed(lambda: order.locate(ks))
    later_s, _ = timed(lambda: order.locate(ks), 20)
    far_s, _ = timed(lambda: order.locate(ks + 10**12), 5)
    plain = LanguageOrder(SEED, key, sizes)
    plain.locate(ks)
    plain_s, _ = timed(lambda: plain.locate(ks), 20)
    tracemalloc.start()
    held = GrownOrder(SEED, key, sizes, versions)
    held.locate(ks)
    held_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    state_record = {"shards": 2 * shards, "samples": 2 * samples, "digest": "0" * 32}
    return {"samples_per_language": samples, "shards_before": shards, "appended": samples,
            "change_at_draw": change,
            "record_old_list_s": round(record_s, 4), "compare_grown_list_s": round(compare_s, 4),
            "construct_order_s": round(construct_s, 5),
            "first_locate_4096_s": round(first_s, 4), "locate_4096_s": round(later_s, 5),
            "locate_4096_at_k_1e12_s": round(far_s, 5), "unchanged_order_locate_4096_s": round(plain_s, 5),
            "order_heap_bytes": held_bytes,
            "state_bytes_per_language_and_version": len(json.dumps({"fr": state_record})),
            "state_tag_bytes_per_language": TAGS * 8}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--work", default=None, help="folder for the corpora (default: a temporary one)")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.json_report import emit

    with tempfile.TemporaryDirectory() as tmp:
        report = {"machine": platform.machine(), "python": platform.python_version(),
                  "audit": audit(args.work or tmp)}
    try:
        report["cost"] = None if args.skip_cost else cost()
    except ImportError as err:  # before schedule/growth.py existed
        report["cost"] = f"unavailable: {err}"
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
