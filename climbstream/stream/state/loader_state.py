"""A dataset state out of whatever the caller saved: ours, torchdata's StatefulDataLoader's, or torchtitan's.

`StatefulDataLoader.state_dict()` nests the state of our iterator (one per worker) in its
own structure. It reloads only into a loader with the same `num_workers` (torchdata
restores each worker from its own snapshot). Reading the consumed position out of it
lets `ClimbStream.load_state_dict` take that state too, so a run can resume with any
number of workers (then build a fresh loader and do not load its state into the loader).

The consumed position of a multi-worker snapshot is Consumption's rule
(consumption.py, `position_after_snapshot`): this module only reads the workers' saved
states and the steps taken since the snapshot out of torchdata's structure.

torchtitan's ParallelAwareDataloader saves `{"dp_rank_R": pickle of its StatefulDataLoader
state, "world_size": W}` and reloads only at the same data-parallel degree. The stream's
position is global (ranks consume global batches in lockstep), so any rank's entry gives
it, and the stream resumes at another degree. The pickles are read by an unpickler that
builds only plain containers and numbers: a crafted state cannot run code.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Mapping

from climbstream.errors import StateError
from climbstream.stream.state.consumption import position_after_snapshot
from climbstream.stream.state.saved_state import without_iterator_place

# torchdata.stateful_dataloader's keys (stateful_dataloader.py, incremental_state.py)
_SNAPSHOT = "_snapshot"
_WORKER_SNAPSHOTS = "_worker_snapshots"
_STEPS_SINCE_SNAPSHOT = "_steps_since_snapshot"
_NUM_YIELDED = "_num_yielded"
_DATASET_STATE = "dataset_state"
_FETCHER_STATE = "fetcher_state"
_DATASET_ITER_STATE = "dataset_iter_state"


_TITAN_RANK = re.compile(r"dp_rank_\d+$")


def is_titan_state(state) -> bool:
    """True for a torchtitan ParallelAwareDataloader state."""
    return isinstance(state, Mapping) and "world_size" in state and any(_TITAN_RANK.match(str(k)) for k in state)


def is_loader_state(state) -> bool:
    """True for a StatefulDataLoader state (single- or multi-process)."""
    return isinstance(state, Mapping) and (_SNAPSHOT in state or _NUM_YIELDED in state)


def stream_state_of(state: Mapping, where: str = "state") -> Mapping:
    """The dataset state in `state`: itself, or the one a StatefulDataLoader or torchtitan state holds."""
    if is_titan_state(state):
        return _from_titan(state, where)
    if not is_loader_state(state):
        return state
    if _SNAPSHOT in state:
        return _from_workers(state, where)
    inner = _ours(state.get(_FETCHER_STATE) or {}, _DATASET_ITER_STATE) or state.get(_DATASET_STATE)
    if not isinstance(inner, Mapping):
        raise StateError(f"{where}: a StatefulDataLoader state without a ClimbStream state in it")
    return without_iterator_place(inner)


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
    out = without_iterator_place(latest)
    out["position"] = position_after_snapshot([s["position"] for s in states], state.get(_STEPS_SINCE_SNAPSHOT, 0),
                                              latest["global_batch"])
    return out


def _ours(mapping: Mapping, key: str):
    value = mapping.get(key)
    return value if isinstance(value, Mapping) and "position" in value else None


def _from_titan(state: Mapping, where: str) -> dict:
    found = {}
    for key in sorted(k for k in state if _TITAN_RANK.match(str(k))):
        loader_state = _plain_loads(state[key], f"{where}.{key}")
        found[key] = stream_state_of(loader_state, f"{where}.{key}")
    positions = {key: int(s["position"]) for key, s in found.items()}
    if len(set(positions.values())) > 1:
        raise StateError(f"{where}: data-parallel ranks saved different positions {positions}; ranks consume global "
                         f"batches in lockstep, so these states come from different steps")
    return next(iter(found.values()))


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise StateError(f"a pickled loader state refers to {module}.{name}; only plain data is accepted")


def _plain_loads(data, where: str):
    if not isinstance(data, (bytes, bytearray)):
        raise StateError(f"{where}: expected the pickled bytes torchtitan saves, got {type(data).__name__}")
    try:
        return _PlainUnpickler(io.BytesIO(bytes(data))).load()
    except StateError as err:
        raise StateError(f"{where}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise StateError(f"{where}: not a readable loader state ({err})") from None
