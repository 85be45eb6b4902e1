"""An accelerate loop over a ClimbStream on 2 gloo processes: `accelerate_script.py CORPUS OUT PHASE MODE`.

MODE "helper": prepare_loader; "prepare": accelerator.prepare(stream.dataloader()) with the
default config; "nodispatch": the same with dispatch_batches=False. PHASE "run" trains 6
steps and saves the state after step 3; "resume" loads it and trains steps 4-6.
Environment: WORKERS (DataLoader workers), STATEFUL=1 (use_stateful_dataloader=True),
SINGLE=1 (the stream built with rank=0, world_size=1 and split_batches=True: rank 0 reads whole
global batches), REGISTER=0 (the prepared loader's stream not registered for checkpointing).
"""

import os
import sys

import torch
from accelerate import Accelerator, DataLoaderConfiguration

from climbstream import ClimbStream
from climbstream.integrations.accelerate import prepare_loader
from tests.corpora import WEIGHTS
from tests.integrations.models import TinyLM
from tests.integrations.runner import B, record

corpus, out, phase, mode = sys.argv[1:5]
workers = int(os.environ.get("WORKERS", 0))
single = os.environ.get("SINGLE") == "1"
options = {"dispatch_batches": False} if mode == "nodispatch" else {}
if os.environ.get("STATEFUL") == "1":
    options["use_stateful_dataloader"] = True
config = DataLoaderConfiguration(split_batches=single, **options)
accelerator = Accelerator(cpu=True, dataloader_config=config)
coordinates = {"rank": 0, "world_size": 1} if single else {}
stream = ClimbStream(corpus, WEIGHTS, global_batch=B, seed=0, **coordinates)
model = TinyLM()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
model, optimizer = accelerator.prepare(model, optimizer)
if mode == "helper":
    loader = prepare_loader(accelerator, stream, num_workers=workers)
else:
    loader = accelerator.prepare(stream.dataloader(num_workers=workers))
    if os.environ.get("REGISTER", "1") == "1":
        accelerator.register_for_checkpointing(stream)
checkpoint = os.path.join(out, "checkpoint")
first = 1
if phase == "resume":
    accelerator.load_state(checkpoint)
    first = 4
for step, batch in enumerate(loader, start=first):
    record(out, accelerator.process_index, phase, step, batch["position"], batch["tokens"])
    loss = model(input_ids=batch["tokens"])["loss"]
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
    if step == 3 and phase == "run":
        accelerator.save_state(checkpoint)
    if step == 6:
        break
accelerator.wait_for_everyone()
accelerator.end_training()  # destroys the process group: gloo's threads would otherwise abort the exit now and then

# Leave without interpreter teardown: under load, gloo's threads now and then abort it ("terminate called
# without an active exception") after everything above has run and been recorded.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
