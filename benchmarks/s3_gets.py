"""CPU per S3 GET: climbstream's direct client, boto3, and s3torchconnectorclient; prints JSON.

Each client fetches the same 200 objects of 100 KB from `rclone serve s3` on loopback,
one thread, in a fresh process, after one warm-up GET (connection and credentials), and
the process's user + system CPU (every thread, so the CRT's native threads count) is
divided by the GETs. This is the measurement behind keeping storage/s3_direct.py: the
loader spends that CPU on the cores that decode samples.

    .venv/bin/python benchmarks/s3_gets.py [--crt-python /path/to/python] [--repeats 3]

`--crt-python` names an interpreter with s3torchconnectorclient installed (it is not a
dependency; its row is skipped without one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from s3_rclone import RcloneS3Server  # noqa: E402  (benchmarks/ is on sys.path: run as a script)

OBJECTS, OBJECT_BYTES, BUCKET = 200, 100_000, "gets"

CLIENT = r'''
import resource, sys, time
kind, endpoint, bucket, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if kind == "s3torchconnectorclient":
    from s3torchconnectorclient._mountpoint_s3_client import MountpointS3Client
    client = MountpointS3Client("us-east-1", endpoint=endpoint, force_path_style=True)
    get = lambda key: b"".join(bytes(part) for part in client.get_object(bucket, key))
else:
    from climbstream.storage.options import StorageOptions
    from climbstream.storage.s3 import S3Store
    store = S3Store(StorageOptions(endpoint_url=endpoint, region="us-east-1", addressing_style="path",
                                   direct_get=kind == "s3_direct"))
    get = lambda key: store.read_bytes(f"s3://{bucket}/{key}")
get("o00000")
before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
total = sum(len(get(f"o{i:05d}")) for i in range(n))
after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
print(cpu / n * 1000, wall / n * 1000, total)
'''


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crt-python", default=None, help="python with s3torchconnectorclient installed")
    ap.add_argument("--repeats", type=int, default=3, help="runs per client, round robin; the median is kept")
    args = ap.parse_args(argv)
    clients = [("s3_direct", sys.executable), ("boto3", sys.executable)]
    if args.crt_python:
        clients.append(("s3torchconnectorclient", args.crt_python))
    runs: dict[str, list] = {name: [] for name, _ in clients}
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, BUCKET))
        for i in range(OBJECTS):
            with open(os.path.join(root, BUCKET, f"o{i:05d}"), "wb") as f:
                f.write(os.urandom(OBJECT_BYTES))
        with RcloneS3Server(root) as server:
            env = {**os.environ, **server.env()}
            for _ in range(args.repeats):
                for name, python in clients:
                    out = subprocess.run([python, "-c", CLIENT, name, server.endpoint_url, BUCKET, str(OBJECTS)],
                                         env=env, capture_output=True, text=True, check=True).stdout.split()
                    runs[name].append({"cpu_ms_per_get": round(float(out[0]), 3),
                                       "wall_ms_per_get": round(float(out[1]), 3), "bytes": int(out[2])})

    def median(name: str, key: str) -> float:
        values = sorted(r[key] for r in runs[name])
        return values[len(values) // 2]

    result = {"benchmark": "s3_gets", "objects": OBJECTS, "object_bytes": OBJECT_BYTES,
              "median": {name: {"cpu_ms_per_get": median(name, "cpu_ms_per_get"),
                                "wall_ms_per_get": median(name, "wall_ms_per_get")} for name in runs},
              "runs": runs}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
