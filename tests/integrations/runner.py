"""Run a training script under torchrun on CPU (gloo) and read what each rank trained on.

Each script writes `OUT/rank{r}.jsonl`, one line per batch the step trained on:
`{"phase", "step", "positions", "digests"}`, plus `OUT/collated.jsonl` lines for every
batch its loader produced (what a resume replays). `expected_steps` is the uninterrupted
stream: global batch s is step s + 1, rank r reads the r-th slice.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
REPO = HERE.parent.parent
B = 8


def digest(tokens: torch.Tensor) -> str:
    return hashlib.sha1(tokens.cpu().numpy().tobytes()).hexdigest()[:12]


def record(out_dir: str, rank: int, phase: str, step: int, positions, tokens) -> None:
    """Append one trained batch of `rank` (called from the scripts)."""
    line = {"phase": phase, "step": step, "positions": [int(p) for p in positions],
            "digests": [digest(t) for t in tokens]}
    with open(os.path.join(out_dir, f"rank{rank}.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\n")


def run(script: str, *args: str, nproc: int = 2, env: dict | None = None, timeout: int = 300,
        expect_fail: bool = False) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node nproc script args` (or plain python for nproc=0)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(HERE / script), *args] if nproc else [sys.executable, str(HERE / script), *args]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
                "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled", **(env or {})}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        full_env.pop(key, None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=str(REPO))
    if expect_fail:
        assert proc.returncode != 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    else:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def trained(out_dir, rank: int, phase: str | None = None) -> list[dict]:
    path = Path(out_dir) / f"rank{rank}.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [x for x in lines if phase is None or x["phase"] == phase]


def expected_steps(corpus: str, weights, steps: int, world: int, seed: int = 0) -> list[list[dict]]:
    """Per rank, per step: positions and digests of the uninterrupted stream."""
    from climbstream import ClimbStream

    single = ClimbStream(corpus, weights, global_batch=B, seed=seed, rank=0, world_size=1)
    batches = []
    for batch in single.dataloader():
        batches.append(batch)
        if len(batches) == steps:
            break
    local = B // world
    out = []
    for r in range(world):
        out.append([{"positions": b["position"][r * local:(r + 1) * local].tolist(),
                     "digests": [digest(t) for t in b["tokens"][r * local:(r + 1) * local]]} for b in batches])
    return out


def as_steps(lines: list[dict]) -> list[dict]:
    return [{"positions": x["positions"], "digests": x["digests"]} for x in lines]
