"""The sample dict the stream yields (interfaces: a sample), built in one place.

`{"tokens": int64[seq_len], "lang": int, "position": int, "shard": int, "index": int}`
plus any extra MDS columns asked for. Every default field is a tensor or an int, so
every trainer can collate, move, concatenate and broadcast it (accelerate's dispatcher
concatenates batches and refuses strings). `shard` indexes the language's shard list in
the manifest (train or held-out split); `stream.shard_path(lang, shard)` names its file.
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLE_FIELDS = ("tokens", "lang", "position", "shard", "index")
BOOKKEEPING_FIELDS = SAMPLE_FIELDS[1:]  # where a sample came from: the integrations keep these away from the model


def make_sample(tokens, lang: int, position: int, shard: int, index: int, extra: dict | None = None) -> dict:
    """One sample; `extra` adds the requested columns."""
    sample = {
        "tokens": torch.from_numpy(np.asarray(tokens, dtype=np.int64)),
        "lang": lang,
        "position": position,
        "shard": shard,
        "index": index,
    }
    if extra:
        sample.update(extra)
    return sample
