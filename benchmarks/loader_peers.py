"""The loaders the benchmark compares, each behind one function: `open_loader(run, resume_at)`.

Every loader gets the same languages, weights, global batch, num_workers and seed, reads
the shards climbstream prepared (from local disk or an S3 endpoint) and yields batches as
`(tokens int64[B, seq_len], lang int64[B])` with `lang` the index of the language in the
sorted names, so one measuring loop serves them all.

- climbstream: `ClimbStream` (block-exact), on the MDS or the tar corpus; resume =
  `load_state_dict` with `position` set.
- mosaic: mosaicml-streaming `StreamingDataset` with one `Stream` per language
  (`proportion=w`), local in place or `remote=s3://...` with a fresh local cache; resume =
  its own `load_state_dict({epoch, sample_in_epoch, ...})`.
- webdataset: one pipeline per language (resampled shards, tar expansion, a small shuffle
  buffer) mixed by `RandomMix(probs=w)`; s3:// shards are opened through a boto3 handler
  registered in webdataset's gopen table, with one client per process. It cannot resume.

All three draw i.i.d. or block-exact batches from the same target weights; what differs
is how the bytes arrive, which is what the benchmark measures.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

LOADERS = ("climbstream", "climbstream-tar", "mosaic", "webdataset")
DEFAULT_LOADERS = ("climbstream", "mosaic", "webdataset")  # climbstream-tar on request
WDS_SHUFFLE_BUFFER = 64  # per language and worker: small, or RAM and first batch grow with K
WDS_SHUFFLE_INITIAL = 8


@dataclass
class RunSpec:
    """One measured run: which loader reads which corpus from where, with what settings."""

    loader: str
    roots: dict  # {"mds": root, "wds": root}: local folders or s3://bucket URLs
    languages: list
    weights: dict  # {NAME: float}, summing to 1
    shards: dict  # {NAME: [tar shard paths relative to the wds root]}
    seq_len: int
    batch: int
    workers: int
    seed: int
    cache_dir: str
    endpoint_url: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        return self.endpoint_url is not None


class Batches:
    """An open loader: iterate for `(tokens, lang)` batches; `close()` stops its workers."""

    def __init__(self, iterator: Iterator, closers=()):
        self._iterator = iterator
        self._closers = list(closers)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._iterator)

    def close(self) -> None:
        self._iterator = iter(())
        for close in self._closers:
            close()
        self._closers = []


def open_loader(run: RunSpec, resume_at: int | None = None) -> Batches | None:
    """Start `run.loader`, at position `resume_at` if given; None when it cannot resume."""
    if run.loader in ("climbstream", "climbstream-tar"):
        return _climbstream(run, resume_at)
    if run.loader == "mosaic":
        return _mosaic(run, resume_at)
    if run.loader == "webdataset":
        return None if resume_at is not None else _webdataset(run)
    raise ValueError(f"unknown loader {run.loader!r}; choose from {list(LOADERS)}")


def preimport(loader: str, remote: bool = False) -> None:
    """Import what `loader` needs, so that import time is not counted as time to first batch.

    Every loader reaches S3 through boto3 (webdataset through `s3_gopen`), so remote runs
    import it here for all of them alike.
    """
    import torch.utils.data  # noqa: F401

    if remote:
        import boto3  # noqa: F401
        import botocore.config  # noqa: F401

    if loader.startswith("climbstream"):
        import climbstream.stream.dataset  # noqa: F401
        import climbstream.storage.s3  # noqa: F401
    elif loader == "mosaic":
        import streaming  # noqa: F401
    elif loader == "webdataset":
        import webdataset  # noqa: F401


def _dataloader_batches(loader, to_pair) -> Batches:
    iterator = iter(loader)

    def generate():
        for batch in iterator:
            yield to_pair(batch)

    def close():
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    return Batches(generate(), [close])


# -- climbstream -------------------------------------------------------------------------
def _climbstream(run: RunSpec, resume_at: int | None) -> Batches:
    from climbstream import ClimbStream
    from climbstream.storage.options import StorageOptions

    from s3_rclone import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

    root = run.roots["wds" if run.loader == "climbstream-tar" else "mds"]
    storage = None
    if run.remote:
        storage = StorageOptions(endpoint_url=run.endpoint_url, region=REGION, access_key_id=ACCESS_KEY_ID,
                                 secret_access_key=SECRET_ACCESS_KEY, addressing_style="path")
    stream = ClimbStream(root, run.weights, global_batch=run.batch, seed=run.seed, rank=0, world_size=1,
                         cache_dir=os.path.join(run.cache_dir, "climbstream"), storage=storage,
                         **run.extra.get("climbstream", {}))
    if resume_at is not None:
        state = stream.state_dict()
        state["position"] = resume_at
        stream.load_state_dict(state)
    loader = stream.dataloader(num_workers=run.workers)
    return _dataloader_batches(loader, lambda b: (b["tokens"], b["lang"]))


# -- mosaicml-streaming ------------------------------------------------------------------
def _mosaic_dataset_class():
    import torch
    from streaming import StreamingDataset

    class TokenDataset(StreamingDataset):
        """StreamingDataset whose samples are (int64 tokens, language index)."""

        def __init__(self, *, lang_index: dict, **kwargs):
            super().__init__(**kwargs)
            self.lang_index = lang_index

        def get_item(self, idx: int):
            sample = super().get_item(idx)
            return {"tokens": torch.from_numpy(sample["tokens"].astype(np.int64)),
                    "lang": self.lang_index[sample["lang"]]}

    return TokenDataset


def _mosaic(run: RunSpec, resume_at: int | None) -> Batches:
    import torch
    from streaming import Stream
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    root = run.roots["mds"]
    streams = []
    for name in run.languages:
        if run.remote:
            streams.append(Stream(remote=f"{root}/{name}/train", local=os.path.join(run.cache_dir, "mosaic", name),
                                  proportion=run.weights[name]))
        else:
            streams.append(Stream(local=os.path.join(root, name, "train"), proportion=run.weights[name]))
    dataset = _mosaic_dataset_class()(
        streams=streams, batch_size=run.batch, shuffle=True, shuffle_seed=run.seed,
        lang_index={n: i for i, n in enumerate(run.languages)}, **run.extra.get("mosaic", {}))
    if run.remote:
        # The constructor fetched each index.json with a boto3 client made in this process;
        # forked workers would share its keep-alive connections and read each other's
        # responses (shards with another shard's bytes, seen with 20 ms latency). Drop them
        # so that each worker makes its own, as a careful mosaic user must.
        for stream in dataset.streams:
            stream._downloader.clean_up()
    if resume_at is not None:
        epoch, offset = divmod(resume_at, dataset.epoch_size)
        dataset.load_state_dict({"epoch": epoch, "sample_in_epoch": offset - offset % run.batch,
                                 "num_canonical_nodes": dataset.num_canonical_nodes or 1,
                                 "shuffle_seed": run.seed, "initial_physical_nodes": 1})
    loader = torch.utils.data.DataLoader(dataset, batch_size=run.batch, num_workers=run.workers)
    return _dataloader_batches(loader, lambda b: (b["tokens"], b["lang"]))


# -- webdataset --------------------------------------------------------------------------
_S3 = {"pid": None, "client": None}


def s3_gopen(url: str, mode: str = "rb", bufsize: int = 8192, **kw):
    """webdataset gopen handler for s3://: a streaming GET body, one boto3 client per process.

    boto3 clients are not fork-safe, so the client is made on first use in each worker.
    The pool is sized for one open stream per language (RandomMix keeps all K open).
    """
    if _S3["pid"] != os.getpid():
        import boto3
        from botocore.config import Config

        _S3["client"] = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3"),
                                     config=Config(max_pool_connections=256, s3={"addressing_style": "path"}))
        _S3["pid"] = os.getpid()
    bucket, _, key = url[len("s3://"):].partition("/")
    return _S3["client"].get_object(Bucket=bucket, Key=key)["Body"]


def _decode_tar_sample(sample: dict, lang: int):
    import torch

    tokens = np.lib.format.read_array(io.BytesIO(sample["tokens.npy"]), allow_pickle=False)
    return {"tokens": torch.from_numpy(tokens.astype(np.int64)), "lang": lang}


def _webdataset(run: RunSpec) -> Batches:
    import functools

    import torch
    import webdataset as wds

    root = run.roots["wds"]
    if run.remote:
        # `webdataset.gopen` is also the name of a function; the module is in sys.modules.
        sys.modules["webdataset.gopen"].gopen_schemes["s3"] = s3_gopen
    pipelines = []
    for i, name in enumerate(run.languages):
        urls = [f"{root.rstrip('/')}/{path}" for path in run.shards[name]]
        pipelines.append(wds.DataPipeline(
            wds.ResampledShards(urls, seed=run.seed + i),
            wds.tarfile_to_samples(),
            wds.shuffle(WDS_SHUFFLE_BUFFER, initial=WDS_SHUFFLE_INITIAL),
            wds.map(functools.partial(_decode_tar_sample, lang=i)),
        ))
    mix = wds.RandomMix(pipelines, probs=[run.weights[n] for n in run.languages])
    loader = torch.utils.data.DataLoader(mix, batch_size=run.batch, num_workers=run.workers)
    return _dataloader_batches(loader, lambda b: (b["tokens"], b["lang"]))
