"""One training run of the allocation benchmark: fixed mixture, common random numbers, whole held-out split.

Why not climbstream.train.loop.train: the benchmark compares mixtures, so it needs what a
general training loop does not promise:
- the model's initial weights keyed by `init_seed` alone and the data order by `data_seed`
  alone, so that for a seed every method starts from the same weights and each language's
  k-th draw is the same sample (the stream's per-language orders are keyed by (seed,
  language, epoch), not by the weights);
- a learning rate that decays to 0 (linear warm-up, then cosine): the last iterate of a
  constant-rate run carries step-to-step noise that on this model is as large as the gaps
  between mixtures;
- the whole held-out split scored, per sample, so evaluation noise can be measured
  (standard error over samples) instead of assumed away.
The model and stream are the library's (TinyLM, ClimbStream); only the loop differs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class RunShape:
    """What every run of one benchmark shares: model, batch, schedule."""

    steps: int
    global_batch: int = 16
    lr: float = 3e-3
    warmup_steps: int = 10
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    device: str = "cpu"

    def lr_factor(self, step: int) -> float:
        """Linear warm-up to 1, then cosine to 0 at `steps`."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup_steps) / span)))


def load_heldout(corpus: str) -> dict[str, torch.Tensor]:
    """The whole held-out split of every language, [samples, seq_len] int64, in the split's fixed order."""
    from climbstream.stream.dataset import ClimbStream

    stream = ClimbStream(corpus, {"method": "uniform"}, global_batch=1, seed=0)
    return {n: torch.stack([s["tokens"] for s in stream.heldout(n)]) for n in stream.languages}


def score(model, heldout: Mapping[str, torch.Tensor], device: str, batch: int = 64) -> dict[str, np.ndarray]:
    """Per-sample mean next-token loss (nats/token) for every held-out sample, per language."""
    from climbstream.train.tiny_lm import token_losses

    model.eval()
    out = {}
    with torch.no_grad():
        for name, tokens in heldout.items():
            parts = [token_losses(model, tokens[i:i + batch].to(device)).mean(dim=1).double().cpu()
                     for i in range(0, len(tokens), batch)]
            out[name] = torch.cat(parts).numpy()
    model.train()
    return out


def train_mixture(corpus: str, ratios: Mapping[str, float], shape: RunShape, *, init_seed: int, data_seed: int,
                  heldout: Mapping[str, torch.Tensor], eval_steps: tuple[int, ...] = (),
                  online: Mapping | None = None) -> dict:
    """Train one model on `ratios` for shape.steps steps; returns per-sample held-out losses and tokens seen.

    `eval_steps` also scores the model at those steps (`heldout_at`, keyed by step; the
    final score is `heldout`). `online` re-solves the mixture during the run through the
    library's Reweighter (online_options() says what it holds); its decisions come back
    in `resolves`. Deterministic given (corpus, ratios, shape, init_seed, data_seed,
    online) on one machine and thread count.
    """
    from climbstream.stream.dataset import ClimbStream
    from climbstream.train.tiny_lm import TinyLM, TinyLMConfig, token_losses

    from climbstream.formats.manifest import Manifest

    started = time.time()
    weights = {n: float(ratios.get(n, 0.0)) for n in Manifest.load(corpus).languages}  # 0: left out
    stream = ClimbStream(corpus, weights, global_batch=shape.global_batch, seed=data_seed)
    seq_len = stream.corpus.seq_len
    vocab = int(stream.corpus.manifests[0].tokenizer.get("vocab_size", 257))
    torch.manual_seed(init_seed)
    model = TinyLM(TinyLMConfig(vocab_size=vocab, seq_len=seq_len, d_model=shape.d_model, n_layers=shape.n_layers,
                                n_heads=shape.n_heads)).to(shape.device)
    opt = torch.optim.AdamW(model.parameters(), lr=shape.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, shape.lr_factor)
    seen = np.zeros(len(stream.languages), dtype=np.int64)
    tracker, reweighter = _online_parts(stream, shape, online) if online else (None, None)
    heldout_at = {}
    step = 0
    model.train()
    while step < shape.steps:
        new_stage = False
        for batch in stream.dataloader(num_workers=0):
            tokens = batch["tokens"].to(shape.device)
            losses = token_losses(model, tokens)
            losses.mean().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            seen += np.bincount(batch["lang"].numpy(), minlength=len(seen)) * seq_len
            step += 1
            if tracker is not None:
                tracker.update(losses.detach(), batch["lang"])
                tracker.step(step, stream.position, stage=len(stream.stages()) - 1,
                             weights=stream.stages()[-1]["weights"])
                if step in online["at_steps"]:
                    new_stage = reweighter.at_checkpoint(step, stream, tracker) is not None
            if step in eval_steps and step < shape.steps:
                heldout_at[step] = score(model, heldout, shape.device)
            if step >= shape.steps or new_stage:
                break  # a new stage takes effect with a new iterator
    losses = score(model, heldout, shape.device)
    heldout_at[step] = losses
    out = {"heldout": losses, "heldout_at": heldout_at, "tokens_per_language": dict(zip(stream.languages, seen.tolist())),
           "params": model.non_embedding_params(), "seconds": time.time() - started}
    if reweighter is not None:
        tracker.close()
        out["resolves"] = [{k: v for k, v in d.items() if k in ("step", "position", "verdict", "detail", "new",
                                                                 "guard_error", "stage_start")}
                           for d in reweighter.decisions]
        out["stages"] = stream.stages()
    return out


