"""torchtitan's checkpoint flow over a ClimbStream: `titan_dcp_script.py CORPUS OUT PHASE`.

torchtitan's checkpointer hands torch.distributed.checkpoint its states, the dataloader among
them as a Stateful object (`{"dataloader": loader, ...}`): DCP calls `state_dict()` to save
and, on load, `state_dict()` (what to load) and then `load_state_dict()`. This script does the
same. PHASE "run": 6 steps at this run's dp degree, a DCP checkpoint after step 3. "resume":
the checkpoint loaded through DCP at this run's degree, steps 4-6.
"""

import os
import sys

import torch.distributed as dist
import torch.distributed.checkpoint as dcp

from climbstream import ClimbStream
from climbstream.integrations.torchtitan import ClimbTitanDataloader
from tests.corpora import WEIGHTS
from tests.integrations.runner import B, record

corpus, out, phase = sys.argv[1:4]
workers = int(os.environ.get("WORKERS", 0))
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
stream = ClimbStream(corpus, WEIGHTS, global_batch=B, seed=0, rank=rank, world_size=world)
loader = ClimbTitanDataloader(stream, dp_rank=rank, dp_world_size=world, num_workers=workers,
                              collate_fn=lambda samples: samples)  # keep positions to record them
checkpoint = os.path.join(out, "dcp-step-3")
first = 1
if phase == "resume":
    dcp.load({"dataloader": loader}, checkpoint_id=checkpoint)
    first = 4
for step, samples in enumerate(loader, start=first):
    record(out, rank, phase, step, [s["position"] for s in samples], [s["tokens"] for s in samples])
    if step == 3 and phase == "run":
        dcp.save({"dataloader": loader}, checkpoint_id=checkpoint)
    if step == 6:
        break
dist.barrier()
dist.destroy_process_group()

sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
