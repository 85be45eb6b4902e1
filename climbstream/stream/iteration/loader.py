"""ClimbDataLoader: a torch DataLoader that follows the batches it hands to the loop.

Each batch carries its positions, so the loader tells the consumed-position owner
(stream/state/consumption.py) about each global batch as it yields it: `stream.state_dict()`
(or `loader.state_dict()`) after a step is the state of what the loop received, with no
call from the loop. It also publishes the start of each new iterator for persistent
workers before torch wakes them, and refuses to hand over a batch made under stages
that `add_stage` or `load_state_dict` replaced since the iterator started.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader

from climbstream.errors import ConfigError
from climbstream.stream.consumers.consumer import refused


class ClimbDataLoader(DataLoader):
    """`stream.dataloader(...)`: a DataLoader whose iterators keep the stream's position."""

    def __iter__(self) -> "FollowedIterator":
        consumption = self.dataset.consumption
        try:
            self.dataset.check_consumer(in_main=True)
        except ConfigError as err:
            return refused(err)
        cursor = consumption.start_iterator(followed=True)
        with consumption.following():  # the workers created now are followed
            inner = super().__iter__()
        return FollowedIterator(consumption, inner, cursor.generation, self.dataset.local_batch)

    def state_dict(self) -> dict:
        """The stream's state after the last batch this loader yielded (or the last step, under follow_steps)."""
        return self.dataset.state_dict()

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from `state` (the stream's, or a StatefulDataLoader's); the next iterator starts there."""
        self.dataset.load_state_dict(state)


class FollowedIterator:
    """Wraps a DataLoader iterator: each batch it yields is handed over to the consumed-position owner."""

    def __init__(self, consumption, inner, generation: int, local_batch: int):
        self._consumption = consumption
        self._inner = inner
        self._generation = generation
        self._local_batch = local_batch

    def __iter__(self) -> "FollowedIterator":
        return self

    def __next__(self):
        batch = next(self._inner)
        self._consumption.handed_over(first_position(batch, self._local_batch, "ClimbDataLoader"),
                                      self._generation, "ClimbDataLoader")
        return batch

    def __len__(self) -> int:
        return len(self._inner)

    def __getattr__(self, name):  # the torch iterator's attributes (_workers, ...)
        return getattr(self._inner, name)


def first_position(batch: Mapping, local_batch: int, where: str) -> int:
    """The first position of a collated batch, checked to hold one rank's slice of a global batch."""
    try:
        positions = batch["position"]
    except (KeyError, TypeError, IndexError):
        raise ConfigError(f"{where}: the batch has no 'position' field; a collate_fn must keep it") from None
    values = positions.tolist() if isinstance(positions, (torch.Tensor, np.ndarray)) else positions
    if not (isinstance(values, (list, tuple)) and values
            and all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in values)):
        raise ConfigError(f"{where}: batch['position'] is {positions!r:.80}; expected the integer positions the "
                          f"stream's samples carry (a tensor or list of ints), collated unchanged")
    n, first = len(values), int(min(values))
    if n != local_batch:
        raise ConfigError(f"{where}: a batch of {n} samples, but this rank's slice of a global batch holds "
                          f"{local_batch} (global_batch / world size): use batch_size={local_batch}")
    return first
