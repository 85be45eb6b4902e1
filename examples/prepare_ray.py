"""Prepare a corpus as N parts on a Ray cluster, then merge the parts' manifests.

    pip install 'climbstream[ray]'
    python examples/prepare_ray.py INPUT --out s3://bucket/corpus --parts 8 [prepare options]

Each part is one Ray task running `climbstream prepare INPUT --part i/N ...` (whole
languages, balanced by input size, see climbstream/formats/parts.py), so the tasks share
nothing but the output location; `climbstream manifest OUT --merge` then writes the
corpus manifest. The same two commands run under a Slurm array or a Kubernetes indexed
Job: only the scheduler differs. With no cluster address, `ray.init()` starts a local one.
Any option after the known ones goes to every `prepare` (e.g. `--tokenizer tok.json`).
"""

from __future__ import annotations

import argparse


def prepare_part(index: int, count: int, argv: list[str]) -> int:
    """One part: the CLI's exit status (0 when the part and its part manifest are written)."""
    from climbstream.cli import main

    return main(["prepare", *argv, "--part", f"{index}/{count}", "--quiet"])


def run(input_path: str, out: str, parts: int, extra: list[str], address: str | None = None) -> int:
    import ray

    from climbstream.cli import main

    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(prepare_part)
        statuses = ray.get([task.remote(i, parts, [input_path, "--out", out, *extra]) for i in range(1, parts + 1)])
    finally:
        ray.shutdown()
    failed = [i for i, status in enumerate(statuses, 1) if status != 0]
    if failed:
        print(f"parts {failed} of {parts} failed; rerun them with 'climbstream prepare ... --part i/{parts}'")
        return 2
    return main(["manifest", out, "--merge", "--quiet"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("--out", required=True)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    args, rest = parser.parse_known_args()
    raise SystemExit(run(args.input, args.out, args.parts, rest, args.address))
