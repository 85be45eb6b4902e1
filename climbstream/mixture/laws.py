"""Loss laws: what a language's loss will be for a given mixture and token budget.

`ClimbLaw` is the interaction-aware law of docs/climb.md:

    L_i = E_i + A_i / N^alpha_i + B_i / x_i^beta_i,   x = W @ d

where d_j are the tokens of language j seen (offline: d = D * r) and W holds the
cross-lingual transfer (W_ii = 1; `isolated` laws have W = I). An optional
repetition-aware term (Muennighoff et al. 2023) discounts tokens beyond one epoch:
d_j -> S_j + S_j R* (1 - exp(-(d_j / S_j - 1) / R*)) when d_j > S_j.

`MslLaw` is the multilingual scaling law baseline (He et al. 2024) at one token count:
L_f = C_f * p_f^(-gamma_f).

Both are plain data with a `predict`; both save to and load from versioned YAML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from climbstream.errors import SolverError, check_version

LAW_VERSION = 1
MIN_EFFECTIVE_TOKENS = 1e-9
MSL_MIN_RATIO = 1e-6  # the share the MSL fit clips log p at; laws without min_ratio use it


def _vec(values: Sequence[float] | np.ndarray, k: int, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.shape != (k,):
        raise SolverError(f"law field {name!r}: expected {k} values (one per language), got {out.shape[0]}")
    if not np.all(np.isfinite(out)):
        raise SolverError(f"law field {name!r}: values must be finite, got {out.tolist()}")
    return out


def repeated_tokens(tokens: np.ndarray, unique: np.ndarray | None, decay_epochs: float | None) -> np.ndarray:
    """Effective tokens after repetition: identity up to one epoch, then saturating.

    With R* = decay_epochs, tokens beyond the first epoch count less and less; the total
    effective amount never exceeds S (1 + R*). None disables the discount.
    """
    if unique is None or decay_epochs is None or not np.isfinite(decay_epochs):
        return tokens
    s = np.maximum(unique, 1.0)
    extra = np.maximum(tokens / s - 1.0, 0.0)
    return np.where(tokens <= s, tokens, s + s * decay_epochs * (1.0 - np.exp(-extra / decay_epochs)))


@dataclass
class ClimbLaw:
    """Per-language law with bounded cross-lingual transfer (see module docstring).

    `A`/`alpha` are None when fitted at one model size (the N term folds into E).
    `unique_tokens`/`repetition_decay_epochs` are set only by the online fit.
    `min_effective_tokens` (set by the isolated fit: the least each language had in its
    runs) is where predictions stop extrapolating: without transfers B x^-beta grows
    without bound as a share goes to 0 (a share of ~0 predicted 33 nats where the truth
    was 10.6), so a prediction there is the loss at that least amount. A Climb law keeps
    extrapolating: its transfers bound x (clamping it tripled its error on such mixtures).
    The solver's objective is the smooth law, unclamped.
    """

    languages: tuple[str, ...]
    E: np.ndarray
    B: np.ndarray
    beta: np.ndarray
    W: np.ndarray
    kind: str = "climb"
    A: np.ndarray | None = None
    alpha: np.ndarray | None = None
    params_ref: float | None = None
    unique_tokens: np.ndarray | None = None
    repetition_decay_epochs: float | None = None
    fit_info: dict = field(default_factory=dict)
    min_effective_tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.languages = tuple(self.languages)
        k = len(self.languages)
        if self.min_effective_tokens is not None:
            self.min_effective_tokens = np.maximum(_vec(self.min_effective_tokens, k, "min_effective_tokens"),
                                                   MIN_EFFECTIVE_TOKENS)
        if k == 0 or len(set(self.languages)) != k:
            raise SolverError(f"law: languages must be distinct and non-empty, got {list(self.languages)}")
        self.E, self.B, self.beta = _vec(self.E, k, "E"), _vec(self.B, k, "B"), _vec(self.beta, k, "beta")
        self.W = np.asarray(self.W, dtype=np.float64)
        if self.W.shape != (k, k) or not np.all(np.isfinite(self.W)):
            raise SolverError(f"law field 'W': expected a finite {k}x{k} matrix, got shape {self.W.shape}")
        if self.A is not None:
            self.A, self.alpha = _vec(self.A, k, "A"), _vec(self.alpha, k, "alpha")
        if self.unique_tokens is not None:
            self.unique_tokens = _vec(self.unique_tokens, k, "unique_tokens")
        bad = [n for n, b, e, bt in zip(self.languages, self.B, self.E, self.beta) if b <= 0 or e < 0 or bt <= 0]
        if bad:
            raise SolverError(
                f"law predicts nonsense for {bad}: it needs B > 0, E >= 0, beta > 0 "
                "(loss must fall with more data); refit with more or better runs"
            )
        if self.kind not in ("climb", "isolated"):
            raise SolverError(f"law kind {self.kind!r}: expected 'climb' or 'isolated'")

    @property
    def K(self) -> int:
        return len(self.languages)

    def irreducible(self, params: float | None = None) -> np.ndarray:
        """E_i plus the model-size term at `params` (or at the fitted size)."""
        if self.A is None:
            return self.E
        n = self.params_ref if params is None else params
        return self.E + self.A * float(n) ** (-self.alpha)

    def effective_tokens(self, tokens_seen: np.ndarray) -> np.ndarray:
        """x = W @ rep(d) for tokens seen per language, shape (..., K)."""
        d = repeated_tokens(np.asarray(tokens_seen, dtype=np.float64), self.unique_tokens, self.repetition_decay_epochs)
        return np.maximum(d @ self.W.T, MIN_EFFECTIVE_TOKENS)

    def loss_at_effective(self, x: np.ndarray, params: float | None = None) -> np.ndarray:
        """Per-language loss at effective tokens x, shape (..., K), x clamped at min_effective_tokens."""
        floor = MIN_EFFECTIVE_TOKENS if self.min_effective_tokens is None else self.min_effective_tokens
        return self.irreducible(params) + self.B * np.maximum(x, floor) ** (-self.beta)

    def predict(self, ratios: np.ndarray, tokens: float | np.ndarray, params: float | None = None) -> np.ndarray:
        """Per-language loss for mixtures `ratios` (K or n x K) trained on `tokens` tokens."""
        r = np.asarray(ratios, dtype=np.float64)
        d = np.asarray(tokens, dtype=np.float64)
        seen = r * (d[..., None] if d.ndim else d)
        return self.loss_at_effective(self.effective_tokens(seen), params)

    def without_interactions(self) -> bool:
        return bool(np.allclose(self.W, np.eye(self.K)))

    def to_dict(self) -> dict:
        out: dict = {
            "version": LAW_VERSION,
            "kind": self.kind,
            "form": "L_i = E_i + A_i/N^alpha_i + B_i/(W @ tokens)_i^beta_i",
            "languages": list(self.languages),
            "E": self.E.tolist(),
            "B": self.B.tolist(),
            "beta": self.beta.tolist(),
            "W": self.W.tolist(),
        }
        if self.A is not None:
            out.update(A=self.A.tolist(), alpha=self.alpha.tolist())
        if self.params_ref is not None:
            out["params_ref"] = float(self.params_ref)
        if self.unique_tokens is not None:
            out["unique_tokens"] = self.unique_tokens.tolist()
            out["repetition_decay_epochs"] = self.repetition_decay_epochs
        if self.min_effective_tokens is not None:
            out["min_effective_tokens"] = self.min_effective_tokens.tolist()
        out["fit_info"] = _plain(self.fit_info)
        return out


@dataclass
class MslLaw:
    """MSL baseline at one token count: L_f = C_f * p_f^(-gamma_f).

    C_f is the loss language f would reach with the whole budget (p_f = 1) at
    `tokens_ref` tokens; predictions at another token count are refused. Shares below
    `min_ratio` (the least share the fit saw) are predicted at min_ratio: the power law
    explodes toward a share of 0 (a 1e-9 clip made MSL err 0.2-0.4 nats on mixtures
    with near-zero shares, against about 0.06 with the clip at the fitted range).
    """

    languages: tuple[str, ...]
    C: np.ndarray
    gamma: np.ndarray
    tokens_ref: float
    params_ref: float | None = None
    fit_info: dict = field(default_factory=dict)
    kind: str = "msl"
    min_ratio: float = MSL_MIN_RATIO

    def __post_init__(self) -> None:
        self.languages = tuple(self.languages)
        k = len(self.languages)
        self.C, self.gamma = _vec(self.C, k, "C"), _vec(self.gamma, k, "gamma")
        if np.any(self.C <= 0):
            raise SolverError(f"MSL law: C must be > 0 for every language, got {self.C.tolist()}")

    @property
    def K(self) -> int:
        return len(self.languages)

    def can_predict_at(self, tokens: float) -> bool:
        return abs(float(tokens) / self.tokens_ref - 1.0) < 1e-6

    def predict(self, ratios: np.ndarray, tokens: float | None = None, params: float | None = None) -> np.ndarray:
        if tokens is not None and not self.can_predict_at(tokens):
            raise SolverError(
                f"MSL law was fitted at {self.tokens_ref:.6g} tokens and cannot predict at {float(tokens):.6g}; "
                "fit it on runs at that budget"
            )
        r = np.maximum(np.asarray(ratios, dtype=np.float64), self.min_ratio)
        return self.C * r ** (-self.gamma)

    def to_dict(self) -> dict:
        return {
            "version": LAW_VERSION,
            "kind": "msl",
            "form": "L_f = C_f * p_f^(-gamma_f)  (at tokens_ref)",
            "languages": list(self.languages),
            "C": self.C.tolist(),
            "gamma": self.gamma.tolist(),
            "tokens_ref": float(self.tokens_ref),
            "params_ref": None if self.params_ref is None else float(self.params_ref),
            "min_ratio": float(self.min_ratio),
            "fit_info": _plain(self.fit_info),
        }


Law = ClimbLaw | MslLaw


def _plain(value):
    """numpy scalars/arrays to plain Python for YAML/JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_law(law: Law, path: str | Path) -> None:
    """Write a law as YAML (with its version)."""
    Path(path).write_text(yaml.safe_dump(law.to_dict(), sort_keys=False, width=200))


