"""Two real gloo processes read disjoint halves of every global batch."""

from __future__ import annotations

import json
import os

import torch.multiprocessing as mp

from climbstream import ClimbStream

from tests.corpora import WEIGHTS
from .helpers import by_position, free_port, read_batches

B = 16


def _rank_main(rank: int, world: int, port: int, corpus: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        stream = ClimbStream(corpus, WEIGHTS, global_batch=B, seed=5)  # rank and size from torch.distributed
        assert (stream.layout.rank, stream.layout.world_size) == (rank, world)
        batches = read_batches(stream, 6, num_workers=1)
        new_start = stream.add_stage({"aa": 0.25, "bb": 0.25, "cc": 0.25, "dd": 0.25})
        batches += read_batches(stream, 4, num_workers=0)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"batches": batches, "stage_start": new_start, "state": stream.state_dict()}, f)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_cover_each_global_batch_exactly_once(mds_corpus, tmp_path):
    mp.spawn(_rank_main, args=(2, free_port(), mds_corpus, str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, res in enumerate(results):
        for b, batch in enumerate(res["batches"]):
            start = b * B + r * (B // 2)
            assert batch["positions"] == list(range(start, start + B // 2))
    # both ranks agreed on the stage start and hold identical states
    assert results[0]["stage_start"] == results[1]["stage_start"] == 6 * B
    assert results[0]["state"] == results[1]["state"]
    # together they equal a single-process reader with the same stages
    single = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=5, rank=0, world_size=1)
    single.load_state_dict(results[0]["state"])
    single.load_state_dict({**results[0]["state"], "position": 0})
    reference = by_position(read_batches(single, 10))
    merged = by_position([json.loads(json.dumps(b)) for res in results for b in res["batches"]])
    assert {p: list(k) for p, k in merged.items()} == {p: list(k) for p, k in reference.items()}
