"""The loss log format, and reading a log back as arrays for the re-weighter and `report`.

A loss log is JSONL (or the CSV that `CsvSink` writes), one record per line, each
carrying `version` (LOSS_LOG_VERSION) and `kind`:

- "language": `{step, position, lang: NAME, loss_mean, tokens_interval, tokens_total,
  samples_interval, stage, weight}`, one per language per flush. `loss_mean` is the
  token-weighted mean over the interval, across all ranks; null when the language had no
  tokens in the interval.
- "loader": `{step, position, wait_s, cache_hit_rate, bytes_downloaded, ...}`, one per
  flush when the loop passed loader metrics (rank 0's reader, as reported).
- "heldout": `{step, position, lang, loss_mean, tokens, samples}` from held-out scoring.

A line without `kind` is classified by its fields (the interfaces make `kind` optional).
A resumed run appends to the same file: when a line's step is lower than a step already
read, the earlier lines at or after that step are superseded, and a repeated
(kind, lang, step) keeps its last line, so the history read back is the one the resumed
run would have written uninterrupted. Reading needs no torch.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from climbstream.errors import ClimbstreamError, check_version
from climbstream.storage.metrics import LOADER_METRICS

log = logging.getLogger(__name__)

LOSS_LOG_VERSION = 1
LANGUAGE_FIELDS = ("step", "position", "lang", "loss_mean", "tokens_interval", "tokens_total",
                   "samples_interval", "stage", "weight")
LOADER_FIELDS = ("step", "position", *LOADER_METRICS)
HELDOUT_FIELDS = ("step", "position", "lang", "loss_mean", "tokens", "samples")
KINDS = {"language": LANGUAGE_FIELDS, "loader": LOADER_FIELDS, "heldout": HELDOUT_FIELDS}
# Every column CsvSink writes, in order; absent fields are empty cells.
CSV_COLUMNS = ("version", "kind", "step", "position", "lang", "loss_mean", "tokens_interval",
               "tokens_total", "samples_interval", "stage", "weight", "tokens", "samples", *LOADER_METRICS)
_INT_FIELDS = {"version", "step", "position", "tokens_interval", "tokens_total",
               "samples_interval", "tokens", "samples", "bytes_downloaded"}
_REQUIRED = {"language": ("step", "lang", "loss_mean", "tokens_interval", "tokens_total"),
             "loader": ("step",), "heldout": ("step", "lang", "loss_mean")}
LOG_FILE_NAMES = ("losses.jsonl", "losses.csv")


class LossLogError(ClimbstreamError, ValueError):
    """A loss log that cannot be read (names the file, the line and the field)."""


def classify(record: Mapping, where: str) -> str:
    """The record's kind: its `kind` field, else inferred from its fields."""
    kind = record.get("kind")
    if kind is None:
        if "lang" in record and "tokens_interval" in record:
            return "language"
        if "lang" in record and "loss_mean" in record:
            return "heldout"
        if any(k in record for k in LOADER_METRICS):
            return "loader"
        raise LossLogError(f"{where}: a line with no 'kind' and neither language nor loader fields; "
                           f"is this a climbstream loss log?")
    if kind not in KINDS:
        raise LossLogError(f"{where}: unknown kind {kind!r} (expected one of {sorted(KINDS)})")
    return kind


def _check(record: dict, where: str) -> dict:
    if "version" in record:
        check_version(record["version"], LOSS_LOG_VERSION, f"loss log {where}")
    kind = classify(record, where)
    for field in _REQUIRED[kind]:
        if field not in record:
            raise LossLogError(f"{where}: {kind} line has no field {field!r}; the line is truncated or "
                               f"was not written by climbstream")
    if not isinstance(record["step"], int):
        raise LossLogError(f"{where}: field 'step' is {record['step']!r}, expected an integer")
    return {**record, "kind": kind, "version": LOSS_LOG_VERSION}


def _csv_value(field: str, text: str):
    if text == "":
        return None
    if field in _INT_FIELDS:
        return int(text)
    if field in ("kind", "lang"):
        return text
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if field == "stage" and value.is_integer() else value


def _read_lines(path: Path) -> Iterable[tuple[str, dict]]:
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            for lineno, row in enumerate(csv.DictReader(handle), start=2):
                where = f"{path}:{lineno}"
                try:
                    yield where, {k: _csv_value(k, v or "") for k, v in row.items() if k is not None}
                except ValueError as err:
                    raise LossLogError(f"{where}: {err}") from None
        return
    with path.open() as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise LossLogError(f"{where}: not valid JSON ({err.msg}); a crash may have cut the "
                                   f"last line: delete it and read again") from None
            if not isinstance(record, dict):
                raise LossLogError(f"{where}: expected a JSON object per line")
            yield where, record


