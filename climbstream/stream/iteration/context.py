"""What one pass over the stream may use of its dataset: declared here, and nothing else.

An iterator runs in the main process or in a DataLoader worker, on a copy of the
dataset; it needs the batch layout, the plan, the readers and a few options, never the
dataset itself. Naming them in one frozen, typed record keeps the import graph honest:
the iterator sits below the dataset and never calls back up into it.
"""

from __future__ import annotations

from dataclasses import dataclass

from climbstream.stream.state.control import SharedControl
from climbstream.stream.plan.layout import Layout
from climbstream.stream.plan.planner import Planner
from climbstream.stream.iteration.process_readers import ProcessReaders
from climbstream.stream.state.saved_state import StateCodec


@dataclass(frozen=True)
class StreamContext:
    """The parts and options an iterator reads."""

    layout: Layout
    languages: tuple[str, ...]
    columns: tuple[str, ...]
    planner: Planner
    codec: StateCodec
    control: SharedControl
    readers: ProcessReaders
    stop_position: int | None
    epoch_cap: float | None
    on_epoch_cap: str
    read_whole_within: float  # read/node_reads.py: whole shards only where a node's window turns over this fast

    @property
    def global_batch(self) -> int:
        return self.layout.global_batch
