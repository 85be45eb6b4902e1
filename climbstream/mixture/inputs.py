"""What every allocator is given: available tokens per language, the budget, caps and floors.

The feasible set is the same for every method: ratios r on the simplex with
floor_i <= r_i <= cap_i, where cap_i = min(1, (e_max * S_i - consumed_i) / D) counts the
tokens already consumed (mid-run) and floor_i = min(floor, cap_i). Defaults follow
docs/climb.md: e_max = 8 epochs, floor = 0.1 / K (a tenth of a uniform share).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from climbstream.errors import ConfigError, SolverError

DEFAULT_E_MAX = 8.0
DEFAULT_FLOOR_OF_UNIFORM = 0.1
FEASIBILITY_TOLERANCE = 1e-9


def check_counts(counts: Mapping[str, object], where: str = "counts") -> dict[str, int]:
    """Validate {NAME: tokens}: non-empty, names are strings, tokens finite and >= 0."""
    if not isinstance(counts, Mapping) or not counts:
        raise SolverError(f"{where}: expected a non-empty mapping of language name to available tokens")
    out = {}
    for name, value in counts.items():
        if not isinstance(name, str) or not name:
            raise SolverError(f"{where}: language names must be non-empty strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise SolverError(f"{where}.{name}: token count {value!r} is not a number")
        if not math.isfinite(float(value)) or value < 0:
            raise SolverError(f"{where}.{name}: token count {value!r} must be a finite number >= 0")
        out[name] = int(value)
    if sum(out.values()) <= 0:
        raise SolverError(f"{where}: every language has 0 tokens; nothing to allocate")
    return out


def read_counts(path: str | Path) -> dict[str, int]:
    """Available tokens per language from a climbstream-manifest.json or a {NAME: tokens} YAML."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such counts file; pass a climbstream-manifest.json or a {{NAME: tokens}} YAML")
    text = path.read_text()
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if isinstance(data, Mapping) and "languages" in data and isinstance(data["languages"], Mapping):
        counts = {}
        for name, entry in data["languages"].items():
            if not isinstance(entry, Mapping) or "tokens" not in entry:
                raise ConfigError(f"{path}: languages.{name}.tokens is missing; rewrite the manifest with 'climbstream manifest'")
            counts[name] = entry["tokens"]
        return check_counts(counts, str(path))
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a manifest or a mapping {{NAME: tokens}}")
    return check_counts(data, str(path))


@dataclass(frozen=True)
class Feasible:
    """The shared feasible set, in `names` order (arrays of length K)."""

    names: tuple[str, ...]
    counts: np.ndarray
    consumed: np.ndarray
    budget_tokens: float
    e_max: float
    caps: np.ndarray
    floors: np.ndarray
    floor_setting: float | dict
    infeasible: str | None = None

    def at_cap(self, r: np.ndarray) -> np.ndarray:
        return (self.caps < 1.0) & (r >= self.caps - 1e-9)

    def at_floor(self, r: np.ndarray) -> np.ndarray:
        return (self.floors > 0) & (r <= self.floors + 1e-9)


def feasible_set(
    counts: Mapping[str, int],
    budget_tokens: float,
    *,
    e_max: float = DEFAULT_E_MAX,
    floor: float | Mapping[str, float] | None = None,
    consumed: Mapping[str, float] | None = None,
    names: Sequence[str] | None = None,
    allow_infeasible: bool = False,
) -> Feasible:
    """Caps and floors for a budget; SolverError when the caps cannot fill it.

    With allow_infeasible the problem is returned with `infeasible` set to the reason.
    """
    counts = check_counts(counts)
    names = tuple(sorted(counts)) if names is None else tuple(names)
    if not isinstance(budget_tokens, (int, float, np.integer, np.floating)) or not budget_tokens > 0 \
            or not math.isfinite(budget_tokens):
        raise SolverError(f"budget_tokens must be a finite number > 0, got {budget_tokens!r}")
    if not e_max > 0:
        raise SolverError(f"e_max (max epochs per language) must be > 0, got {e_max!r}; use a large value for no cap")
    k = len(names)
    S = np.array([counts[n] for n in names], dtype=np.float64)
    used = np.zeros(k)
    if consumed:
        unknown = sorted(set(consumed) - set(names))
        if unknown:
            raise SolverError(f"consumed: languages {unknown} are not in the counts ({list(names)})")
        for i, n in enumerate(names):
            used[i] = float(consumed.get(n, 0.0))
            if used[i] < 0:
                raise SolverError(f"consumed.{n}: {used[i]} tokens consumed is negative")
    D = float(budget_tokens)
    caps = np.clip((e_max * S - used) / D, 0.0, 1.0)
    if floor is None:
        floor_setting: float | dict = DEFAULT_FLOOR_OF_UNIFORM / k
        raw_floor = np.full(k, floor_setting)
    elif isinstance(floor, Mapping):
        unknown = sorted(set(floor) - set(names))
        if unknown:
            raise SolverError(f"floor: languages {unknown} are not in the counts ({list(names)})")
        floor_setting = {n: float(floor.get(n, 0.0)) for n in names}
        raw_floor = np.array([floor_setting[n] for n in names])
    else:
        floor_setting = float(floor)
        raw_floor = np.full(k, floor_setting)
    if np.any(raw_floor < 0) or np.any(raw_floor > 1):
        raise SolverError(f"floor must be a share in [0, 1], got {floor_setting!r}")
    floors = np.minimum(raw_floor, caps)
    if floors.sum() > 1 + FEASIBILITY_TOLERANCE:
        raise SolverError(
            f"floors sum to {floors.sum():.4f} > 1 over {k} languages; lower --floor to at most {1 / k:.4g}"
        )
    reason = None
    if caps.sum() < 1 - FEASIBILITY_TOLERANCE:
        need = (D + used.sum()) / max(S.sum(), 1.0)
        reason = (
            f"the epoch caps cannot fill the budget: e_max={e_max:g} epochs of {S.sum():.6g} available tokens "
            f"(minus {used.sum():.6g} consumed) is {np.maximum(e_max * S - used, 0).sum():.6g} < budget {D:.6g}; "
            f"raise --max-epochs to at least {need:.3g}, lower the budget, or add data"
        )
        if not allow_infeasible:
            raise SolverError(reason)
    return Feasible(names, S, used, D, float(e_max), caps, floors, floor_setting, reason)
