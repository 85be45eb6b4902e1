"""Where the loss tracker's records go: JSONL, CSV, TensorBoard, Weights & Biases, or a callback.

A sink has `write(records)`, `flush()` and `close()`. The tracker calls `write` on every
rank with the same, already all-reduced records; the file sinks write only on global
rank 0 (climbstream/ranks.py: torch.distributed's rank when initialized, else the RANK variable), and open
their file lazily, so other ranks never create one. JSONL and CSV files are appended to,
so a resumed run continues the same log (see climbstream.formats.loss_log for how a reader
treats re-logged steps). Record fields are documented in formats/loss_log.py.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from climbstream.errors import ClimbstreamError
from climbstream.formats.loss_log import CSV_COLUMNS
from climbstream.ranks import global_rank

log = logging.getLogger(__name__)


class SinkError(ClimbstreamError):
    """A sink that cannot be created or written (names the path and what to do)."""


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN/inf; readers treat null as "no value"
    return value


class _FileSink:
    """Shared lazy-open, rank-0-only file handling."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._handle = None
        self._active: bool | None = None

    def _open(self):
        if self._active is None:
            self._active = global_rank() == 0
            if self._active:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._handle = self._open_file()
                except OSError as err:
                    raise SinkError(f"{type(self).__name__}: cannot open {self.path} for appending "
                                    f"({err.strerror}); choose a writable path") from None
        return self._handle if self._active else None

    def _open_file(self):
        return self.path.open("a")

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class JsonlSink(_FileSink):
    """One JSON object per record per line (the loss log of the interfaces)."""

    def write(self, records: Sequence[dict]) -> None:
        handle = self._open()
        if handle is None:
            return
        for record in records:
            handle.write(json.dumps({k: _json_safe(v) for k, v in record.items()}) + "\n")
        handle.flush()


class CsvSink(_FileSink):
    """The same records as CSV with the fixed columns `loss_log.CSV_COLUMNS`.

    Fields outside those columns (extra loader metrics) are left out; use JsonlSink to
    keep them. Appending to a CSV with other columns is an error naming the file.
    """

    def _open_file(self):
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            with self.path.open(newline="") as existing:
                header = next(csv.reader(existing), [])
            if tuple(header) != CSV_COLUMNS:
                raise SinkError(f"CsvSink: {self.path} has columns {header}, not this climbstream's "
                                f"{list(CSV_COLUMNS)}; write to a new file")
        handle = self.path.open("a", newline="")
        self._writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        if fresh:
            self._writer.writeheader()
        return handle

    def write(self, records: Sequence[dict]) -> None:
        handle = self._open()
        if handle is None:
            return
        for record in records:
            self._writer.writerow({k: "" if v is None else _json_safe(v) for k, v in record.items()})
        handle.flush()


class TensorBoardSink:
    """Scalars under loss/NAME, tokens/NAME, weight/NAME, heldout/NAME and loader/METRIC,
    at the record's step. Needs the tensorboard package (the `tb` extra)."""

    def __init__(self, logdir: str | os.PathLike):
        from climbstream.extras import require

        SummaryWriter = require("torch.utils.tensorboard", f"TensorBoardSink({str(logdir)!r})").SummaryWriter
        self.logdir = Path(logdir)
        self._writer_class = SummaryWriter
        self._writer = None
        self._active: bool | None = None

    def write(self, records: Sequence[dict]) -> None:
        if self._active is None:
            self._active = global_rank() == 0
            if self._active:
                self._writer = self._writer_class(log_dir=str(self.logdir))
        if not self._active:
            return
        for r in records:
            scalars = self._scalars(r)
            for tag, value in scalars.items():
                if value is not None and math.isfinite(float(value)):
                    self._writer.add_scalar(tag, float(value), global_step=r["step"])

    @staticmethod
    def _scalars(r: dict) -> dict:
        if r["kind"] == "language":
            name = r["lang"]
            return {f"loss/{name}": r["loss_mean"], f"tokens/{name}": r["tokens_total"],
                    f"weight/{name}": r.get("weight")}
        if r["kind"] == "heldout":
            return {f"heldout/{r['lang']}": r["loss_mean"]}
        return {f"loader/{k}": v for k, v in r.items()
                if k not in ("kind", "version", "step", "position") and isinstance(v, (int, float))}

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbSink:
    """The TensorBoard scalars (loss/NAME, tokens/NAME, weight/NAME, heldout/NAME,
    loader/METRIC) logged to Weights & Biases, one `run.log(..., step=step)` per step.

    `run`: a run from `wandb.init(...)` (or anything with `log(dict, step=)`); without one,
    the sink uses `wandb.run` if the process has started one, else calls
    `wandb.init(**init_kwargs)` on global rank 0 at the first write (other ranks log
    nothing, as with the file sinks). Needs the wandb package (the `wandb` extra).
    """

    def __init__(self, run=None, **init_kwargs):
        self._run, self._init_kwargs = run, init_kwargs
        self._owns_run = False
        self._active: bool | None = None
        if run is None:
            from climbstream.extras import require

            self._wandb = require("wandb", "WandbSink")

    def write(self, records: Sequence[dict]) -> None:
        if self._active is None:
            self._active = global_rank() == 0
            if self._active and self._run is None:
                self._run = self._wandb.run
                if self._run is None:
                    self._run, self._owns_run = self._wandb.init(**self._init_kwargs), True
        if not self._active:
            return
        by_step: dict[int, dict] = {}
        for r in records:
            for tag, value in TensorBoardSink._scalars(r).items():
                if value is not None and math.isfinite(float(value)):
                    by_step.setdefault(int(r["step"]), {})[tag] = float(value)
        for step in sorted(by_step):
            self._run.log(by_step[step], step=step)

    def flush(self) -> None:
        pass  # wandb sends in the background

    def close(self) -> None:
        if self._owns_run and self._run is not None:
            self._run.finish()
        self._run = None if self._owns_run else self._run


class CallbackSink:
    """Calls `fn(records)` at every flush; on every rank unless `rank_zero_only`.

    Every rank sees the same language records, so a callback that decides something (a
    new stage) decides it identically everywhere.
    """

    def __init__(self, fn: Callable[[list[dict]], object], *, rank_zero_only: bool = False):
        if not callable(fn):
            raise SinkError(f"CallbackSink: {fn!r} is not callable; pass a function taking a list of records")
        self.fn = fn
        self.rank_zero_only = rank_zero_only

    def write(self, records: Sequence[dict]) -> None:
        if self.rank_zero_only and global_rank() != 0:
            return
        self.fn([dict(r) for r in records])

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
