"""A tiny causal LM for the trainer tests: real gradients, a few thousand parameters."""

from __future__ import annotations

import torch
from torch import nn


class TinyLM(nn.Module):
    """Embedding + linear next-token model over bytes; `forward(input_ids, labels)` -> {"loss"}."""

    def __init__(self, vocab: int = 512, dim: int = 16):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, input_ids=None, labels=None, **_):
        logits = self.head(self.embed(input_ids[:, :-1]))
        target = (labels if labels is not None else input_ids)[:, 1:]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        return {"loss": loss, "logits": logits}
