"""torchtitan's dataloader over a ClimbStream: `titan_script.py CORPUS OUT PHASE`.

PHASE "run" (2 processes): ClimbTitanDataloader, 6 steps, the loader state saved after step 3.
"resume" (WORLD processes): the state of rank 0 loaded into a loader of this run's dp degree.
"""

import os
import json
import sys

import torch
import torch.distributed as dist

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
saved = os.path.join(out, "titan_rank0.pt")
first = 1
if phase == "resume":
    loader.load_state_dict(torch.load(saved, weights_only=False))
    first = 4
for step, samples in enumerate(loader, start=first):
    record(out, rank, phase, step, [s["position"] for s in samples], [s["tokens"] for s in samples])
    if step == 3 and phase == "run" and rank == 0:
        state = loader.state_dict()
        assert set(state) == {"climbstream_state", "world_size"}  # one key every dp rank can read
        assert json.loads(state["climbstream_state"])["position"] == 3 * B
        torch.save(state, saved)
    if step == 6:
        break
dist.barrier()
dist.destroy_process_group()

# Leave without interpreter teardown: under load, gloo's threads now and then abort it ("terminate called
# without an active exception") after everything above has run and been recorded.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
