"""A dataset state out of whatever the caller saved: ours, or torchdata's StatefulDataLoader's.

`StatefulDataLoader.state_dict()` nests the state of our iterator (one per worker) in its
own structure. It reloads only into a loader with the same `num_workers` (torchdata
restores each worker from its own snapshot). Reading the consumed position out of it
lets `ClimbStream.load_state_dict` take that state too, so a run can resume with any
number of workers (then build a fresh loader and do not load its state into the loader).

The consumed position of a multi-worker snapshot: every worker's saved state says where
the last batch it delivered ended, and torchdata snapshots only batches the loop has
received, in order; so the largest of them is the consumed position at the snapshot,
and each step taken since (`_steps_since_snapshot`) is one more global batch.
"""

from __future__ import annotations

from collections.abc import Mapping

from climbstream.errors import StateError

# torchdata.stateful_dataloader's keys (stateful_dataloader.py, incremental_state.py)
_SNAPSHOT = "_snapshot"
_WORKER_SNAPSHOTS = "_worker_snapshots"
_STEPS_SINCE_SNAPSHOT = "_steps_since_snapshot"
_NUM_YIELDED = "_num_yielded"
_DATASET_STATE = "dataset_state"
_FETCHER_STATE = "fetcher_state"
_DATASET_ITER_STATE = "dataset_iter_state"


def is_loader_state(state) -> bool:
    """True for a StatefulDataLoader state (single- or multi-process)."""
    return isinstance(state, Mapping) and (_SNAPSHOT in state or _NUM_YIELDED in state)


def stream_state_of(state: Mapping, where: str = "state") -> Mapping:
    """The dataset state in `state`: itself, or the one a StatefulDataLoader state holds."""
    if not is_loader_state(state):
        return state
    if _SNAPSHOT in state:
        return _from_workers(state, where)
    inner = _ours(state.get(_FETCHER_STATE) or {}, _DATASET_ITER_STATE) or state.get(_DATASET_STATE)
    if not isinstance(inner, Mapping):
        raise StateError(f"{where}: a StatefulDataLoader state without a ClimbStream state in it")
    return {k: v for k, v in inner.items() if k != "iterator"}


def _from_workers(state: Mapping, where: str) -> dict:
    snapshots = (state[_SNAPSHOT] or {}).get(_WORKER_SNAPSHOTS) or {}
    states = []
    for key, snapshot in sorted(snapshots.items()):
        inner = _ours(snapshot.get(_FETCHER_STATE) or {}, _DATASET_ITER_STATE) or snapshot.get(_DATASET_STATE)
        if not isinstance(inner, Mapping) or "position" not in inner:
            raise StateError(f"{where}: StatefulDataLoader worker snapshot {key} holds no ClimbStream state")
        states.append(inner)
    if not states:
        raise StateError(f"{where}: a StatefulDataLoader state with no worker snapshots")
    latest = max(states, key=lambda s: int(s["position"]))
    steps = int(state.get(_STEPS_SINCE_SNAPSHOT, 0))
    out = {k: v for k, v in latest.items() if k != "iterator"}
    out["position"] = int(latest["position"]) + steps * int(latest["global_batch"])
    return out


def _ours(mapping: Mapping, key: str):
    value = mapping.get(key)
    return value if isinstance(value, Mapping) and "position" in value else None
