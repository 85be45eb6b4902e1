"""Hooks for the training loop: per-language loss tracking, sinks and re-weighting; the built-in loop.

- losses.py       LanguageLossTracker: per-language loss on the loss's device, all-reduced at flush
- sinks.py        where its records go: JSONL, CSV, TensorBoard, W&B, a callback (rank 0 writes files)
- reweight.py     Reweighter: re-solving the mixture at checkpoints from the run's own loss
- loop.py         a plain PyTorch loop over ClimbStream (demo, examples, proxy sweeps); tiny_lm.py its model
- sweep.py        proxy sweeps: one small model per designed mixture, appended to the runs table
- sweep_design.py the design file read as (languages, mixtures), and a run's ratio cells
- sweep_parts.py  a sweep as N parts, and the merge of their tables
- demo.py         the built-in end-to-end demo

The loss log these write is a format of its own (climbstream/formats/loss_log.py).
"""
