"""The runs table: proxy runs (mixture, tokens, model size) and their per-language loss.

Written by `sweep`, read by `fit` and `validate`. The columns are exactly those of the
shared gettext-proxy-runs.csv: `run, tokens, params, ratio_<lang>..., loss_<lang>...`,
plus an optional `seed`. The JSON form is a list of those rows. Every malformed value is
reported with the file, the row and the column, so a broken sweep is fixed at its source.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from climbstream.errors import ConfigError

REQUIRED = ("run", "tokens", "params")
RATIO_SUM_TOLERANCE = 1e-3


class RunsTableError(ConfigError):
    """A runs table that cannot be read (names the file, row and column)."""


@dataclass(frozen=True)
class RunsTable:
    """Rows of proxy runs; arrays are indexed [row, language] in `languages` order.

    `languages` keeps the column order of the file; `run` holds run ids as strings.
    """

    languages: tuple[str, ...]
    run: tuple[str, ...]
    tokens: np.ndarray
    params: np.ndarray
    ratios: np.ndarray
    losses: np.ndarray
    seed: tuple[str | None, ...] | None = None
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.run)

    def run_ids(self) -> list[str]:
        """Distinct run ids in first-seen order."""
        return list(dict.fromkeys(self.run))

    def select(self, rows: Sequence[int] | np.ndarray) -> "RunsTable":
        """A table of the given row indices (order kept)."""
        idx = np.asarray(rows, dtype=np.int64)
        return RunsTable(
            languages=self.languages,
            run=tuple(self.run[i] for i in idx),
            tokens=self.tokens[idx],
            params=self.params[idx],
            ratios=self.ratios[idx],
            losses=self.losses[idx],
            seed=None if self.seed is None else tuple(self.seed[i] for i in idx),
            source=self.source,
        )

    def of_runs(self, run_ids: Iterable[str]) -> "RunsTable":
        """The rows belonging to the given runs."""
        wanted = set(run_ids)
        return self.select([i for i, r in enumerate(self.run) if r in wanted])

    def at_largest_tokens(self) -> "RunsTable":
        """For each run, only its rows at that run's largest token count (what fits use by default)."""
        best: dict[str, float] = {}
        for r, t in zip(self.run, self.tokens):
            best[r] = max(best.get(r, -math.inf), float(t))
        return self.select([i for i, (r, t) in enumerate(zip(self.run, self.tokens)) if t == best[r]])

    def to_rows(self) -> list[dict]:
        """Rows as dicts with the file's column names (the JSON form)."""
        rows = []
        for i in range(len(self)):
            row: dict = {"run": self.run[i], "tokens": float(self.tokens[i]), "params": float(self.params[i])}
            if self.seed is not None:
                row["seed"] = self.seed[i]
            for k, name in enumerate(self.languages):
                row[f"ratio_{name}"] = float(self.ratios[i, k])
            for k, name in enumerate(self.languages):
                row[f"loss_{name}"] = float(self.losses[i, k])
            rows.append(row)
        return rows

    def save(self, path: str | Path) -> None:
        """Write CSV (by default) or JSON (for a .json path)."""
        path = Path(path)
        rows = self.to_rows()
        if path.suffix == ".json":
            path.write_text(json.dumps(rows, indent=1))
            return
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else list(REQUIRED))
            writer.writeheader()
            writer.writerows(rows)


def _number(value: object, where: str, column: str) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RunsTableError(f"{where}, column {column!r}: {value!r} is not a number; fix or drop that row") from None
    if not math.isfinite(out):
        raise RunsTableError(f"{where}, column {column!r}: {value!r} is not finite; fix or drop that row")
    return out


