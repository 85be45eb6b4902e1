"""Every public argument of ClimbStream, its methods and the integrations is checked up front: a bad
value is a one-line ConfigError naming the argument, the value and what is accepted (never an
AttributeError, TypeError, ValueError or MemoryError from inside, and never accepted silently)."""

from __future__ import annotations

import pytest

from climbstream import ClimbStream
from climbstream.errors import ConfigError
from tests.corpora import WEIGHTS
from tests.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

from .helpers import read_batches

B = 8


@pytest.fixture(scope="module")
def stream(mds_corpus):
    return ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=0, rank=0, world_size=1)


@pytest.mark.parametrize("kwargs,match", [
    ({"sources": 42}, r"sources: expected a corpus folder or URL, or a non-empty list of them, got 42"),
    ({"sources": []}, r"sources: expected a corpus folder or URL"),
    ({"weights": {"method": "temperature", "alpha": "x"}}, r"weights.alpha: expected a number, got 'x'"),
    ({"weights": {"method": "tempreature"}}, r"weights.method: expected one of natural, uniform, temperature"),
    ({"weights": {"method": "temperature", "budget_tokens": -5}}, r"weights.budget_tokens: expected a positive"),
    ({"cache_limit_bytes": "lots"}, r"cache_limit_bytes: expected an integer in \[1, \d+\], got 'lots'"),
    ({"cache_limit_bytes": 0}, r"cache_limit_bytes: expected an integer"),
    ({"cache_dir": 5}, r"cache_dir: expected a folder path, got 5"),
    ({"prefetch_depth": "x"}, r"prefetch_depth: expected an integer in \[0, 65536\], got 'x'"),
    ({"window_shards": 0}, r"window_shards: expected an integer in \[1, \d+\], got 0"),
    ({"read_mode": "bogus"}, r"read_mode: expected one of 'auto', 'range', 'shard', got 'bogus'"),
    ({"verify": "md5"}, r"verify: expected one of 'auto', 'size', 'sha256', got 'md5'"),
    ({"on_epoch_cap": "halt"}, r"on_epoch_cap: expected 'error' or 'stop', got 'halt'"),
    ({"rank": "x", "world_size": 2}, r"rank: expected an integer in \[0, \d+\], got 'x'"),
    ({"world_size": 0}, r"world_size: expected an integer in \[1, \d+\], got 0"),
    ({"columns": 5}, r"columns: expected a list of column names, got 5"),
    ({"storage": "http://127.0.0.1:9"}, r"storage: expected a StorageOptions or a mapping of its fields"),
    ({"storage": {"endpoint": "http://127.0.0.1:9"}}, r"storage: unknown key\(s\) \['endpoint'\]; known keys are"),
    ({"storage": {"max_retries": "many"}}, r"storage.max_retries: expected int, got 'many'"),
])
def test_a_bad_constructor_argument_is_a_config_error_naming_it(mds_corpus, kwargs, match):
    args = {"sources": mds_corpus, "weights": WEIGHTS, "global_batch": B, **kwargs}
    with pytest.raises(ConfigError, match=match):
        ClimbStream(args.pop("sources"), args.pop("weights"), **args)


@pytest.mark.parametrize("call,match", [
    (lambda s: s.mark_consumed({"position": "x"}), r"mark_consumed: batch\['position'\] is 'x'; expected the integer"),
    (lambda s: s.mark_consumed({"position": [0.5] * B}), r"mark_consumed: batch\['position'\] is \[0.5"),
    (lambda s: s.mark_consumed({"tokens": []}), r"mark_consumed: the batch has no 'position' field"),
    (lambda s: s.plan(0, 10**13), r"plan\(0, 10000000000000\): 10000000000000 positions at once .* at most 16777216"),
    (lambda s: s.describe(0, 10**13), r"plan\(0, 10000000000000\)"),
    (lambda s: s.add_stage(WEIGHTS, position="x"), r"add_stage.position: expected an integer in \[0, \d+\], got 'x'"),
    (lambda s: s.add_stage({"method": "temperature", "alpha": None, "floor": "x"}), r"add_stage.weights.floor"),
    (lambda s: s.shard_path("zz", 0), r"shard_path: unknown language 'zz' \(languages: aa, bb, cc, dd\)"),
    (lambda s: s.shard_path("aa", "x"), r"shard_path: aa has train shards 0 to \d+, got shard 'x'"),
    (lambda s: s.shard_path(9, 0), r"shard_path: language index 9 is not in \[0, 4\)"),
])
def test_a_bad_method_argument_is_a_config_error_naming_it(stream, call, match):
    with pytest.raises(ConfigError, match=match):
        call(stream)


def test_the_integrations_name_a_stream_that_is_not_one():
    pytest.importorskip("pytorch_lightning")
    from climbstream.integrations.lightning import ClimbCallback

    with pytest.raises(ConfigError, match=r"ClimbCallback: stream: expected a climbstream.ClimbStream, got str"):
        ClimbCallback("corpus/")


def test_storage_as_the_documented_dict_reads_an_s3_corpus(mds_corpus, text_corpus, s3_bucket):  # noqa: F811
    from climbstream.cli import main
    from tests.corpora import SEQ_LEN

    url = f"{s3_bucket.url}/corpus"
    assert main(["prepare", text_corpus, "--out", url, "--format", "mds", "--seq-len", str(SEQ_LEN),
                 "--shard-samples", "16", "--heldout-frac", "0.1", "--endpoint-url", s3_bucket.endpoint_url,
                 "--quiet"]) == 0
    settings = {"endpoint_url": s3_bucket.endpoint_url, "region": "us-east-1", "max_retries": 2}
    remote = ClimbStream(url, WEIGHTS, global_batch=B, seed=0, rank=0, world_size=1, storage=settings)
    local = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=0, rank=0, world_size=1)
    assert read_batches(remote, 3) == read_batches(local, 3)


def test_prepare_loader_names_an_accelerator_that_is_not_one(stream):
    pytest.importorskip("accelerate")
    from climbstream.integrations.accelerate import prepare_loader

    with pytest.raises(ConfigError, match=r"prepare_loader: accelerator: expected an accelerate.Accelerator, got str"):
        prepare_loader("accelerator", stream)

