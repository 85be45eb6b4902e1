"""The one exception hierarchy of climbstream.

Every error raised for bad input names what was wrong, where (file, key, shard, URL,
language) and what to do about it. Callers catch `ClimbstreamError` to handle all of them.
"""

from __future__ import annotations


class ClimbstreamError(Exception):
    """Root of every error climbstream raises on purpose."""


class ConfigError(ClimbstreamError, ValueError):
    """A configuration value or file is invalid (names the key or file)."""


class ManifestError(ClimbstreamError):
    """A manifest or a shard it lists is missing, malformed or changed."""


class StorageError(ClimbstreamError, OSError):
    """Bytes could not be fetched from storage (names the URL)."""


class ScheduleError(ClimbstreamError, ValueError):
    """Stages or weights that cannot be scheduled exactly."""


class StateError(ClimbstreamError):
    """A saved state cannot be loaded into this dataset (version, fingerprint, batch)."""


class CorpusRewriteError(StateError):
    """The corpus a state read was rewritten, not grown: shards changed, or removed from a language with weight."""


class SolverError(ClimbstreamError, ValueError):
    """An allocation or law fit that is infeasible or ill-posed."""


class EpochCapError(ClimbstreamError):
    """A language would be repeated beyond its epoch cap."""


def check_version(found: object, supported: int, what: str) -> None:
    """Raise a clear error when a persisted format has an unknown `version` field.

    `what` names the file or object so the message says where the mismatch is.
    """
    if found != supported:
        raise StateError(
            f"{what}: unsupported version {found!r} (this climbstream reads version "
            f"{supported}); rewrite it with this climbstream or install the version that wrote it"
        )
