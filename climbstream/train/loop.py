"""A plain PyTorch training loop over ClimbStream: the demo, the examples and proxy sweeps.

It shows the whole contract in one place: the stream feeds batches, the tracker logs
per-language loss, the re-weighter appends stages at checkpoints, and a checkpoint holds
model, optimizer, dataset, tracker and re-weighter state, so that a killed run resumed
from its last checkpoint writes the same logs and stages as one that never stopped.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from climbstream.errors import ConfigError, StateError
from climbstream.schedule.weights import WEIGHT_TOTAL

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOSS_LOG = "losses.jsonl"


@dataclass
class TrainConfig:
    """One training run; every field has a default that runs on 2 CPU cores in minutes."""

    corpus: str
    out_dir: str
    weights: Any = "natural"
    steps: int = 120
    global_batch: int = 16
    seed: int = 0
    lr: float = 3e-3
    warmup_steps: int = 10
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    flush_every: int = 10
    checkpoint_every: int = 40
    heldout_every: int | None = 40
    heldout_samples: int = 16
    heldout_at_tokens: list[int] = field(default_factory=list)
    resolve_every: int | None = None
    reweight: dict = field(default_factory=dict)
    num_workers: int = 0
    device: str = "cpu"
    resume: bool = True
    stop_after_steps: int | None = None
    tensorboard: bool = False
    rank: int | None = None
    world_size: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "global_batch", "flush_every", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train: {name} must be positive, got {getattr(self, name)}")
        if self.resolve_every is not None and self.resolve_every % self.checkpoint_every:
            raise ConfigError(
                f"train: resolve_every ({self.resolve_every}) must be a multiple of checkpoint_every "
                f"({self.checkpoint_every}): re-solving happens at checkpoints"
            )


def _weights_spec(cfg: TrainConfig):
    """Solver shorthands ('natural', {method: ...}) solve for this run's token budget."""
    spec = {"method": cfg.weights} if cfg.weights in ("natural", "uniform") else cfg.weights
    if isinstance(spec, dict) and "method" in spec and "budget_tokens" not in spec:
        from climbstream.formats.manifest import Manifest

        seq_len = Manifest.load(cfg.corpus).seq_len
        spec = {**spec, "budget_tokens": cfg.steps * cfg.global_batch * seq_len}
    return spec


def build_stream(cfg: TrainConfig):
    """The ClimbStream a run reads."""
    from climbstream.stream.dataset import ClimbStream

    return ClimbStream(cfg.corpus, _weights_spec(cfg), global_batch=cfg.global_batch, seed=cfg.seed,
                       rank=cfg.rank, world_size=cfg.world_size)


