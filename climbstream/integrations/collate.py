"""Batches in the shape trainers expect, with the stream's bookkeeping fields beside them.

A causal LM takes `input_ids` and `labels` (it shifts the labels itself); the stream's
`position` and `lang` travel as tensors so any framework can move them, and the
integrations take them out before the model sees the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from climbstream.stream.iteration.sample import BOOKKEEPING_FIELDS as BOOKKEEPING


def causal_lm_collate(samples: Sequence[dict]) -> dict:
    """`{input_ids, labels, position, lang}`: int64 tensors, labels a copy of the tokens."""
    tokens = torch.stack([s["tokens"] for s in samples])
    return {
        "input_ids": tokens,
        "labels": tokens.clone(),
        "position": torch.tensor([s["position"] for s in samples], dtype=torch.int64),
        "lang": torch.tensor([s["lang"] for s in samples], dtype=torch.int64),
    }


def split_bookkeeping(batch: dict) -> tuple[dict, dict]:
    """(model inputs, bookkeeping fields) of a collated batch."""
    inputs = {k: v for k, v in batch.items() if k not in BOOKKEEPING}
    return inputs, {k: batch[k] for k in BOOKKEEPING if k in batch}
