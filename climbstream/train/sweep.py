"""Proxy sweeps: train one small model per designed mixture and append the runs table.

The runs table is the CSV of the interfaces (run, tokens, params, ratio_<lang>,
loss_<lang>, seed), one row per (run, token count), the loss held out per language. A
sweep is resumable: runs already complete in the table are skipped, and the builtin
trainer resumes a half-finished run from its checkpoint. `SweepConfig(part=(i, N))`
trains one part of the design (one machine's share); sweep_parts.py says which runs and
merges the part tables.

Trainers:
- `builtin`: climbstream's tiny byte-level transformer streaming through ClimbStream.
- any command: a template with placeholders {mixture} (a JSON file {NAME: ratio} to read),
  {out} (the JSON file to write), {run}, {corpus}, {tokens} (the token budget) and
  {seed}. The command writes `{"tokens": [t1, ...], "loss": {NAME: [l1, ...]},
  "params": N}` (params optional): the documented contract for a real trainer.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from climbstream.errors import ConfigError
from climbstream.train.sweep_design import load_design, ratio_cells
from climbstream.train.sweep_parts import part_table_path, runs_of_part

log = logging.getLogger(__name__)


@dataclass
class SweepConfig:
    """What a sweep trains, where it writes, and how each run is scored."""

    design: str
    corpus: str
    runs_out: str
    trainer: str = "builtin"
    steps: int = 120
    global_batch: int = 16
    eval_fractions: Sequence[float] = (0.25, 0.5, 1.0)
    heldout_samples: int = 32
    work_dir: str | None = None
    device: str = "cpu"
    seed: int = 0
    num_workers: int = 0
    progress: bool = False
    train_options: dict = field(default_factory=dict)
    part: tuple[int, int] | None = None  # (i, N): train only part i's runs (train/sweep_parts.py)


def completed_runs(runs_out: str, expected_rows: int) -> set[int]:
    """Run ids with all their rows already in the table."""
    if not os.path.exists(runs_out):
        return set()
    counts: dict[int, int] = {}
    with open(runs_out, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            counts[int(row["run"])] = counts.get(int(row["run"]), 0) + 1
    return {run for run, n in counts.items() if n >= expected_rows}


def run_sweep(cfg: SweepConfig) -> dict:
    """Train every designed mixture not yet in the table; returns timing and counts."""
    from climbstream.formats.manifest import Manifest

    langs, mixtures = load_design(cfg.design)
    manifest = Manifest.load(cfg.corpus)
    if sorted(manifest.languages) != langs:
        raise ConfigError(
            f"{cfg.design}: designed for languages {', '.join(langs)} but the corpus {cfg.corpus} has "
            f"{', '.join(manifest.languages)}"
        )
    tokens_per_step = cfg.global_batch * manifest.seq_len
    eval_tokens = sorted({int(round(f * cfg.steps)) * tokens_per_step for f in cfg.eval_fractions})
    runs, table = list(range(len(mixtures))), cfg.runs_out
    if cfg.part is not None:  # a part writes its own table beside runs_out; 'sweep --merge' joins them

        runs, table = runs_of_part(len(mixtures), *cfg.part), part_table_path(cfg.runs_out, *cfg.part)
    done = completed_runs(table, len(eval_tokens)) & set(runs)
    work = cfg.work_dir or os.path.splitext(cfg.runs_out)[0] + "-work"
    todo = [i for i in runs if i not in done]
    times = []
    bar = _bar(cfg, len(runs), len(done))
    for run in todo:
        started = time.time()
        run_dir = os.path.join(work, f"run-{run:04d}")
        if cfg.trainer == "builtin":
            result = _train_builtin(cfg, mixtures[run], run_dir, eval_tokens)
        else:
            result = _train_command(cfg, run, mixtures[run], run_dir, cfg.steps * tokens_per_step)
        _append_rows(table, langs, run, mixtures[run], result, cfg.seed)
        times.append(time.time() - started)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {"runs": len(runs), "trained": len(todo), "skipped": len(done),
            "seconds_per_run": (sum(times) / len(times)) if times else None, "runs_out": table,
            "part": None if cfg.part is None else "%d/%d" % cfg.part}


def _train_builtin(cfg: SweepConfig, mixture: Mapping[str, float], run_dir: str, eval_tokens: list[int]) -> dict:
    from climbstream.train.loop import TrainConfig, train
    from climbstream.formats.loss_log import LossLog

    tc = TrainConfig(corpus=cfg.corpus, out_dir=run_dir, weights=dict(mixture), steps=cfg.steps,
                     global_batch=cfg.global_batch, seed=cfg.seed, heldout_every=None,
                     heldout_samples=cfg.heldout_samples, heldout_at_tokens=list(eval_tokens),
                     checkpoint_every=max(1, cfg.steps // 4), device=cfg.device, num_workers=cfg.num_workers,
                     **cfg.train_options)
    summary = train(tc)
    records = LossLog.read(os.path.join(run_dir, "losses.jsonl")).of_kind("heldout")
    seq_len = _seq_len(cfg.corpus)
    by_tokens: dict[int, dict[str, float]] = {}
    for r in records:
        by_tokens.setdefault(int(r["position"]) * seq_len, {})[r["lang"]] = r["loss_mean"]
    tokens = [t for t in sorted(by_tokens) if t in set(eval_tokens)]
    return {"tokens": tokens, "loss": {n: [by_tokens[t].get(n) for t in tokens] for n in mixture},
            "params": summary["params"]}


def _seq_len(corpus: str) -> int:
    from climbstream.formats.manifest import Manifest

    return Manifest.load(corpus).seq_len


def _train_command(cfg: SweepConfig, run: int, mixture: Mapping[str, float], run_dir: str, tokens: int) -> dict:
    os.makedirs(run_dir, exist_ok=True)
    mixture_path = os.path.join(run_dir, "mixture.json")
    out_path = os.path.join(run_dir, "result.json")
    with open(mixture_path, "w", encoding="utf-8") as f:
        json.dump(dict(mixture), f)
    try:
        command = cfg.trainer.format(mixture=mixture_path, out=out_path, run=run, corpus=cfg.corpus,
                                     tokens=tokens, seed=cfg.seed)
    except (KeyError, IndexError) as err:
        raise ConfigError(f"--trainer: unknown placeholder {err} in {cfg.trainer!r}; use {{mixture}} {{out}} "
                          f"{{run}} {{corpus}} {{tokens}} {{seed}}") from None
    proc = subprocess.run(shlex.split(command), capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError(f"trainer command for run {run} failed (exit {proc.returncode}): {command}\n"
                          f"{proc.stderr.strip()[-2000:]}")
    try:
        with open(out_path, encoding="utf-8") as f:
            result = json.load(f)
        tokens_list = [int(t) for t in result["tokens"]]
        loss = {n: [float(x) for x in result["loss"][n]] for n in mixture}
    except FileNotFoundError:
        raise ConfigError(f"trainer command for run {run} wrote no {out_path}") from None
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
        raise ConfigError(f"{out_path}: expected {{\"tokens\": [...], \"loss\": {{NAME: [...]}}}} with every "
                          f"language of the design; problem: {err!r}") from None
    if any(len(v) != len(tokens_list) for v in loss.values()):
        raise ConfigError(f"{out_path}: every loss list must have one value per entry of 'tokens'")
    return {"tokens": tokens_list, "loss": loss, "params": int(result.get("params", 0))}


def _append_rows(path: str, langs: Sequence[str], run: int, mixture: Mapping[str, float], result: dict,
                 seed: int) -> None:
    columns = ["run", "tokens", "params", *[f"ratio_{n}" for n in langs], *[f"loss_{n}" for n in langs], "seed"]
    new = not os.path.exists(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(columns)
        for j, t in enumerate(result["tokens"]):
            writer.writerow([run, t, result["params"], *ratio_cells(mixture, langs),
                             *[f"{result['loss'][n][j]:.5f}" for n in langs], seed])


def _bar(cfg: SweepConfig, total: int, done: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="sweep", unit="run")
