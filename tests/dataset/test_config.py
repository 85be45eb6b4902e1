"""Bad configurations fail early with errors that name the key or file."""

from __future__ import annotations

import pytest
import torch
import yaml

from climbstream import ClimbStream
from climbstream.errors import ConfigError, ManifestError, StorageError

from tests.corpora import WEIGHTS


def write_config(tmp_path, **data):
    path = tmp_path / "climbstream.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_config_file_builds_the_same_stream_as_keyword_arguments(tmp_path, mds_corpus):
    path = write_config(tmp_path, sources=[mds_corpus], weights=WEIGHTS, global_batch=8, seed=2, world_size=1, rank=0)
    a = ClimbStream.from_config(path)
    b = ClimbStream(mds_corpus, WEIGHTS, global_batch=8, seed=2, rank=0, world_size=1)
    assert a.describe(0, 40) == b.describe(0, 40)


def test_unknown_key_is_named_with_a_suggestion(tmp_path, mds_corpus):
    path = write_config(tmp_path, sources=[mds_corpus], weights=WEIGHTS, global_batch=8, global_bach=3)
    with pytest.raises(ConfigError, match=r"unknown key 'global_bach'; did you mean 'global_batch'"):
        ClimbStream.from_config(path)


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"aa": 1, "bb": 1, "cc": 1}, "no weight for dd"),
        ({"aa": 1, "bb": 1, "cc": 1, "dd": 1, "zz": 1}, "zz not in the corpus"),
        ({"aa": -1, "bb": 1, "cc": 1, "dd": 1}, "weights.aa: weight -1.0 is negative"),
        ({"aa": 0, "bb": 0, "cc": 0, "dd": 0}, "all weights are zero"),
        ({"aa": "x", "bb": 0, "cc": 0, "dd": 0}, "weights.aa: weight 'x' is not a number"),
    ],
)
def test_bad_weights_are_named(mds_corpus, weights, message):
    with pytest.raises(ConfigError, match=message):
        ClimbStream(mds_corpus, weights, global_batch=8, rank=0, world_size=1)


def test_missing_manifest_names_the_path(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises((ManifestError, StorageError, ConfigError), match="nowhere"):
        ClimbStream(missing, WEIGHTS, global_batch=8, rank=0, world_size=1)


def test_missing_config_file_and_required_keys(tmp_path, mds_corpus):
    with pytest.raises(ConfigError, match="does not exist"):
        ClimbStream.from_config(str(tmp_path / "none.yaml"))
    path = write_config(tmp_path, sources=[mds_corpus], weights=WEIGHTS)
    with pytest.raises(ConfigError, match="missing required key 'global_batch'"):
        ClimbStream.from_config(path)


def test_global_batch_must_divide_among_ranks(mds_corpus):
    with pytest.raises(ConfigError, match="not divisible by the data-parallel size 3"):
        ClimbStream(mds_corpus, WEIGHTS, global_batch=8, rank=0, world_size=3)


def test_wrong_dataloader_batch_size_is_caught(mds_corpus):
    s = ClimbStream(mds_corpus, WEIGHTS, global_batch=8, rank=0, world_size=2)
    one_message = r"^DataLoader batch_size 8: .* = 8 / 2 = 4 samples; use stream.dataloader\(\) or batch_size=4$"
    with pytest.raises(ConfigError, match=one_message):
        s.dataloader(batch_size=8)
    with pytest.raises(ConfigError, match=one_message):
        next(iter(torch.utils.data.DataLoader(s, batch_size=8)))  # refused before a sample is read
    with pytest.raises(ConfigError, match=r"mark_consumed: a batch of 8 samples, .* holds 4 .*: use batch_size=4"):
        s.mark_consumed({"position": torch.arange(8)})


def test_allocation_file_is_accepted_as_weights(tmp_path, mds_corpus):
    alloc = tmp_path / "alloc.yaml"
    alloc.write_text(yaml.safe_dump({"version": 1, "method": "uniform", "languages": {
        n: {"ratio": 0.25} for n in ("aa", "bb", "cc", "dd")}}))
    s = ClimbStream(mds_corpus, str(alloc), global_batch=8, rank=0, world_size=1)
    assert [st["weights"]["aa"] for st in s.stages()] == [2**30]


def test_sizes_in_config_are_parsed(tmp_path, mds_corpus):
    from climbstream.stream.config.stream_config import StreamConfig

    c = StreamConfig.from_dict({"sources": [mds_corpus], "weights": WEIGHTS, "global_batch": 8, "cache_limit": "2GiB"})
    assert c.cache_limit == 2 * 2**30
    with pytest.raises(ConfigError, match="cache_limit: '2 parsecs' is not a size"):
        StreamConfig.from_dict({"sources": [mds_corpus], "weights": WEIGHTS, "global_batch": 8, "cache_limit": "2 parsecs"})


def test_a_plain_loader_with_workers_and_another_batch_size_is_refused_in_its_workers(mds_corpus):
    # accelerate's users wrote DataLoader(stream, B / 2, num_workers=2) for a one-rank stream: the workers'
    # round robin by global batch then misplaced positions without an error
    s = ClimbStream(mds_corpus, WEIGHTS, global_batch=8, rank=0, world_size=1)
    with pytest.raises(ConfigError, match=r"DataLoader batch_size 4: .* = 8 / 1 = 8 samples; .*batch_size=8"):
        next(iter(torch.utils.data.DataLoader(s, batch_size=4, num_workers=2)))


@pytest.mark.parametrize("within", [-1, float("nan"), "400", True])
def test_a_bad_read_whole_within_is_named(mds_corpus, within):
    with pytest.raises(ConfigError, match=r"read_whole_within: expected a number of global batches >= 0"):
        ClimbStream(mds_corpus, WEIGHTS, global_batch=8, rank=0, world_size=1, read_whole_within=within)


def test_read_whole_within_in_a_config_file_reaches_the_stream(tmp_path, mds_corpus):
    path = write_config(tmp_path, sources=[mds_corpus], weights=WEIGHTS, global_batch=8, read_whole_within=50)
    assert ClimbStream.from_config(path).read_whole_within == 50.0
