"""Deterministic batches and an obviously-correct per-language reference for the tracker tests.

A plain module (not a conftest) so that spawned gloo processes can import it too.
"""

from __future__ import annotations

import numpy as np
import torch

LANGUAGES = ("de", "en", "fi", "fr", "sw")


def random_batches(seed: int, steps: int, batch: int = 6, seq_len: int = 7, absent: tuple[int, ...] = ()):
    """[(loss float32 [batch, seq], lang int64 [batch], mask bool [batch, seq])] per step.

    Language ids in `absent` never occur; each step also lacks some languages by chance.
    """
    g = torch.Generator().manual_seed(seed)
    present = [i for i in range(len(LANGUAGES)) if i not in absent]
    out = []
    for _ in range(steps):
        loss = torch.rand(batch, seq_len, generator=g) * 5
        pick = torch.randint(0, len(present), (batch,), generator=g)
        lang = torch.tensor(present)[pick]
        mask = torch.rand(batch, seq_len, generator=g) < 0.7
        mask[:, 0] = True  # every sample counts at least one token
        out.append((loss, lang, mask))
    return out


def reference(batches, masked: bool) -> dict[str, tuple[float, int, int]]:
    """{NAME: (sum of per-token losses, tokens, samples)}, one sample at a time in float64."""
    sums = {name: [0.0, 0, 0] for name in LANGUAGES}
    for loss, lang, mask in batches:
        for i in range(loss.shape[0]):
            row = loss[i].double().numpy()
            keep = mask[i].numpy() if masked else np.ones(row.shape, dtype=bool)
            entry = sums[LANGUAGES[int(lang[i])]]
            entry[0] += float(row[keep].sum())
            entry[1] += int(keep.sum())
            entry[2] += 1
    return {name: tuple(v) for name, v in sums.items()}


def reference_means(batches, masked: bool) -> dict[str, float | None]:
    return {name: (s / t if t else None) for name, (s, t, _) in reference(batches, masked).items()}
