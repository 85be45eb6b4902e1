"""ClimbDataLoader: a torch DataLoader that follows the batches it hands to the loop.

Each batch carries its positions, so the loader moves the stream's consumed position to
the end of each global batch as it yields it: `stream.state_dict()` (or
`loader.state_dict()`) after a step is the state of what the loop received, with no
call from the loop. It also publishes the start of each new iterator for persistent
workers before torch wakes them, and refuses to hand over a batch made under stages
that `add_stage` or `load_state_dict` replaced since the iterator started.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch.utils.data import DataLoader

from climbstream.errors import StateError


class ClimbDataLoader(DataLoader):
    """`stream.dataloader(...)`: a DataLoader whose iterators keep the stream's position."""

    def __iter__(self) -> "FollowedIterator":
        stream = self.dataset
        stream._set_cursor(stream._cursor.at(stream.position))  # persistent workers start here
        stream._control.position_known()
        stream._followed = True  # the workers created now are followed
        try:
            inner = super().__iter__()
        finally:
            stream._followed = False
        return FollowedIterator(stream, inner)

    def state_dict(self) -> dict:
        """The stream's state after the last batch this loader yielded."""
        return self.dataset.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from `state` (the stream's, or a StatefulDataLoader's); the next iterator starts there."""
        self.dataset.load_state_dict(state)


class FollowedIterator:
    """Wraps a DataLoader iterator: each batch it yields moves the stream's consumed position."""

    def __init__(self, stream, inner):
        self._stream = stream
        self._inner = inner
        self._generation = stream._cursor.generation

    def __iter__(self) -> "FollowedIterator":
        return self

    def __next__(self):
        batch = next(self._inner)
        stream = self._stream
        if stream._cursor.generation != self._generation:
            raise StateError(
                "this iterator was created before add_stage or load_state_dict, and its batches follow the old "
                "stages; recreate the DataLoader iterator (iter(loader)) and train on its batches"
            )
        _, end = stream._batch_span(batch, "ClimbDataLoader")
        stream._consumed_to(end)
        return batch

    def __len__(self) -> int:
        return len(self._inner)

    def __getattr__(self, name):  # the torch iterator's attributes (_workers, ...)
        return getattr(self._inner, name)
