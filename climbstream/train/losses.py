"""Per-language training loss, accumulated on the loss's device and all-reduced at flush.

`update()` runs every step, so it never synchronizes with the host: it adds each sample's
loss sum, token count and a sample count into one [3, K+1] float64 tensor with a single
`index_add_` (column K collects out-of-range language ids, reported at the next flush
instead of checked per step). `step()` counts steps, and every `flush_every` steps one
all_reduce(SUM) of that vector (plus one slot per rank for the position) makes every rank
hold the same global per-language means; records go to the sinks (file sinks write on
rank 0 only) and to `history`. The means are token-weighted: sum of per-token losses over
sum of tokens, so they equal one mean over all tokens of all ranks.

Records are the loss log of the interfaces; fields are listed in formats/loss_log.py.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from climbstream.errors import ConfigError, StateError, check_version
from climbstream.formats.loss_log import LOSS_LOG_VERSION
from climbstream.storage.metrics import LOADER_METRICS

log = logging.getLogger(__name__)

STATE_VERSION = 1
_LOSS, _TOKENS, _SAMPLES = 0, 1, 2


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


class LanguageLossTracker:
    """Per-language mean loss and token counts for the training loop.

    `languages` are the names that the batch's `lang` ids index (the dataset's
    `languages`, sorted by name). `seq_len` is the token count of a sample when `update`
    gets per-sample losses with neither `tokens` nor `mask`. `process_group` selects the
    ranks to reduce over (default: the whole world when torch.distributed is initialized).
    Every rank must call `step`, `flush` and `score_heldout` the same number of times.
    """

    def __init__(self, languages: Sequence[str], *, device=None, flush_every: int = 50, sinks=(),
                 process_group=None, heldout_every: int | None = None, seq_len: int | None = None):
        self.languages = tuple(languages)
        if not self.languages or len(set(self.languages)) != len(self.languages):
            raise ConfigError(f"LanguageLossTracker: languages {list(self.languages)} must be non-empty and "
                              f"unique; pass dataset.languages")
        for name, value in (("flush_every", flush_every), ("heldout_every", heldout_every or 1),
                            ("seq_len", seq_len or 1)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"LanguageLossTracker: {name}={value!r} must be a positive integer")
        self.flush_every, self.heldout_every, self.seq_len = flush_every, heldout_every, seq_len
        self.sinks = list(sinks)
        self.process_group = process_group
        self._device = torch.device(device) if device is not None else None
        self._index = {name: i for i, name in enumerate(self.languages)}
        self._acc: torch.Tensor | None = None
        self._restored: torch.Tensor | None = None
        self.history: list[dict] = []
        self.tokens_total = dict.fromkeys(self.languages, 0)
        self.samples_total = dict.fromkeys(self.languages, 0)
        self.steps = 0
        self._since_flush = 0
        self._label: int | None = None
        self._position: int | None = None
        self._stage = None
        self._weights: dict[str, float] | None = None
        self._loader: dict | None = None
        self.heldout_due = False

    # ---- every step: device-side only --------------------------------------------------
    def update(self, loss: torch.Tensor, lang, tokens=None, *, mask: torch.Tensor | None = None) -> None:
        """Add a batch: `loss` per token [batch, seq] or per sample [batch] (the sample's mean).

        `lang` holds the batch's language ids [batch]; `tokens` the tokens per sample (an
        int or [batch]; default: `mask` sum, else seq). A per-token loss is summed over
        `mask` (nonzero = counted). No host synchronization; returns nothing.
        """
        acc = self._accumulator(loss.device)
        sums, count = self._sample_sums(loss, tokens, mask, acc)
        ids = lang if isinstance(lang, torch.Tensor) else torch.as_tensor(lang)
        ids = ids.to(acc.device, non_blocking=True).long()
        if ids.shape != sums.shape:
            raise ConfigError(f"LanguageLossTracker.update: lang has shape {tuple(ids.shape)} but the loss has "
                              f"{sums.shape[0]} samples; pass the batch's 'lang' field")
        k = len(self.languages)
        ids = torch.where((ids >= 0) & (ids < k), ids, k)
        acc.index_add_(1, ids, torch.stack([sums, count, torch.ones_like(count)]))

    def _sample_sums(self, loss, tokens, mask, acc):
        loss = loss.detach().to(acc.device, acc.dtype, non_blocking=True)
        if loss.dim() not in (1, 2):
            raise ConfigError(f"LanguageLossTracker: loss has shape {tuple(loss.shape)}; expected per-token "
                              f"[batch, seq] or per-sample [batch] (use reduction='none')")
        if mask is not None:
            mask = mask.to(acc.device, non_blocking=True) != 0
            if mask.dim() != 2 or mask.shape[0] != loss.shape[0] or (loss.dim() == 2 and mask.shape != loss.shape):
                raise ConfigError(f"LanguageLossTracker: mask shape {tuple(mask.shape)} does not fit loss shape "
                                  f"{tuple(loss.shape)}; expected [batch, seq]")
        if isinstance(tokens, int):
            count = torch.full(loss.shape[:1], tokens, dtype=acc.dtype, device=acc.device)
        elif tokens is not None:
            count = torch.as_tensor(tokens).to(acc.device, acc.dtype, non_blocking=True)
            count = count.expand(loss.shape[0]) if count.dim() == 0 else count
            if count.shape != loss.shape[:1]:
                raise ConfigError(f"LanguageLossTracker: tokens has shape {tuple(count.shape)}; expected an int "
                                  f"or [{loss.shape[0]}]")
        elif mask is not None:
            count = mask.sum(1, dtype=acc.dtype)
        elif loss.dim() == 2:
            count = torch.full(loss.shape[:1], loss.shape[1], dtype=acc.dtype, device=acc.device)
        elif self.seq_len is not None:
            count = torch.full(loss.shape[:1], self.seq_len, dtype=acc.dtype, device=acc.device)
        else:
            raise ConfigError("LanguageLossTracker: a per-sample loss needs tokens=, mask= or "
                              "LanguageLossTracker(seq_len=...) to know how many tokens each mean covers")
        if loss.dim() == 2:
            sums = (torch.where(mask, loss, 0.0) if mask is not None else loss).sum(1)
        else:
            sums = loss * count
        return sums, count

    @property
    def accumulator(self) -> torch.Tensor | None:
        """The on-device sums of the interval (loss, tokens, samples per language; detached, never
        synchronized before a flush), None before the first update."""
        return self._acc

    def _accumulator(self, device) -> torch.Tensor:
        if self._acc is None:
            device = self._device or (torch.device(device) if device is not None else self._collective_device())
            dtype = torch.float32 if device.type == "mps" else torch.float64
            self._acc = torch.zeros(3, len(self.languages) + 1, dtype=dtype, device=device)
            if self._restored is not None:
                self._acc += self._restored.to(device, dtype)
                self._restored = None
        return self._acc

    def _collective_device(self) -> torch.device:
        dist = _dist()
        if dist is not None and dist.get_backend(self.process_group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    # ---- step and flush ----------------------------------------------------------------
    @property
    def flushes_on_next_step(self) -> bool:
        """Whether the next `step()` call will flush (synchronize and emit)."""
        return self._since_flush + 1 >= self.flush_every

    @property
    def pending_steps(self) -> int:
        """Steps counted since the last flush (flush() them before the run ends)."""
        return self._since_flush

    def step(self, step: int, position: int | None, stage=None, weights: Mapping[str, float] | None = None,
             loader_metrics: Mapping | None = None) -> list[dict]:
        """Count one training step; every `flush_every` steps flush and return the records.

        `position` is the first global position not yet trained on; `stage` and `weights`
        ({NAME: ratio or integer weight}) stay in effect until given again.
        """
        self._remember(step, position, stage, weights, loader_metrics)
        self.steps += 1
        self._since_flush += 1
        self.heldout_due = self.heldout_every is not None and self.steps % self.heldout_every == 0
        return self.flush() if self._since_flush >= self.flush_every else []

    def _remember(self, step, position, stage, weights, loader_metrics) -> None:
        if step is not None:
            self._label = int(step)
        if position is not None:
            self._position = int(position)
        if stage is not None:
            self._stage = stage
        if weights is not None:
            self._weights = self._ratios(weights)
        if loader_metrics is not None:
            self._loader = dict(loader_metrics)

    def _ratios(self, weights: Mapping[str, float]) -> dict[str, float]:
        unknown = sorted(set(weights) - set(self.languages))
        if unknown:
            raise ConfigError(f"LanguageLossTracker: weights name {unknown}, which are not among the tracked "
                              f"languages {list(self.languages)}")
        total = math.fsum(float(v) for v in weights.values())
        if not math.isfinite(total) or total <= 0 or any(float(v) < 0 for v in weights.values()):
            raise ConfigError(f"LanguageLossTracker: weights {dict(weights)} must be >= 0 with a positive sum")
        return {name: float(weights.get(name, 0)) / total for name in self.languages}

    def flush(self, step: int | None = None, position: int | None = None, stage=None, weights=None,
              loader_metrics=None) -> list[dict]:
        """Reduce across ranks (a collective: call on every rank), emit and return the records."""
        self._remember(step, position, stage, weights, loader_metrics)
        sums, position = self._reduce(self._accumulator(None), self._position)
        self._since_flush = 0
        k = len(self.languages)
        if sums[_SAMPLES, k] > 0:
            raise ConfigError(f"LanguageLossTracker: {int(sums[_SAMPLES, k])} samples in the steps up to "
                              f"{self._label} had a language id outside 0..{k - 1}; 'lang' must index "
                              f"{list(self.languages)} (dataset.languages)")
        records = []
        for i, name in enumerate(self.languages):
            tokens, samples = int(sums[_TOKENS, i]), int(sums[_SAMPLES, i])
            self.tokens_total[name] += tokens
            self.samples_total[name] += samples
            records.append({"version": LOSS_LOG_VERSION, "kind": "language", "step": self._label,
                            "position": position, "lang": name,
                            "loss_mean": float(sums[_LOSS, i]) / tokens if tokens else None,
                            "tokens_interval": tokens, "tokens_total": self.tokens_total[name],
                            "samples_interval": samples, "stage": self._stage,
                            "weight": self._weights[name] if self._weights else None})
        if self._loader is not None:
            metrics = {k: v.item() if hasattr(v, "item") else v for k, v in self._loader.items()}
            records.append({**dict.fromkeys(LOADER_METRICS), **metrics,
                            "version": LOSS_LOG_VERSION, "kind": "loader", "step": self._label,
                            "position": position})
            self._loader = None
        self._emit(records)
        return records

    def _reduce(self, vector: torch.Tensor, position: int | None):
        """All-reduce the accumulator (zeroing it) plus per-rank position slots; host copies."""
        dist = _dist()
        world = dist.get_world_size(self.process_group) if dist else 1
        rank = dist.get_rank(self.process_group) if dist else 0
        slots = torch.zeros(world, dtype=vector.dtype)
        slots[rank] = -1 if position is None else position  # sum of slots keeps each rank's value
        flat = torch.cat([vector.reshape(-1), slots.to(vector.device)])
        if dist:
            dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=self.process_group)
        vector.zero_()
        host = flat.to("cpu", torch.float64)
        positions = [int(p) for p in host[vector.numel():] if p >= 0]
        return host[:vector.numel()].view(vector.shape), (max(positions) if positions else None)

    def _emit(self, records: list[dict]) -> None:
        self.history.extend(records)
        for sink in self.sinks:
            sink.write(records)

    # ---- held-out scoring --------------------------------------------------------------
    def score_heldout(self, model_fn, streams: Mapping[str, Iterable], max_samples: int, *,
                      batch_size: int = 8) -> dict[str, float | None]:
        """Mean loss per language on held-out streams, emitted as "heldout" records.

        `streams` maps NAME to an iterable of samples ({"tokens": [seq]} or tensors) or
        batches ([b, seq]); at most `max_samples` per language are scored, `batch_size` at a
        time, under no_grad. `model_fn(tokens [b, seq])` returns per-token or per-sample
        loss. Results are summed over ranks (a collective): give ranks disjoint parts.
        """
        unknown = sorted(set(streams) - set(self.languages))
        if unknown:
            raise ConfigError(f"score_heldout: streams for {unknown}, which are not tracked languages "
                              f"{list(self.languages)}")
        acc = None
        with torch.no_grad():
            for name in self.languages:
                for tokens in _batches(streams.get(name, ()), max_samples, batch_size):
                    loss = model_fn(tokens)
                    acc = acc if acc is not None else torch.zeros_like(self._accumulator(loss.device))
                    sums, count = self._sample_sums(loss, int(tokens.shape[1]), None, acc)
                    acc[:, self._index[name]] += torch.stack([sums.sum(), count.sum(), count.new_tensor(len(count))])
        sums, position = self._reduce(acc if acc is not None else torch.zeros_like(self._accumulator(None)),
                                      self._position)
        records, means = [], {}
        for i, name in enumerate(self.languages):
            tokens = int(sums[_TOKENS, i])
            means[name] = float(sums[_LOSS, i]) / tokens if tokens else None
            if name in streams:
                records.append({"version": LOSS_LOG_VERSION, "kind": "heldout", "step": self._label,
                                "position": position, "lang": name, "loss_mean": means[name],
                                "tokens": tokens, "samples": int(sums[_SAMPLES, i])})
        self._emit(records)
        return {name: means[name] for name in self.languages if name in streams}

    # ---- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Totals, step counters, stage/weights and this rank's not-yet-flushed sums.

        Restoring it continues the log exactly. The pending sums are per rank: they are
        restored only into the same rank of the same world size (save one state per rank,
        or checkpoint right after a flush, where they are zero).
        """
        dist = _dist()
        pending = self._acc if self._acc is not None else self._restored
        return {"version": STATE_VERSION, "languages": list(self.languages), "steps": self.steps,
                "since_flush": self._since_flush, "step": self._label, "position": self._position,
                "stage": self._stage, "weights": self._weights, "tokens_total": dict(self.tokens_total),
                "samples_total": dict(self.samples_total),
                "pending": {"rank": dist.get_rank(self.process_group) if dist else 0,
                            "world_size": dist.get_world_size(self.process_group) if dist else 1,
                            "sums": pending.to("cpu", torch.float64).tolist() if pending is not None else None}}

    def load_state_dict(self, state: Mapping) -> None:
        check_version(state.get("version"), STATE_VERSION, "LanguageLossTracker state")
        if list(state["languages"]) != list(self.languages):
            raise StateError(f"LanguageLossTracker state: saved for languages {list(state['languages'])}, "
                             f"this tracker has {list(self.languages)}; build it from the same dataset")
        self.steps, self._since_flush = int(state["steps"]), int(state["since_flush"])
        self._label, self._position, self._stage = state["step"], state["position"], state["stage"]
        self._weights = dict(state["weights"]) if state["weights"] else None
        self.tokens_total = {n: int(state["tokens_total"][n]) for n in self.languages}
        self.samples_total = {n: int(state["samples_total"][n]) for n in self.languages}
        pending, dist = state["pending"], _dist()
        here = (dist.get_rank(self.process_group), dist.get_world_size(self.process_group)) if dist else (0, 1)
        sums = torch.tensor(pending["sums"], dtype=torch.float64) if pending["sums"] is not None else None
        if sums is not None and (pending["rank"], pending["world_size"]) != here and bool(sums.any()):
            log.warning("LanguageLossTracker: dropping %d unflushed tokens saved by rank %d of %d (this is "
                        "rank %d of %d); the next flush covers only the steps after the resume",
                        int(sums[_TOKENS].sum()), pending["rank"], pending["world_size"], *here)
            sums = None
        self._restored = sums
        if self._acc is not None:
            self._acc.zero_()
            if sums is not None:
                self._acc += sums.to(self._acc.device, self._acc.dtype)
                self._restored = None

    def close(self) -> None:
        """Flush and close every sink (does not flush pending sums: call flush() first)."""
        for sink in self.sinks:
            sink.flush()
            sink.close()


def _batches(stream: Iterable, max_samples: int, batch_size: int):
    """Batches of at most `batch_size` token rows, `max_samples` rows in all."""
    rows, taken = [], 0
    for item in stream:
        if taken >= max_samples:
            break
        tokens = item["tokens"] if isinstance(item, Mapping) else item
        tokens = torch.as_tensor(tokens)
        tokens = tokens[None] if tokens.dim() == 1 else tokens
        tokens = tokens[: max_samples - taken]
        taken += tokens.shape[0]
        rows.extend(tokens)
        while len(rows) >= batch_size:
            yield torch.stack(rows[:batch_size])
            rows = rows[batch_size:]
    if rows:
        yield torch.stack(rows)