def supersede(records: Iterable[dict]) -> list[dict]:
    """Apply the resume rule: a lower step drops later-or-equal lines; a repeat keeps the last."""
    kept: list[dict] = []
    top = None
    for record in records:
        step = record["step"]
        if top is not None and step < top:
            kept = [r for r in kept if r["step"] < step]
            top = step
        else:
            top = step if top is None else max(top, step)
        kept.append(record)
    last = {}
    for i, r in enumerate(kept):
        last[(r["kind"], r.get("lang"), r["step"])] = i
    return [r for i, r in enumerate(kept) if last[(r["kind"], r.get("lang"), r["step"])] == i]


def find_log(path: str | Path) -> Path:
    """The log file for a path: the file itself, or losses.jsonl/losses.csv (or the only
    *.jsonl) inside a directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise LossLogError(f"{path}: no such file or directory; give a loss log (.jsonl/.csv) or "
                           f"the directory it was written to")
    for name in LOG_FILE_NAMES:
        if (path / name).is_file():
            return path / name
    found = sorted(path.glob("*.jsonl"))
    if len(found) == 1:
        return found[0]
    what = "no *.jsonl file" if not found else f"several *.jsonl files ({', '.join(p.name for p in found)})"
    raise LossLogError(f"{path}: {what} and no {' or '.join(LOG_FILE_NAMES)}; pass the log file itself")


@dataclass
class LossLog:
    """A loss log read back: its records in order, and dense per-language arrays.

    Arrays are indexed [flush, language] with languages sorted by name; a language absent
    from a flush, or with no tokens in it, has NaN loss.
    """

    records: list[dict]
    source: str = "<memory>"

    @classmethod
    def read(cls, path: str | Path) -> LossLog:
        """Read a JSONL or CSV loss log (or the one in a directory); errors name file:line."""
        file = find_log(path)
        records = [_check(record, where) for where, record in _read_lines(file)]
        log.debug("read %d loss-log records from %s", len(records), file)
        return cls(supersede(records), source=str(file))

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> LossLog:
        """From in-memory records, e.g. `LanguageLossTracker.history`."""
        checked = [_check(dict(r), f"record {i}") for i, r in enumerate(records)]
        return cls(supersede(checked))

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.records if r["kind"] == kind]

    @property
    def languages(self) -> list[str]:
        return sorted({r["lang"] for r in self.records if r["kind"] in ("language", "heldout")})

    def arrays(self) -> dict[str, np.ndarray]:
        """`{languages, step, position, stage, loss_mean, tokens_interval, tokens_total, weight}`.

        `step`, `position` (-1 where unknown) and `stage` (object) are [flushes];
        the others are [flushes, languages].
        """
        rows = self.of_kind("language")
        langs = self.languages
        column = {name: j for j, name in enumerate(langs)}
        steps = sorted({r["step"] for r in rows})
        row_of = {s: i for i, s in enumerate(steps)}
        n, k = len(steps), len(langs)
        out = {
            "languages": np.array(langs, dtype=object),
            "step": np.array(steps, dtype=np.int64),
            "position": np.full(n, -1, dtype=np.int64),
            "stage": np.full(n, None, dtype=object),
            "loss_mean": np.full((n, k), np.nan),
            "tokens_interval": np.zeros((n, k), dtype=np.int64),
            "tokens_total": np.zeros((n, k), dtype=np.int64),
            "weight": np.full((n, k), np.nan),
        }
        for r in rows:
            i, j = row_of[r["step"]], column[r["lang"]]
            if r.get("position") is not None:
                out["position"][i] = r["position"]
            out["stage"][i] = r.get("stage")
            out["loss_mean"][i, j] = _number(r.get("loss_mean"))
            out["tokens_interval"][i, j] = r["tokens_interval"]
            out["tokens_total"][i, j] = r["tokens_total"]
            out["weight"][i, j] = _number(r.get("weight"))
        if n > 1:  # a language first seen late has zero tokens before, not "unknown"
            out["tokens_total"] = np.maximum.accumulate(out["tokens_total"], axis=0)
        return out

    def curve(self, lang: str) -> tuple[np.ndarray, np.ndarray]:
        """(tokens_total, loss_mean) of one language over its flushes with tokens, for fitting."""
        if lang not in self.languages:
            raise LossLogError(f"{self.source}: language {lang!r} is not in the loss log "
                               f"(it has {', '.join(self.languages) or 'none'})")
        rows = [r for r in self.of_kind("language") if r["lang"] == lang and r["tokens_interval"] > 0
                and _number(r.get("loss_mean")) == _number(r.get("loss_mean"))]
        rows.sort(key=lambda r: r["step"])
        return (np.array([r["tokens_total"] for r in rows], dtype=np.int64),
                np.array([float(r["loss_mean"]) for r in rows]))


def _number(value) -> float:
    if value is None:
        return math.nan
    return float(value)
