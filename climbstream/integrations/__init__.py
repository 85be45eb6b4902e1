"""The stream inside the trainers people already run, exact and resumable in O(1).

- hf.py          ClimbTrainer: the HF Trainer with the stream's own loader, each step marked,
                 the stream's state in every checkpoint (no replay on resume)
- accelerate.py  prepare_loader: the stream's loader for an accelerate loop, on the device,
                 registered for save_state / load_state
- lightning.py   ClimbCallback: marks each step Lightning trains on and keeps the stream's
                 state in the Lightning checkpoint
- collate.py     causal_lm_collate, split_bookkeeping: batches as trainers expect them
- torchtitan.py  ClimbTitanDataloader: torchtitan's ParallelAwareDataloader over the stream,
                 resumable at another data-parallel degree

Each framework fetches batches ahead of the step that trains on them, so each module
puts the stream under `follow_steps()` and reports every step with `mark_consumed`. The
stream itself refuses the wrappings that would train on the wrong data (see
stream/consumers/consumer.py). The frameworks are imported only by the module that needs them.
"""
