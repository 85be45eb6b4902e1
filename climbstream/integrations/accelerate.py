"""prepare_loader: the stream's loader in an accelerate loop, exact on N processes.

`accelerator.prepare(DataLoader(stream))` rebuilds the loader: by default it dispatches
an IterableDataset from rank 0 (the stream refuses that, naming the fix); with
`dispatch_batches=False` it wraps it in IterableDatasetShard (the stream then places its
batches so the wrapper keeps this rank's slice: exact batches), but its DataLoaderShard
fetches one batch ahead of the loop, so the batches the stream hands over run ahead of
training and `save_state` cannot save the consumed position (the stream says so rather
than save one a batch ahead).

`prepare_loader(accelerator, stream)` keeps the stream's own loader, moves each batch to
`accelerator.device` as it is handed to the loop (no look-ahead, so the position the
loader follows is the one the loop trains on), and registers the stream for
checkpointing: `accelerator.save_state(dir)` saves its state, `accelerator.load_state(dir)`
restores it, and the next `iter(loader)` continues at the next position in O(1).
"""

from __future__ import annotations

from climbstream.extras import require


class DeviceLoader:
    """The stream's loader with each batch moved to a device; state_dict / load_state_dict of the stream."""

    def __init__(self, loader, device, non_blocking: bool = False):
        self.loader = loader
        self.device = device
        self.non_blocking = non_blocking

    def __iter__(self):
        from accelerate.utils import send_to_device

        for batch in self.loader:
            yield send_to_device(batch, self.device, non_blocking=self.non_blocking)

    def state_dict(self) -> dict:
        return self.loader.state_dict()

    def load_state_dict(self, state) -> None:
        self.loader.load_state_dict(state)


def prepare_loader(accelerator, stream, **loader_kwargs) -> DeviceLoader:
    """The stream's loader for `accelerator`: batches of B / R on its device, state in its checkpoints.

    `loader_kwargs` go to `stream.dataloader()` (num_workers, collate_fn, ...). Call it
    instead of `accelerator.prepare` for the training loader; prepare the model and the
    optimizer as usual.
    """
    require("accelerate", "climbstream.integrations.accelerate")
    loader = stream.dataloader(**loader_kwargs)
    accelerator.register_for_checkpointing(stream)
    return DeviceLoader(loader, accelerator.device, non_blocking=accelerator.non_blocking)
