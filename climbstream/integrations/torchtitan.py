"""ClimbTitanDataloader: the stream as torchtitan's data-parallel loader, resumable at any dp degree.

torchtitan's ParallelAwareDataloader is a StatefulDataLoader whose state is
`{"dp_rank_R": pickled loader state, "world_size": W}`; it reloads only at the degree it
was saved with. The stream's position is global, so this subclass reloads a state saved
at another degree, or on a grown corpus, through the stream (`stream.load_state_dict`, which reads the
position out of any rank's entry) and starts a fresh iterator there; at the same degree
it restores exactly as torchdata does (each worker from its own snapshot).

The stream must read the same data-parallel slice torchtitan gives the loader: build it
with `rank=dp_rank, world_size=dp_world_size` (with tensor or pipeline parallelism these
are the data-parallel mesh coordinates, not the global rank). Batches are
`({"input": tokens[:, :-1]}, tokens[:, 1:])`, the pair torchtitan's train step unpacks;
the stream's own fields stay out of the model's inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from climbstream.errors import ConfigError
from climbstream.extras import require
from climbstream.stream.state.loader_state import stream_state_of

require("torchtitan", "climbstream.integrations.torchtitan")
from torchtitan.components.dataloader import ParallelAwareDataloader  # noqa: E402


def titan_collate(samples: Sequence[dict]) -> tuple[dict, torch.Tensor]:
    """`({"input": tokens[:, :-1]}, labels = tokens[:, 1:])`."""
    tokens = torch.stack([s["tokens"] for s in samples])
    return {"input": tokens[:, :-1]}, tokens[:, 1:]


class ClimbTitanDataloader(ParallelAwareDataloader):
    """`ClimbTitanDataloader(stream, dp_rank, dp_world_size, num_workers=...)`."""

    def __init__(self, stream, dp_rank: int, dp_world_size: int, **kwargs):
        layout = stream.layout
        if (layout.rank, layout.world_size) != (dp_rank, dp_world_size):
            raise ConfigError(
                f"the stream reads data-parallel rank {layout.rank} of {layout.world_size}, the loader is for "
                f"{dp_rank} of {dp_world_size}: build it with rank={dp_rank}, world_size={dp_world_size}")
        kwargs.setdefault("batch_size", stream.local_batch)
        kwargs.setdefault("collate_fn", titan_collate)
        super().__init__(stream, dp_rank, dp_world_size, **kwargs)
        self.stream = stream

    def load_state_dict(self, state_dict: Mapping) -> None:
        if not state_dict:
            return
        saved = stream_state_of(state_dict, "torchtitan dataloader state")
        same_corpus = saved.get("manifest_fingerprint") == self.stream.corpus.fingerprint()
        same_degree = state_dict.get("world_size") == self.dp_world_size and f"dp_rank_{self.dp_rank}" in state_dict
        if same_corpus and same_degree:
            super().load_state_dict(state_dict)
            return
        # another degree, or a grown corpus (ClimbStream(allow_manifest_change=True)): through the stream
        self.stream.load_state_dict(saved)
