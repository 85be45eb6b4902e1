"""Hostile or mistaken input: each is one line on stderr, exit 2, naming the key; never a traceback."""

from __future__ import annotations

import json

import pytest
import yaml

from climbstream import ClimbStream, StorageOptions
from climbstream.cli import main
from climbstream.stream.config.stream_config import StreamConfig
from tests.corpora import WEIGHTS


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def config_file(tmp_path, corpus, **over):
    data = {"sources": [corpus], "weights": WEIGHTS, "global_batch": 8, **over}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("over, message", [
    ({"cache_limit": "1.2.3GB"}, "cache_limit: '1.2.3GB' is not a size"),
    ({"cache_limit": "1e30GB"}, "cache_limit: '1e30GB' is more than 2**62 bytes"),
    ({"cache_limit": 10**40}, "cache_limit: 1" + "0" * 40 + " bytes is not a size between 0 and 2**62"),
    ({"seed": 1.0e23}, "seed: expected an integer, got 1e+23"),
    ({"seed": 10**23}, "seed: expected an integer in [0, 9223372036854775807]"),
    ({"epoch_cap": "lots"}, "epoch_cap: expected a positive number of epochs, got 'lots'"),
    ({"storage": {"max_retries": "many"}}, "storage.max_retries: expected int, got 'many'"),
    ({"stop_position": "x"}, "stop_position: expected an integer"),
    ({"global_batch": 10**30}, "global_batch: expected an integer in [1, 2147483648]"),
    ({"verify": "md5"}, "verify: expected auto, size or sha256, got 'md5'"),
    ({"weights": {"aa": 2**32, "bb": 1, "cc": 1, "dd": -2}}, "weights.dd: weight -2.0 is negative"),
])
def test_a_bad_config_value_is_one_line_naming_the_key(mds_corpus, tmp_path, capsys, over, message):
    code, err = run_cli(capsys, "inspect", config_file(tmp_path, mds_corpus, **over), "--positions", "0:4")
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    assert message in err


def test_huge_weights_are_ratios_like_any_other(mds_corpus):
    huge = ClimbStream(mds_corpus, {"aa": 1e308, "bb": 1e308, "cc": 0, "dd": 0}, global_batch=8, rank=0, world_size=1)
    assert huge.stages()[0]["weights"] == {"aa": 2**31, "bb": 2**31, "cc": 0, "dd": 0}


@pytest.mark.parametrize("edit, message", [
    ({"position": "abc"}, "position: expected an integer in [0, 4611686018427387904], got 'abc'"),
    ({"position": 1e30}, "position: expected an integer in [0, 4611686018427387904], got 1e+30"),
    ({"stages": None}, "stages: expected a list of {start, weights} mappings, got None"),
    ({"seed": -4}, "seed: expected an integer in [0, 9223372036854775807], got -4"),
    ({"stages": [{"start": 0, "weights": {"aa": 2**31, "bb": 2**31, "cc": 1, "dd": 0}}]},
     "stages[0]: weights sum to 4294967297, not 2**32 = 4294967296; derive them from ratios"),
])
def test_a_bad_saved_state_is_one_line_naming_the_field(mds_corpus, tmp_path, capsys, edit, message):
    config = config_file(tmp_path, mds_corpus)
    state = {**ClimbStream.from_config(config, rank=0, world_size=1).state_dict(), **edit}
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    code, err = run_cli(capsys, "inspect", config, "--state", str(path))
    assert code == 2 and "\n" not in err and message in err, err
    assert str(path) in err


def test_a_position_inside_a_global_batch_resumes_at_its_end_and_says_so(mds_corpus, caplog):
    s = ClimbStream(mds_corpus, WEIGHTS, global_batch=32, rank=0, world_size=1)
    state = {**s.state_dict(), "position": 33}
    s.load_state_dict(state)
    assert s.position == 64
    assert "position 33 is inside global batch 1; resuming at its end, 64" in caplog.text


def test_an_unbounded_inspect_range_and_a_zero_seq_len_are_refused(mds_corpus, text_corpus, tmp_path, capsys):
    code, err = run_cli(capsys, "inspect", config_file(tmp_path, mds_corpus), "--positions", "0:50000000")
    assert code == 2 and "--positions: 0:50000000 is 50000000 rows, more than 1000000" in err
    code, err = run_cli(capsys, "prepare", text_corpus, "--out", str(tmp_path / "p"), "--seq-len", "0", "--quiet")
    assert code == 2 and "seq_len must be an integer in [2, 2**24]" in err and "\n" not in err


def test_secrets_never_appear_in_a_repr():
    options = StorageOptions(access_key_id="AKIDVISIBLE", secret_access_key="s3cr3t-key", session_token="t0ken")
    config = StreamConfig(sources=["s3://b/c"], weights={"aa": 1}, global_batch=8,
                          storage={"access_key_id": "AKIDVISIBLE", "secret_access_key": "s3cr3t-key",
                                   "session_token": "t0ken"})
    for text in (repr(options), repr(config), str(config)):
        assert "s3cr3t-key" not in text and "t0ken" not in text and "***" in text, text
        assert "AKIDVISIBLE" in text  # the key id is not a secret, and says which credentials