def online_options(law, at_steps: tuple[int, ...], e_max: float, floor: float | None, budget_tokens: float,
                   flush_every: int = 10, guard_threshold: float = 0.05) -> dict:
    """What the online arm's Reweighter is built from (picklable, so a job can carry it); the guard is the library's default."""
    return {"law": law, "at_steps": tuple(int(s) for s in at_steps), "e_max": e_max, "floor": floor,
            "budget_tokens": float(budget_tokens), "flush_every": int(flush_every),
            "guard_threshold": float(guard_threshold)}


def _online_parts(stream, shape: RunShape, online: Mapping):
    """The tracker of the run's own per-language training loss and the library's guarded re-weighter."""
    from climbstream.train.losses import LanguageLossTracker
    from climbstream.train.reweight import Reweighter

    seq_len = stream.corpus.seq_len
    tracker = LanguageLossTracker(stream.languages, flush_every=online["flush_every"], seq_len=seq_len)
    options = {} if online["floor"] is None else {"floor": online["floor"]}
    reweighter = Reweighter(stream.languages, stream.corpus.token_counts(), online["budget_tokens"], seq_len,
                            e_max=online["e_max"], law=online["law"], source="language",
                            guard_threshold=online["guard_threshold"], **options)
    return tracker, reweighter


class Runner:
    """Runs training jobs side by side in `workers` processes of `threads` torch threads each.

    Why processes of one thread: on 2 shared cores a 2-thread run spent 8x the CPU time of
    a 1-thread one per step (threads spin while their peer is descheduled), and two
    1-thread runs side by side use both cores with no spinning. Each job is
    (ratios, RunShape, init_seed, data_seed, languages[, train_mixture keyword options]);
    a job's result does not depend on which worker ran it.
    """

    def __init__(self, corpus: str, workers: int = 1, threads: int = 1):
        self.corpus, self.workers, self.threads = corpus, workers, threads
        self._pool = None
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(corpus, threads))
        else:
            _init_worker(corpus, threads)

    def run(self, jobs: list[tuple]) -> list[dict]:
        """Results in the order of `jobs`."""
        if self._pool is None:
            return [_run_job(job) for job in jobs]
        return list(self._pool.map(_run_job, jobs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


_WORKER: dict = {}


def _init_worker(corpus: str, threads: int) -> None:
    torch.set_num_threads(threads)
    if _WORKER.get("corpus") != corpus:
        _WORKER.update(corpus=corpus, heldout=load_heldout(corpus))


def _run_job(job: tuple) -> dict:
    ratios, shape, init_seed, data_seed, languages, *options = job
    heldout = {n: _WORKER["heldout"][n] for n in languages}
    return train_mixture(_WORKER["corpus"], ratios, shape, init_seed=init_seed, data_seed=data_seed, heldout=heldout,
                         **(options[0] if options else {}))


def mean_loss(per_sample: Mapping[str, np.ndarray]) -> float:
    """The objective's score: every language weighs the same, each the mean over its whole held-out split."""
    return float(np.mean([v.mean() for v in per_sample.values()]))


def eval_stderr(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray] | None = None) -> float:
    """Standard error of mean_loss(a) - mean_loss(b) from the finite held-out sample (b None: of mean_loss(a)).

    Paired over samples: both models are scored on the same held-out samples, so what is
    common to a sample cancels. Languages are independent samples, weighted 1/K each.
    """
    var = 0.0
    for name, v in a.items():
        d = v - b[name] if b is not None else v
        var += d.var(ddof=1) / len(d)
    return float(math.sqrt(var) / len(a))
