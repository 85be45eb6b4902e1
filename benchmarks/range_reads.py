"""Benchmark: a batch's range reads one after another against fetched together (read/range_batch.py).

Prints one JSON object. The gettext corpus (16 languages, MDS, seq_len 256) is prepared on
local disk, served by `rclone serve s3` behind the delay proxy (a round trip of --rtt-ms
per request), and read by ClimbStream in read_mode "range" (what a node does with the
samples it does not read whole under a partitioned order): --batches global batches of
--batch after one warm-up batch, in the main process and with 2 DataLoader workers.
"one_by_one" is the reader with `SampleReader.fetch_ranges` a no-op, what it did before
(each read fetches its header, block of sums and sample in turn); "batched" is the reader
as shipped. Both in the same run, on
the same data, alternating, --repeats times; the ratio is of the medians.

Run:  .venv/bin/python benchmarks/range_reads.py [--rtt-ms 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _one_by_one(self, reads) -> None:
    """SampleReader.fetch_ranges as before it existed: each read fetches what it needs."""


def measure(url: str, storage, batch: int, batches: int, workers: int, batched: bool) -> float:
    """Samples per second over `batches` global batches after the first."""
    from climbstream import ClimbStream
    from climbstream.read.reader import SampleReader

    original = SampleReader.fetch_ranges
    if not batched:
        SampleReader.fetch_ranges = _one_by_one  # before fork: the workers inherit it
    try:
        stream = ClimbStream(url, {"method": "uniform"}, global_batch=batch, rank=0, world_size=1,
                             storage=storage, read_mode="range", stop_position=(batches + 1) * batch)
        loader = stream.dataloader(num_workers=workers)
        it = iter(loader)
        next(it)
        start = time.perf_counter()
        seen = sum(len(b["tokens"]) for b in it)
        seconds = time.perf_counter() - start
    finally:
        SampleReader.fetch_ranges = original
    assert seen == batches * batch, (seen, batches * batch)
    return seen / seconds


def main(argv=None) -> int:
    from climbstream.prepare.gettext_corpus import gettext_corpus
    from climbstream.prepare.prepare import prepare
    from climbstream.storage.options import StorageOptions
    from delay_proxy import DelayProxy
    from json_report import emit
    from s3_rclone import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, RcloneS3Server, s3_client_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        prepare(gettext_corpus(langs=16), os.path.join(root, "bench", "corpus"), fmt="mds", seq_len=256)
        with RcloneS3Server(root) as server, DelayProxy(server.port, args.rtt_ms) as proxy:
            os.environ.update(s3_client_env(proxy.endpoint_url))
            storage = StorageOptions(endpoint_url=proxy.endpoint_url, region=REGION, access_key_id=ACCESS_KEY_ID,
                                     secret_access_key=SECRET_ACCESS_KEY, addressing_style="path")
            runs: dict = {}
            for _ in range(args.repeats):
                for workers in (0, 2):
                    for batched in (False, True):
                        name = f"{'batched' if batched else 'one_by_one'}_workers{workers}"
                        runs.setdefault(name, []).append(
                            measure("s3://bench/corpus", storage, args.batch, args.batches, workers, batched))
    medians = {name: statistics.median(v) for name, v in runs.items()}
    report = {"benchmark": "range_reads", "rtt_ms": args.rtt_ms, "global_batch": args.batch,
              "batches": args.batches, "repeats": args.repeats,
              "samples_per_s": {k: [round(x, 1) for x in v] for k, v in runs.items()},
              "median_samples_per_s": {k: round(v, 1) for k, v in medians.items()},
              "batched_over_one_by_one": {w: round(medians[f"batched_workers{w}"] / medians[f"one_by_one_workers{w}"], 2)
                                          for w in (0, 2)}}
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
