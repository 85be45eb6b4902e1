"""Run a proxy sweep as N parts on a Ray cluster, then merge the parts' runs tables.

    pip install 'climbstream[ray]'
    python examples/sweep_ray.py design.yaml --corpus corpus/ --out runs.csv --parts 8 [sweep options]

Each part is one Ray task running `climbstream sweep DESIGN --part i/N ...` (runs dealt
out by index from the design alone, see climbstream/train/sweep_parts.py), so the tasks
share nothing but the output folder (and the corpus they read); `climbstream sweep DESIGN
--out OUT --merge` then writes the runs table one machine would have written. The same
two commands run under a Slurm array or a Kubernetes indexed Job: only the scheduler
differs. A part that fails is rerun alone (it resumes). With no cluster address,
`ray.init()` starts a local one. Any option after the known ones goes to every part (e.g.
`--steps 160 --device cuda`; give Ray tasks GPUs with --gpus-per-part).
"""

from __future__ import annotations

import argparse


def sweep_part(index: int, count: int, argv: list[str]) -> int:
    """One part: the CLI's exit status (0 when the part's runs are in its table)."""
    from climbstream.cli import main

    return main(["sweep", *argv, "--part", f"{index}/{count}", "--quiet"])


def run(design: str, corpus: str, out: str, parts: int, extra: list[str], address: str | None = None,
        gpus_per_part: float = 0) -> int:
    import ray

    from climbstream.cli import main

    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_gpus=gpus_per_part)(sweep_part)
        argv = [design, "--corpus", corpus, "--out", out, *extra]
        statuses = ray.get([task.remote(i, parts, argv) for i in range(1, parts + 1)])
    finally:
        ray.shutdown()
    failed = [i for i, status in enumerate(statuses, 1) if status != 0]
    if failed:
        print(f"parts {failed} of {parts} failed; rerun them with 'climbstream sweep ... --part i/{parts}'")
        return 2
    return main(["sweep", design, "--out", out, "--merge"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("design")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--gpus-per-part", type=float, default=0, help="GPUs Ray reserves for each part")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    args, rest = parser.parse_known_args()
    raise SystemExit(run(args.design, args.corpus, args.out, args.parts, rest, args.address, args.gpus_per_part))
