"""ClimbTitanDataloader: the stream as torchtitan's data-parallel loader, resumable at any dp degree.

torchtitan's ParallelAwareDataloader is a StatefulDataLoader whose state is
`{"dp_rank_R": pickled loader state, "world_size": W}`; it reloads only at the degree it
was saved with, and through torch.distributed.checkpoint (DCP, torchtitan's checkpointer)
not even that at a higher degree: DCP loads the keys of the state_dict() the new loader
returns, and rank 3 of 4 asks for a `dp_rank_3` that a degree-2 checkpoint does not hold.
The stream's position is global (ranks consume global batches in lockstep), so this loader's
state is one key every rank writes alike and every rank can read at any degree:
`{"climbstream_state": the stream's state as JSON, "world_size": W}`. Loading it (or an
older `dp_rank_R` state) sets the stream there and drops any iterator, so the next one
starts at the loaded position with any num_workers, in O(1); on a grown corpus the stream
built with `allow_manifest_change=True` continues exactly once (docs/schedule.md).

DCP calls `state_dict()` on the loader before `load_state_dict()` to learn what to load.
A StatefulDataLoader's `state_dict()` starts an iterator (and its workers) when none
exists, and keeps it for the next `iter()`: under the state before the load. This
loader's `state_dict()` starts nothing: without an iterator the stream's own state is the
loader's.

The stream must read the same data-parallel slice torchtitan gives the loader: build it
with `rank=dp_rank, world_size=dp_world_size` (with tensor or pipeline parallelism these
are the data-parallel mesh coordinates, not the global rank). Batches are
`({"input": tokens[:, :-1]}, tokens[:, 1:])`, the pair torchtitan's train step unpacks;
the stream's own fields stay out of the model's inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import torch

from climbstream.errors import ConfigError, StateError
from climbstream.extras import require
from climbstream.integrations.arguments import check_dp_coordinates, check_stream
from climbstream.stream.state.loader_state import stream_state_of

require("torchtitan", "climbstream.integrations.torchtitan")
from torchdata.stateful_dataloader import StatefulDataLoader  # noqa: E402
from torchtitan.components.dataloader import ParallelAwareDataloader  # noqa: E402

STATE_KEY = "climbstream_state"


def titan_collate(samples: Sequence[dict]) -> tuple[dict, torch.Tensor]:
    """`({"input": tokens[:, :-1]}, labels = tokens[:, 1:])`."""
    tokens = torch.stack([s["tokens"] for s in samples])
    return {"input": tokens[:, :-1]}, tokens[:, 1:]


class ClimbTitanDataloader(ParallelAwareDataloader):
    """`ClimbTitanDataloader(stream, dp_rank, dp_world_size, num_workers=...)`."""

    def __init__(self, stream, dp_rank: int, dp_world_size: int, **kwargs):
        check_stream(stream, "ClimbTitanDataloader")
        check_dp_coordinates(dp_rank, dp_world_size, "ClimbTitanDataloader")
        layout = stream.layout
        if (layout.rank, layout.world_size) != (dp_rank, dp_world_size):
            raise ConfigError(
                f"the stream reads data-parallel rank {layout.rank} of {layout.world_size}, the loader is for "
                f"{dp_rank} of {dp_world_size}: build it with rank={dp_rank}, world_size={dp_world_size}")
        kwargs.setdefault("batch_size", stream.local_batch)
        kwargs.setdefault("collate_fn", titan_collate)
        super().__init__(stream, dp_rank, dp_world_size, **kwargs)
        self.stream = stream

    def state_dict(self) -> dict:
        """`{"climbstream_state": JSON of the stream's state at the consumed position, "world_size": W}`."""
        if self._iterator is None:  # nothing ran since construction or the last load: the stream knows
            state = self.stream.state_dict()
        else:  # the workers' snapshots of the batches this loader delivered
            state = stream_state_of(StatefulDataLoader.state_dict(self), "torchtitan dataloader")
        return {STATE_KEY: json.dumps(state, sort_keys=True), "world_size": self.dp_world_size}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Continue from this loader's state at any dp degree (or torchtitan's `dp_rank_R` form)."""
        if not state_dict:
            return
        if STATE_KEY in state_dict:
            state = _json_state(state_dict[STATE_KEY])
        else:
            state = stream_state_of(state_dict, "torchtitan dataloader state")
        self.stream.load_state_dict(state, where="torchtitan dataloader state")
        StatefulDataLoader.load_state_dict(self, {})  # drop an iterator state_dict() may have started


def _json_state(value) -> dict:
    try:
        state = json.loads(value if isinstance(value, str) else bytes(value).decode())
    except (TypeError, ValueError, UnicodeDecodeError) as err:
        raise StateError(f"torchtitan dataloader state: {STATE_KEY} is not the JSON this loader writes ({err})") \
            from None
    if not isinstance(state, dict):
        raise StateError(f"torchtitan dataloader state: {STATE_KEY} holds {type(state).__name__}, not a stream state")
    return state