def law_from_dict(data: Mapping, where: str) -> Law:
    """Build a law from its YAML form; errors name `where` and the missing key."""
    if not isinstance(data, Mapping):
        raise SolverError(f"{where}: a law file is a mapping with version, kind, languages, ...")
    check_version(data.get("version"), LAW_VERSION, where)
    kind = data.get("kind")
    try:
        if kind == "msl":
            return MslLaw(
                languages=tuple(data["languages"]), C=data["C"], gamma=data["gamma"],
                tokens_ref=float(data["tokens_ref"]), params_ref=data.get("params_ref"),
                fit_info=dict(data.get("fit_info") or {}), min_ratio=float(data.get("min_ratio", MSL_MIN_RATIO)),
            )
        if kind in ("climb", "isolated"):
            a = data.get("A")
            return ClimbLaw(
                languages=tuple(data["languages"]), E=data["E"], B=data["B"], beta=data["beta"],
                W=data["W"], kind=kind, A=a, alpha=data.get("alpha") if a is not None else None,
                params_ref=data.get("params_ref"), unique_tokens=data.get("unique_tokens"),
                repetition_decay_epochs=data.get("repetition_decay_epochs"),
                fit_info=dict(data.get("fit_info") or {}), min_effective_tokens=data.get("min_effective_tokens"),
            )
    except KeyError as err:
        raise SolverError(f"{where}: missing key {err.args[0]!r} for a {kind} law; refit with 'climbstream fit'") from None
    raise SolverError(f"{where}: unknown law kind {kind!r}; expected climb, isolated or msl")


def load_law(path: str | Path) -> Law:
    """Read a law written by `save_law` / `climbstream fit`."""
    path = Path(path)
    if not path.exists():
        raise SolverError(f"{path}: no such law file; create one with 'climbstream fit RUNS --out {path}'")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SolverError(f"{path}: not valid YAML ({err})") from None
    return law_from_dict(data, str(path))