def runs_from_rows(rows: Sequence[Mapping[str, object]], source: str = "<memory>") -> RunsTable:
    """Validate rows (dicts keyed by column name) into a RunsTable.

    Raises RunsTableError naming the source, the row (1-based data row) and the column for
    missing columns, non-numbers, negative ratios, ratios not summing to 1, or losses <= 0.
    """
    if not rows:
        raise RunsTableError(f"{source}: the runs table has no rows; run 'climbstream sweep' first")
    columns = list(rows[0].keys())
    for col in REQUIRED:
        if col not in columns:
            raise RunsTableError(f"{source}: missing column {col!r}; a runs table needs run, tokens, params, ratio_<lang>, loss_<lang>")
    langs = [c[len("ratio_"):] for c in columns if c.startswith("ratio_")]
    if not langs:
        raise RunsTableError(f"{source}: no ratio_<lang> columns; a runs table needs one ratio_ and one loss_ column per language")
    for name in langs:
        if f"loss_{name}" not in columns:
            raise RunsTableError(f"{source}: column 'ratio_{name}' has no matching 'loss_{name}' column")
    for c in columns:
        if c.startswith("loss_") and c[len("loss_"):] not in langs:
            raise RunsTableError(f"{source}: column {c!r} has no matching 'ratio_{c[len('loss_'):]}' column")
    n, k = len(rows), len(langs)
    ratios, losses = np.zeros((n, k)), np.zeros((n, k))
    tokens, params = np.zeros(n), np.zeros(n)
    run_ids, seeds = [], []
    has_seed = "seed" in columns
    for i, row in enumerate(rows):
        where = f"{source}: row {i + 1}"
        missing = [c for c in columns if c not in row or row[c] in (None, "")]
        missing = [c for c in missing if c != "seed"]
        if missing:
            raise RunsTableError(f"{where}: column {missing[0]!r} is empty or missing")
        run_ids.append(str(row["run"]))
        seeds.append(None if not has_seed or row.get("seed") in (None, "") else str(row["seed"]))
        tokens[i] = _number(row["tokens"], where, "tokens")
        params[i] = _number(row["params"], where, "params")
        if tokens[i] <= 0 or params[i] <= 0:
            col = "tokens" if tokens[i] <= 0 else "params"
            raise RunsTableError(f"{where}, column {col!r}: must be > 0, got {row[col]!r}")
        for j, name in enumerate(langs):
            ratios[i, j] = _number(row[f"ratio_{name}"], where, f"ratio_{name}")
            losses[i, j] = _number(row[f"loss_{name}"], where, f"loss_{name}")
            if ratios[i, j] < 0:
                raise RunsTableError(f"{where}, column 'ratio_{name}': ratio {ratios[i, j]} is negative")
            if losses[i, j] <= 0:
                raise RunsTableError(f"{where}, column 'loss_{name}': loss {losses[i, j]} must be > 0")
        total = ratios[i].sum()
        if abs(total - 1.0) > RATIO_SUM_TOLERANCE:
            raise RunsTableError(
                f"{where}: ratio_* columns sum to {total:.6f}, not 1 (tolerance {RATIO_SUM_TOLERANCE}); "
                "write token shares of the whole run"
            )
        ratios[i] /= total
    return RunsTable(
        languages=tuple(langs),
        run=tuple(run_ids),
        tokens=tokens,
        params=params,
        ratios=ratios,
        losses=losses,
        seed=tuple(seeds) if has_seed else None,
        source=source,
    )


def load_runs(path: str | Path) -> RunsTable:
    """Read a runs table from CSV or JSON (a list of rows); errors name the file, row and column."""
    path = Path(path)
    if not path.exists():
        raise RunsTableError(f"{path}: no such runs table; run 'climbstream sweep' or pass the right path")
    if path.suffix == ".json":
        try:
            rows = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise RunsTableError(f"{path}: not valid JSON ({err}); the JSON form is a list of rows") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise RunsTableError(f"{path}: the JSON form of a runs table is a list of row objects")
        return runs_from_rows(rows, str(path))
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        header = reader.fieldnames or []
    if rows and len(header) != len(set(header)):
        dup = next(c for c in header if header.count(c) > 1)
        raise RunsTableError(f"{path}: column {dup!r} appears twice")
    for i, row in enumerate(rows):
        if None in row:
            raise RunsTableError(f"{path}: row {i + 1} has more values than the header has columns")
    return runs_from_rows(rows, str(path))
