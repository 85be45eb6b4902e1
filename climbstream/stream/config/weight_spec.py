"""The forms a user may give weights in, resolved to float ratios by language name.

A dataset config's `weights:` accepts (1) a mapping {NAME: number}, (2) the path of an
allocation file written by `climbstream solve` (YAML or JSON, `languages.NAME.ratio`),
or (3) a solver request {method: NAME, budget_tokens: D, ...params}, solved on the
manifest's token counts. Whatever the form, every language of the corpus must be named
and no other: a mismatch is an error naming the languages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import logging

import yaml

from climbstream.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_ratios(spec, counts: Mapping[str, int], where: str = "weights") -> dict[str, float]:
    """Float ratios {NAME: ratio} for exactly the languages in `counts`."""
    if isinstance(spec, (str, os.PathLike)):
        ratios = _ratios_from_allocation_file(os.fspath(spec), where)
    elif isinstance(spec, Mapping) and "method" in spec:
        ratios = _ratios_from_solver(dict(spec), counts, where)
    elif isinstance(spec, Mapping):
        ratios = {}
        for name, value in spec.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}.{name}: weight {value!r} is not a number")
            ratios[str(name)] = float(value)
    else:
        raise ConfigError(
            f"{where}: expected a mapping of language to weight, an allocation file path, or "
            f"{{method: ...}}; got {type(spec).__name__}"
        )
    check_languages(ratios, counts, where)
    return ratios


def check_languages(ratios: Mapping[str, float], counts: Mapping[str, int], where: str) -> None:
    """Raise ConfigError unless `ratios` names exactly the corpus languages."""
    unknown = sorted(set(ratios) - set(counts))
    missing = sorted(set(counts) - set(ratios))
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(unknown)} not in the corpus (languages: {', '.join(sorted(counts))})"
        )
    if missing:
        raise ConfigError(
            f"{where}: no weight for {', '.join(missing)}; give every language a weight (0 to leave it out)"
        )


def _ratios_from_allocation_file(path: str, where: str) -> dict[str, float]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{where}: allocation file {path} does not exist") from None
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ConfigError(f"{where}: {path} is not valid YAML/JSON: {err}") from None
    languages = data.get("languages") if isinstance(data, Mapping) else None
    if not isinstance(languages, Mapping):
        raise ConfigError(f"{where}: {path} has no 'languages' mapping; is it an allocation from 'climbstream solve'?")
    ratios = {}
    for name, entry in languages.items():
        if not isinstance(entry, Mapping) or "ratio" not in entry:
            raise ConfigError(f"{path}: languages.{name} has no 'ratio'")
        ratios[str(name)] = float(entry["ratio"])
    return ratios


def _ratios_from_solver(spec: dict, counts: Mapping[str, int], where: str) -> dict[str, float]:
    """Solve on the corpus counts: {method, budget_tokens?, e_max?, floor?, law?: FILE, ...params}."""
    from climbstream.mixture.laws import load_law  # solver code only when asked for
    from climbstream.mixture.solver import allocate

    from climbstream.mixture.solver import METHODS
    from climbstream.stream.config.checks import is_number

    method = spec.pop("method")
    if method not in METHODS:
        raise ConfigError(f"{where}.method: expected one of {', '.join(METHODS)}, got {method!r}")
    for name, value in spec.items():  # every parameter but these is a number (alpha, budget_tokens, e_max, ...)
        if name not in ("law", "importance", "allow_infeasible") and not (is_number(value) or value is None):
            raise ConfigError(f"{where}.{name}: expected a number, got {value!r}")
    budget = float(spec.pop("budget_tokens", sum(counts.values())))
    if not budget > 0:
        raise ConfigError(f"{where}.budget_tokens: expected a positive number of tokens, got {budget!r}")
    kwargs = {k: spec.pop(k) for k in ("e_max", "floor", "importance", "allow_infeasible") if k in spec}
    if "law" in spec:
        kwargs["law"] = load_law(spec.pop("law"))
    allocation = allocate(method, dict(counts), budget, params=spec or None, **kwargs)
    log.info("%s: %s solved to %s", where, method, allocation.ratios())
    return dict(allocation.ratios())