def train(cfg: TrainConfig) -> dict:
    """Run (or resume) training; returns a summary dict and writes it to out_dir/summary.json."""
    from climbstream.train.losses import LanguageLossTracker
    from climbstream.train.sinks import JsonlSink, TensorBoardSink
    from climbstream.train.tiny_lm import TinyLM, TinyLMConfig, token_losses

    os.makedirs(cfg.out_dir, exist_ok=True)
    torch.manual_seed(cfg.seed)
    stream = build_stream(cfg)
    device = torch.device(cfg.device)
    seq_len = stream.corpus.seq_len
    vocab = int(stream.corpus.manifests[0].tokenizer.get("vocab_size", 257))
    model = TinyLM(TinyLMConfig(vocab_size=vocab, seq_len=seq_len, d_model=cfg.d_model, n_layers=cfg.n_layers,
                                n_heads=cfg.n_heads)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)))
    sinks = [JsonlSink(os.path.join(cfg.out_dir, LOSS_LOG))]
    if cfg.tensorboard:
        sinks.append(TensorBoardSink(os.path.join(cfg.out_dir, "tb")))
    tracker = LanguageLossTracker(stream.languages, device=device, flush_every=cfg.flush_every, sinks=sinks,
                                  seq_len=seq_len)
    reweighter = _build_reweighter(cfg, stream)
    step = _restore(cfg, model, opt, sched, stream, tracker, reweighter)
    heldout = {n: stream.heldout(n) for n in stream.languages}
    loss_fn = lambda tokens: token_losses(model, tokens.to(device))  # noqa: E731
    tokens_per_step = cfg.global_batch * seq_len
    pending_evals = sorted(t for t in cfg.heldout_at_tokens if t > step * tokens_per_step)
    started = time.time()
    bar = _progress(cfg, step)
    model.train()
    while step < cfg.steps:
        for batch in stream.dataloader(num_workers=cfg.num_workers):
            tokens = batch["tokens"].to(device, non_blocking=True)
            losses = token_losses(model, tokens)
            losses.mean().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            tracker.update(losses, batch["lang"])
            position = stream.position  # the loader followed this batch
            step += 1
            stage = len(stream.stages()) - 1
            tracker.step(step, position, stage=stage, weights=stream.stages()[-1]["weights"],
                         loader_metrics=stream.metrics() if tracker.flushes_on_next_step else None)
            if bar is not None:
                bar.update(1)
            if pending_evals and step * tokens_per_step >= pending_evals[0]:
                pending_evals.pop(0)
                _score(model, tracker, heldout, loss_fn, cfg)
            elif cfg.heldout_every and step % cfg.heldout_every == 0:
                _score(model, tracker, heldout, loss_fn, cfg)
            new_stage = False
            if reweighter is not None and cfg.resolve_every and step % cfg.resolve_every == 0 and step < cfg.steps:
                new_stage = reweighter.at_checkpoint(step, stream, tracker) is not None
            if step == cfg.steps and tracker.pending_steps:  # the last partial interval, before the final save
                tracker.flush(step, position, loader_metrics=stream.metrics())
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                _save(cfg, step, model, opt, sched, stream, tracker, reweighter)
            if step >= cfg.steps or (cfg.stop_after_steps is not None and step >= cfg.stop_after_steps):
                break
            if new_stage:
                break  # a new stage takes effect with a new iterator
        if cfg.stop_after_steps is not None and step >= cfg.stop_after_steps and step < cfg.steps:
            log.info("stopping at step %d as asked (stop_after_steps)", step)
            tracker.close()
            return {"stopped_at": step}
    if bar is not None:
        bar.close()
    tracker.close()
    summary = _summary(cfg, stream, tracker, reweighter, step, time.time() - started, model)
    with open(os.path.join(cfg.out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def _score(model, tracker, heldout, loss_fn, cfg) -> None:
    model.eval()
    streams = {n: s.limit(cfg.heldout_samples) for n, s in heldout.items()}
    tracker.score_heldout(loss_fn, streams, cfg.heldout_samples)
    model.train()


def _build_reweighter(cfg: TrainConfig, stream):
    if not cfg.resolve_every:
        return None
    from climbstream.train.reweight import Reweighter

    budget = cfg.reweight.get("budget_tokens", cfg.steps * cfg.global_batch * stream.corpus.seq_len)
    options = {k: v for k, v in cfg.reweight.items() if k != "budget_tokens"}
    return Reweighter(stream.languages, stream.corpus.token_counts(), budget, stream.corpus.seq_len, **options)


def _save(cfg, step, model, opt, sched, stream, tracker, reweighter) -> None:
    if reweighter is not None:
        reweighter.observe(tracker.history)
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "lr_schedule": sched.state_dict(),
        "data": stream.state_dict(),
        "tracker": tracker.state_dict(),
        "reweighter": reweighter.state_dict() if reweighter is not None else None,
        "rng": torch.get_rng_state(),
        "config": asdict(cfg),
    }
    path = os.path.join(cfg.out_dir, CHECKPOINT)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def _restore(cfg, model, opt, sched, stream, tracker, reweighter) -> int:
    path = os.path.join(cfg.out_dir, CHECKPOINT)
    if not (cfg.resume and os.path.exists(path)):
        return 0
    try:
        state = torch.load(path, weights_only=True)  # tensors and plain data only: a file cannot run code
    except pickle.UnpicklingError as err:
        raise StateError(f"{path}: the checkpoint holds objects other than tensors and plain data, refused "
                         f"unread (torch.load weights_only): {str(err).splitlines()[0]}") from None
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["lr_schedule"])
    stream.load_state_dict(state["data"], where=path)
    tracker.load_state_dict(state["tracker"])
    if reweighter is not None and state.get("reweighter") is not None:
        reweighter.load_state_dict(state["reweighter"], where=f"{path}: reweighter")
    torch.set_rng_state(state["rng"])
    log.info("resumed from %s at step %d (position %d)", path, state["step"], stream.position)
    return int(state["step"])


def _progress(cfg: TrainConfig, step: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=cfg.steps, initial=step, desc="train", unit="step")


def _summary(cfg, stream, tracker, reweighter, step, seconds, model) -> dict:
    # From the whole run's log, so a run resumed at (or near) its end still reports them.
    from climbstream.formats.loss_log import LossLog

    path = os.path.join(cfg.out_dir, LOSS_LOG)
    records = LossLog.read(path).of_kind("heldout") if os.path.exists(path) else tracker.history
    final = {}
    for r in records:
        if r.get("kind") == "heldout" and r.get("loss_mean") is not None:
            final[r["lang"]] = r["loss_mean"]
    return {
        "steps": step,
        "seconds": round(seconds, 1),
        "params": model.non_embedding_params(),
        "tokens_per_language": dict(tracker.tokens_total),
        "final_heldout_loss": final,
        "stages": [{**s, "ratios": {n: round(w / WEIGHT_TOTAL, 6) for n, w in s["weights"].items()}}
                   for s in stream.stages()],  # integer weights as the state holds them, and as ratios
        "resolves": reweighter.decisions if reweighter is not None else [],
        "out_dir": cfg.out_dir,
    }
