"""The allocation file: the ratios a solver chose, and everything needed to judge them.

Written by `climbstream solve` and the re-weighter, read by a dataset config's `weights:`.
Format (YAML or JSON, see interfaces.md):

    {version, method, params, budget_tokens, caps: {e_max, floor},
     languages: {NAME: {ratio, tokens, epochs, cap, binding, pred_loss}}, pred_mean_loss}

`cap` is the largest ratio the epoch cap allows, `binding` is true when the ratio sits on
its cap or floor, `epochs` counts tokens already consumed, `pred_loss` is the loss the
given law predicts (null without a law). `solve --recommend` adds `recommendation`: the
candidates with their predicted loss and 95% ensemble interval, the predicted difference
of each baseline to the recommended mixture and to climb, the rule and its verdict. Loading any other version is an error naming the
file and both versions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from climbstream.errors import SolverError, check_version
from climbstream.mixture.inputs import Feasible
from climbstream.mixture.laws import ClimbLaw, MslLaw, _plain

ALLOCATION_VERSION = 1


@dataclass
class LanguageAllocation:
    ratio: float
    tokens: float
    epochs: float
    cap: float
    binding: bool
    pred_loss: float | None = None


@dataclass
class Allocation:
    """One solved mixture; `languages` is keyed by name (sorted)."""

    method: str
    budget_tokens: float
    caps: dict
    languages: dict[str, LanguageAllocation]
    params: dict = field(default_factory=dict)
    pred_mean_loss: float | None = None
    version: int = ALLOCATION_VERSION
    recommendation: dict | None = None  # recommend.Recommendation.to_dict() when this mixture was recommended

    def ratios(self) -> dict[str, float]:
        """{name: ratio} (what a dataset config's weights need)."""
        return {n: a.ratio for n, a in self.languages.items()}

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "method": self.method,
            "params": _plain(self.params),
            "budget_tokens": float(self.budget_tokens),
            "caps": _plain(self.caps),
            "languages": {n: _plain(asdict(a)) for n, a in self.languages.items()},
            "pred_mean_loss": self.pred_mean_loss,
        } | ({} if self.recommendation is None else {"recommendation": _plain(self.recommendation)})

    def save(self, path: str | Path) -> None:
        """JSON for a .json path, YAML otherwise."""
        path = Path(path)
        data = self.to_dict()
        if path.suffix == ".json":
            path.write_text(json.dumps(data, indent=2))
        else:
            path.write_text(yaml.safe_dump(data, sort_keys=False, width=200))

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "allocation") -> "Allocation":
        if not isinstance(data, Mapping):
            raise SolverError(f"{where}: an allocation file is a mapping with version, method, languages, ...")
        check_version(data.get("version"), ALLOCATION_VERSION, where)
        try:
            langs = {
                str(n): LanguageAllocation(**{k: v[k] for k in ("ratio", "tokens", "epochs", "cap", "binding")},
                                           pred_loss=v.get("pred_loss"))
                for n, v in data["languages"].items()
            }
            return cls(
                method=data["method"], budget_tokens=float(data["budget_tokens"]), caps=dict(data["caps"]),
                languages=langs, params=dict(data.get("params") or {}),
                pred_mean_loss=data.get("pred_mean_loss"), version=data["version"],
                recommendation=data.get("recommendation"),
            )
        except (KeyError, TypeError) as err:
            raise SolverError(f"{where}: malformed allocation ({type(err).__name__}: {err}); rewrite it with 'climbstream solve'") from None

    @classmethod
    def load(cls, path: str | Path) -> "Allocation":
        path = Path(path)
        if not path.exists():
            raise SolverError(f"{path}: no such allocation file; write one with 'climbstream solve --out {path}'")
        try:
            data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise SolverError(f"{path}: cannot parse allocation ({err})") from None
        return cls.from_dict(data, str(path))


def predicted_losses(law, names, ratios: np.ndarray, box: Feasible) -> np.ndarray | None:
    """Per-language loss the law predicts at the end of the budget (None if it cannot)."""
    if law is None:
        return None
    order = [law.languages.index(n) for n in names]
    r = np.zeros(law.K)
    used = np.zeros(law.K)
    r[order], used[order] = ratios, box.consumed
    if isinstance(law, MslLaw):
        if not law.can_predict_at(box.budget_tokens) or used.any():
            return None
        return law.predict(r)[order]
    if isinstance(law, ClimbLaw):
        x = law.effective_tokens(used + r * box.budget_tokens)
        return law.loss_at_effective(x)[order]
    return None


def build_allocation(method: str, box: Feasible, ratios: np.ndarray, *, law=None, importance=None,
                     params: dict | None = None) -> Allocation:
    """Assemble the Allocation for feasible ratios (in box.names order)."""
    r = np.asarray(ratios, dtype=np.float64)
    pred = predicted_losses(law, box.names, r, box)
    w = np.ones(len(r)) if importance is None else np.asarray(importance, dtype=np.float64)
    binding = box.at_cap(r) | box.at_floor(r)
    langs = {}
    for i, n in sorted(enumerate(box.names), key=lambda t: t[1]):
        tokens = float(r[i] * box.budget_tokens)
        epochs = (tokens + box.consumed[i]) / box.counts[i] if box.counts[i] > 0 else 0.0
        langs[n] = LanguageAllocation(
            ratio=float(r[i]), tokens=tokens, epochs=float(epochs), cap=float(box.caps[i]),
            binding=bool(binding[i]), pred_loss=None if pred is None else float(pred[i]),
        )
    params = dict(params or {})
    if box.infeasible:
        params["infeasible"] = box.infeasible
    if box.consumed.any():
        params["consumed_tokens"] = {n: float(c) for n, c in zip(box.names, box.consumed)}
    return Allocation(
        method=method, budget_tokens=box.budget_tokens,
        caps={"e_max": box.e_max, "floor": box.floor_setting}, languages=langs, params=params,
        pred_mean_loss=None if pred is None else float(np.dot(w, pred) / w.sum()),
    )


def rescore(alloc: Allocation, law, box: Feasible, importance=None) -> Allocation:
    """The same allocation with pred_loss under another law (to compare methods under one law)."""
    r = np.array([alloc.languages[n].ratio for n in box.names])
    return build_allocation(alloc.method, box, r, law=law, importance=importance, params=alloc.params)
