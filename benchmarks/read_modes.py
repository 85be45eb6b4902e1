"""Range vs whole-shard reads on a real S3 server (moto_server); prints one JSON object.

Not a test (timings live in benchmarks): run `.venv/bin/python -m benchmarks.read_modes` from the repository root.
Prepares the gettext corpus (8 languages, seq_len 256, default 4 MiB token shards) in each
format, then reads 40 rounds over every language at random indices of its first shard,
as block-exact mixing does, once per read mode.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time

import numpy as np


def main() -> None:
    from climbstream.prepare.gettext_corpus import gettext_corpus
    from climbstream.formats.manifest import Manifest
    from climbstream.prepare.prepare import prepare
    from climbstream.read.reader import open_reader
    from tests.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Bucket, S3Server

    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
                      AWS_DEFAULT_REGION=REGION, AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
                      AWS_RESPONSE_CHECKSUM_VALIDATION="when_required")
    server = S3Server()
    try:
        bucket = S3Bucket("bench", server.endpoint_url)
        bucket.client().create_bucket(Bucket="bench")
        options = bucket.options()
        results = {"machine": platform.platform(), "cpus": os.cpu_count(), "server": "moto_server loopback"}
        for fmt in ("mds", "wds"):
            url = f"s3://bench/{fmt}"
            prepare(gettext_corpus(), url, fmt=fmt, storage=options)
            manifest = Manifest.load(url, storage=options)
            rng = np.random.default_rng(0)
            plan = [(lang, int(rng.integers(manifest.shards(lang)[0].samples)))
                    for _ in range(40) for lang in manifest.languages]
            for mode in ("range", "shard"):
                with tempfile.TemporaryDirectory() as cache:
                    reader = open_reader(manifest, storage=options, read_mode=mode, cache_dir=cache)
                    reader.hint([(lang, "train", 0) for lang in manifest.languages])
                    start = time.perf_counter()
                    for lang, index in plan:
                        reader.read(lang, "train", 0, index)
                    seconds = time.perf_counter() - start
                    metrics = reader.metrics()
                    reader.close()
                results[f"{fmt}_{mode}"] = {"reads": len(plan), "seconds": round(seconds, 3),
                                            "ms_per_read": round(1000 * seconds / len(plan), 3),
                                            "bytes_downloaded": metrics["bytes_downloaded"]}
        print(json.dumps(results))
    finally:
        server.close()


if __name__ == "__main__":
    main()
