"""prepare_loader: the stream's loader in an accelerate loop, exact on N processes.

`accelerator.prepare(DataLoader(stream))` rebuilds the loader: by default it dispatches
an IterableDataset from rank 0; with `dispatch_batches=False` it wraps it in
IterableDatasetShard (the stream then places its batches so the wrapper keeps this rank's
slice: exact batches). Either way its loader fetches one batch ahead of the loop, and its
`save_state` keeps a loader position only with `use_stateful_dataloader=True` (then every
process writes its state to one file, which under the dispatcher may be process 1's, never
read). The stream refuses those recipes at their first batch, naming prepare_loader;
with `use_stateful_dataloader=True` and no dispatcher on several processes, accelerate's
own loader state resumes it.

`prepare_loader(accelerator, stream)` keeps the stream's own loader, moves each batch to
`accelerator.device` as it is handed to the loop (no look-ahead, so the position the
loader follows is the one the loop trains on), and registers the stream for
checkpointing: `accelerator.save_state(dir)` saves its state, `accelerator.load_state(dir)`
restores it, and the next `iter(loader)` continues at the next position in O(1).
"""

from __future__ import annotations

from climbstream.errors import ConfigError
from climbstream.extras import require
from climbstream.integrations.arguments import check_stream


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
    check_stream(stream, "prepare_loader")
    if not all(hasattr(accelerator, name) for name in ("register_for_checkpointing", "device", "num_processes")):
        raise ConfigError(f"prepare_loader: accelerator: expected an accelerate.Accelerator, got "
                          f"{type(accelerator).__name__}")
    layout = stream.layout
    if accelerator.num_processes == 1 and layout.world_size > 1:
        raise ConfigError(
            f"prepare_loader: accelerate runs as 1 process of 1 but the stream reads rank {layout.rank} of "
            f"{layout.world_size} (the launcher's environment): on a machine without GPUs create the Accelerator with "
            f"cpu=True (Accelerator(cpu=not torch.cuda.is_available())) so that its processes form one group")
    if (layout.rank, layout.world_size) != (accelerator.process_index, accelerator.num_processes):
        raise ConfigError(
            f"prepare_loader: the stream reads data-parallel rank {layout.rank} of {layout.world_size}, but accelerate "
            f"runs process {accelerator.process_index} of {accelerator.num_processes}: build the stream without rank= "
            f"and world_size= (they come from torch.distributed) or with rank=accelerator.process_index, "
            f"world_size=accelerator.num_processes")
    loader = stream.dataloader(**loader_kwargs)
    accelerator.register_for_checkpointing(stream)
    return DeviceLoader(loader, accelerator.device, non_blocking=accelerator.non_blocking)
