"""climbstream: multilingual pretraining data at the right language ratios.

Public names are imported lazily so that `import climbstream` stays cheap (no torch or
numba import until a part that needs them is used).
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "ClimbStream": "climbstream.stream.dataset",
    "Schedule": "climbstream.schedule.schedule",
    "Manifest": "climbstream.formats.manifest",
    "Allocation": "climbstream.mixture.allocation",
    "LanguageLossTracker": "climbstream.train.losses",
    "Reweighter": "climbstream.train.reweight",
    "ClimbstreamError": "climbstream.errors",
    "StorageOptions": "climbstream.storage.options",
    "ClimbDataLoader": "climbstream.stream.iteration.loader",
    "StreamConfig": "climbstream.stream.config.stream_config",
    "JsonlSink": "climbstream.train.sinks",
    "CsvSink": "climbstream.train.sinks",
    "TensorBoardSink": "climbstream.train.sinks",
    "WandbSink": "climbstream.train.sinks",
    "CallbackSink": "climbstream.train.sinks",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'climbstream' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
