"""A small byte-level causal transformer for the demo, the examples and proxy sweeps.

It exists so that the whole workflow (stream, track, re-solve, resume, sweep) runs on a
laptop CPU in minutes. It is a plain pre-norm GPT built on torch's own layers, with no
claim beyond that; plug in any model for real work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TinyLMConfig:
    """Shape of the model; the defaults train at a few steps per second on 2 CPU cores."""

    vocab_size: int = 257
    seq_len: int = 256
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    dropout: float = 0.0

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and the runs table's params)."""
        return asdict(self)


class TinyLM(nn.Module):
    """Causal LM: tokens [batch, seq] -> logits [batch, seq, vocab]."""

    def __init__(self, config: TinyLMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.seq_len, config.d_model)
        layer = nn.TransformerEncoderLayer(
            config.d_model, config.n_heads, 4 * config.d_model, config.dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(config.seq_len), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits for next-token prediction."""
        n = tokens.shape[1]
        x = self.embed(tokens) + self.pos(torch.arange(n, device=tokens.device))
        x = self.blocks(x, mask=self.mask[:n, :n], is_causal=True)
        return self.head(self.norm(x))

    def non_embedding_params(self) -> int:
        """N of the scaling laws: parameters outside the embeddings."""
        skip = {id(self.embed.weight), id(self.pos.weight)}
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)


def token_losses(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Per-token next-token cross-entropy [batch, seq-1] (nats per token)."""
    logits = model(tokens[:, :-1])
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), tokens[:, 1:].reshape(-1), reduction="none"
    ).view(tokens.shape[0], -1)
