"""The design a sweep trains: its file read as (languages, mixtures), and a run's ratio cells.

Why a module of its own: the sweep (sweep.py) writes rows with these cells, and the merge
of part tables (sweep_parts.py) checks rows against them; both read the design the same way.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence

import yaml

from climbstream.errors import ConfigError


def load_design(path: str) -> tuple[list[str], list[dict[str, float]]]:
    """(languages, mixtures) from a design file: YAML/JSON {runs: [{ratios: {NAME: r}}]} or CSV ratio_<lang>."""
    if not os.path.exists(path):
        raise ConfigError(f"design file {path} does not exist; write one with 'climbstream design'")
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ConfigError(f"{path}: no mixtures")
        langs = [c[len("ratio_"):] for c in rows[0] if c.startswith("ratio_")]
        if not langs:
            raise ConfigError(f"{path}: no ratio_<lang> columns")
        mixtures = []
        for i, row in enumerate(rows):
            try:
                mixtures.append({n: float(row[f"ratio_{n}"]) for n in langs})
            except (TypeError, ValueError):
                raise ConfigError(f"{path}: row {i + 2} has a ratio that is not a number") from None
        return sorted(langs), mixtures
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    raw = (data.get("runs") or data.get("mixtures")) if isinstance(data, Mapping) else data
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: expected a list 'runs' of {{ratios: {{NAME: ratio}}}} (from 'climbstream design')")
    mixtures = []
    for i, m in enumerate(raw):
        ratios = m.get("ratios", m) if isinstance(m, Mapping) else None
        if not isinstance(ratios, Mapping):
            raise ConfigError(f"{path}: mixtures[{i}] is not a mapping of language to ratio")
        mixtures.append({str(k): float(v) for k, v in ratios.items() if k != "run"})
    return sorted(mixtures[0]), mixtures


def ratio_cells(mixture: Mapping[str, float], langs: Sequence[str]) -> list[str]:
    """The ratio_<lang> cells of a run's rows, as the table writes them (normalised, 6 digits)."""
    total = sum(mixture.values())
    return [f"{mixture[n] / total:.6f}" for n in langs]
