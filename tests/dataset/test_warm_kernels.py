"""The dataset module loads every schedule kernel a stream uses, so forked workers need none."""

from __future__ import annotations

import numba

from climbstream import ClimbStream
from climbstream.schedule import kernels, order, rng
from tests.dataset.helpers import read_batches


def _loaded_signatures() -> dict[str, int]:
    out = {}
    for module in (kernels, order, rng):
        for name in dir(module):
            fn = getattr(module, name)
            if isinstance(fn, numba.core.registry.CPUDispatcher):
                out[f"{module.__name__}.{name}"] = len(fn.signatures)
    return out


def test_reading_a_staged_stream_loads_no_kernel_beyond_those_loaded_at_import(mds_corpus):
    before = _loaded_signatures()
    assert before["climbstream.schedule.kernels.fill_range"] == 1  # loaded when climbstream.stream.dataset was imported
    stream = ClimbStream(mds_corpus, {"aa": 0.4, "bb": 0.3, "cc": 0.2, "dd": 0.1}, global_batch=16, seed=3, rank=0, world_size=1)
    read_batches(stream, 3)
    stream.add_stage({"aa": 0.25, "bb": 0.25, "cc": 0.25, "dd": 0.25})
    read_batches(stream, 3)
    assert _loaded_signatures() == before  # a worker forked after import would compile or load nothing
