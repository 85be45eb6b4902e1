"""A corpus that grows mid-run, audited by token content: each sample once per epoch across the change.

The corpus before the change lists the first half of aa's and bb's train shards and no dd;
`climbstream manifest --append` over the same folder appends the rest and adds dd. A run
trains CHANGE positions on the old corpus and resumes on the grown one with
`load_state_dict(state, allow_manifest_change=True)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest

from climbstream import ClimbStream
from climbstream.cli import main
from climbstream.errors import ConfigError, CorpusRewriteError, StateError
from climbstream.formats.manifest import MANIFEST_NAME, Manifest, to_json
from climbstream.read.reader import open_reader
from tests.corpora import WEIGHTS
from tests.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

from .helpers import by_position, free_port, read_batches

B = 16
CHANGE = 5 * B
OLD_WEIGHTS = {"aa": 0.4, "bb": 0.3, "cc": 0.3}


def edit_manifest(root: str, edit) -> None:
    path = os.path.join(root, MANIFEST_NAME)
    with open(path) as f:
        data = json.load(f)
    data.pop("content_sha256")
    edit(data)
    for entry in data["languages"].values():
        entry["samples"] = sum(s["samples"] for s in entry["train"])
        entry["tokens"] = entry["samples"] * data["seq_len"]
    with open(path, "w") as f:
        f.write(to_json(data))


def cut(data: dict) -> None:
    """The corpus before the change: half of aa and bb, no dd."""
    for lang in ("aa", "bb"):
        train = data["languages"][lang]["train"]
        data["languages"][lang]["train"] = train[:len(train) // 2]
    del data["languages"]["dd"]


@pytest.fixture(scope="module")
def corpora(mds_corpus, tmp_path_factory) -> tuple[str, str]:
    before = str(tmp_path_factory.mktemp("growth") / "before")
    shutil.copytree(mds_corpus, before)
    edit_manifest(before, cut)
    grown = before.replace("before", "grown")
    shutil.copytree(before, grown)
    assert main(["manifest", grown, "--append", "--quiet"]) == 0
    return before, grown


def content(tokens) -> str:
    return hashlib.sha1(tokens.numpy().tobytes()).hexdigest()


def corpus_contents(root: str) -> dict[str, Counter]:
    manifest = Manifest.load(root)
    reader = open_reader(manifest)
    try:
        return {lang: Counter(content(_tensor(reader.read_with(lang, "train", s, i, (), True)[0]))
                              for s, shard in enumerate(manifest.shards(lang)) for i in range(shard.samples))
                for lang in manifest.languages}
    finally:
        reader.close()


def _tensor(tokens):
    import torch

    return torch.as_tensor(tokens)


def drawn_contents(batches_list: list[list[dict]], languages: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {n: [] for n in languages}
    for batches in batches_list:
        for batch in batches:
            for key in batch["keys"]:
                out[languages[key[0]]].append(key[3])
    return out


def read_contents(stream, num_batches: int, num_workers: int = 0) -> list[dict]:
    """Batches with the full content digest (helpers.sample_key keeps 16 hex digits: enough here)."""
    return read_batches(stream, num_batches, num_workers=num_workers)


def run_before(before: str) -> tuple[list[dict], dict]:
    first = ClimbStream(before, OLD_WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    batches = read_contents(first, CHANGE // B)
    return batches, first.state_dict()


def audit_epoch(contents: dict[str, Counter], drawn: dict[str, list[str]], lang: str, epoch: int) -> None:
    """The language's first `epoch` draws hold every sample of the grown corpus exactly once."""
    short = Counter({k[:16]: v for k, v in contents[lang].items()})
    got = Counter(drawn[lang][:epoch])
    assert len(drawn[lang]) >= epoch, f"{lang}: only {len(drawn[lang])} draws read"
    assert got == short, f"{lang}: {sum((got - short).values())} repeated, {sum((short - got).values())} not reached"


def test_appended_shards_and_an_added_language_are_each_drawn_once_in_the_epoch(corpora):
    before, grown = corpora
    head, state = run_before(before)
    second = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    with pytest.raises(StateError, match="corpus changed"):
        second.load_state_dict(state)
    second.load_state_dict(state, allow_manifest_change=True)
    assert second.position == CHANGE
    tail = read_contents(second, 110)
    languages = second.languages
    drawn = drawn_contents([head, tail], languages)
    contents = corpus_contents(grown)
    epochs = second.samples_per_epoch()
    for lang in ("aa", "bb", "cc", "dd"):  # grown mid-epoch, grown, unchanged, added
        audit_epoch(contents, drawn, lang, epochs[lang])
    # positions before the change are unchanged under the changed state
    replay = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    replay.load_state_dict({**second.state_dict(), "position": 0})
    assert by_position(read_contents(replay, CHANGE // B)) == by_position(head)
    # and the changed state resumes where it left off, on any number of workers
    state = second.state_dict()
    later = read_contents(second, 3)
    for workers in (0, 2):
        resumed = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
        resumed.load_state_dict(state)
        assert by_position(read_contents(resumed, 3, num_workers=workers)) == by_position(later)


def test_the_changed_state_records_the_corpus_each_stage_read(corpora):
    before, grown = corpora
    _, state = run_before(before)
    second = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    second.load_state_dict(state, allow_manifest_change=True)
    saved = second.state_dict()
    assert (state["version"], saved["version"]) == (1, 2)  # an older climbstream refuses a grown state
    versions = saved["corpus"]["versions"]
    assert [v["start"] for v in versions] == [0, CHANGE]
    assert versions[0]["languages"]["aa"]["shards"] == 19 and versions[1]["languages"]["aa"]["shards"] == 38
    assert "dd" not in versions[0]["languages"] and versions[1]["languages"]["dd"]["samples"] == 34
    assert len(json.dumps(saved["corpus"])) < 4000


def test_a_retired_language_with_weight_zero_continues_the_others_exactly(mds_corpus, tmp_path):
    root = str(tmp_path / "corpus")
    shutil.copytree(mds_corpus, root)
    first = ClimbStream(root, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    head = read_contents(first, CHANGE // B)
    state = first.state_dict()
    uninterrupted = ClimbStream(mds_corpus, {**WEIGHTS, "cc": 0.0}, global_batch=B, seed=4, rank=0, world_size=1)
    uninterrupted.load_state_dict(state)
    uninterrupted.add_stage({**WEIGHTS, "cc": 0.0})
    expected = by_position(read_contents(uninterrupted, 20))
    shutil.rmtree(os.path.join(root, "cc"))
    assert main(["manifest", root, "--append", "--quiet"]) == 0
    second = ClimbStream(root, {**WEIGHTS, "cc": 0.0}, global_batch=B, seed=4, rank=0, world_size=1)
    second.load_state_dict(state, allow_manifest_change=True)
    assert by_position(read_contents(second, 20)) == expected  # nothing of aa, bb or dd changed
    assert head
    with pytest.raises(ConfigError, match="cc: positive weight but the corpus has no training samples"):
        ClimbStream(root, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)


def shrunk_bb(corpora, tmp_path):
    """(the state saved before the change, a copy of the corpus whose bb lost its last 2 shards)."""
    before, _ = corpora
    _, state = run_before(before)
    shrunk = str(tmp_path / "shrunk")
    shutil.copytree(before, shrunk)

    def drop(data):
        data["languages"]["bb"]["train"] = data["languages"]["bb"]["train"][:-2]

    edit_manifest(shrunk, drop)
    return state, shrunk


def test_a_shrunk_language_at_weight_zero_restarts_its_epochs_when_it_gets_weight_again(corpora, tmp_path):
    state, shrunk = shrunk_bb(corpora, tmp_path)
    stream = ClimbStream(shrunk, {**OLD_WEIGHTS, "bb": 0.0}, global_batch=B, seed=4, rank=0, world_size=1)
    stream.load_state_dict(state, allow_manifest_change=True)  # bb retired from here: allowed
    assert stream.corpus_versions()[-1]["languages"]["bb"]["restart"] is True
    later = CHANGE + 4 * B
    stream.add_stage(OLD_WEIGHTS, position=later)
    plan = stream.plan(later, later + 60 * B)
    bb = stream.languages.index("bb")
    n = stream.samples_per_epoch()["bb"]
    drawn = list(zip(plan.shard[plan.lang == bb].tolist(), plan.index[plan.lang == bb].tolist()))[:n]
    shards = Manifest.load(shrunk).shards("bb")
    assert sorted(drawn) == [(s, i) for s, shard in enumerate(shards) for i in range(shard.samples)]


def test_a_rewritten_shard_is_refused_naming_it(corpora, tmp_path):
    before, grown = corpora
    _, state = run_before(before)
    rewritten = str(tmp_path / "rewritten")
    shutil.copytree(grown, rewritten)

    def rewrite(data):
        data["languages"]["aa"]["train"][3]["sha256"] = "0" * 64

    edit_manifest(rewritten, rewrite)
    stream = ClimbStream(rewritten, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    with pytest.raises(CorpusRewriteError, match=r"aa: .*train\[3\] aa/train/shard\.00003\.mds"):
        stream.load_state_dict(state, allow_manifest_change=True)


def test_shards_removed_from_a_language_that_keeps_weight_are_refused(corpora, tmp_path):
    state, shrunk = shrunk_bb(corpora, tmp_path)
    stream = ClimbStream(shrunk, OLD_WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    with pytest.raises(CorpusRewriteError, match=r"bb: .*train\[7\.\.8\] \(removed\).*weight 0"):
        stream.load_state_dict(state, allow_manifest_change=True)


def test_inspect_shows_the_stages_with_the_corpus_each_read(corpora, tmp_path, capsys):
    import yaml

    before, grown = corpora
    _, state = run_before(before)
    saved = tmp_path / "state.json"
    saved.write_text(json.dumps(state))
    config = tmp_path / "climbstream.yaml"
    config.write_text(yaml.safe_dump({"sources": [grown], "weights": WEIGHTS, "global_batch": B, "seed": 4}))
    assert main(["inspect", str(config), "--state", str(saved), "--stages"]) == 2  # a changed corpus: say so
    assert "allow_manifest_change" in capsys.readouterr().err
    assert main(["inspect", str(config), "--state", str(saved), "--allow-manifest-change", "--stages"]) == 0
    out = capsys.readouterr().out
    assert f"stage 1 from position {CHANGE}: aa 0.400 bb 0.300 cc 0.200 dd 0.100" in out
    assert f"corpus (read from position {CHANGE}):" in out
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("aa ")]
    assert [(line[1], line[3]) for line in lines] == [("19", "304"), ("38", "608")]


def test_partitioned_ranks_and_workers_draw_the_grown_corpus_once_per_epoch(corpora):
    before, grown = corpora
    first = ClimbStream(before, OLD_WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1, partitions=2)
    head = read_contents(first, CHANGE // B)
    state = first.state_dict()
    assert state["partitions"] == 2
    ranks = [ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=r, world_size=2, partitions=2)
             for r in range(2)]
    got: dict = {}
    for stream in ranks:
        stream.load_state_dict(state, allow_manifest_change=True)
        got.update(by_position(read_contents(stream, 110, num_workers=2)))
    plan = ranks[0].plan(CHANGE, CHANGE + 110 * B)
    assert {p: k[:3] for p, k in got.items()} == {CHANGE + j: (int(plan.lang[j]), int(plan.shard[j]),
                                                               int(plan.index[j])) for j in range(len(plan))}
    # under partitions a block's draws are placed by owner, not in k order: audit draws k < N by the plan's k
    got.update(by_position(head))
    whole = ranks[0].plan(0, CHANGE + 110 * B)
    before_plan = first.plan(0, CHANGE)
    assert whole.shard[:CHANGE].tolist() == before_plan.shard.tolist()  # positions before the change unchanged
    contents = corpus_contents(grown)
    for i, lang in enumerate(ranks[0].languages):  # aa, bb grown mid-epoch, cc unchanged, dd added
        n = ranks[0].samples_per_epoch()[lang]
        drawn = [got[p][3] for p in np.flatnonzero((whole.lang == i) & (whole.k < n)).tolist()]
        audit_epoch(contents, {lang: drawn}, lang, n)
    appended = (plan.lang == 0) & (plan.shard >= 19)  # aa's appended shards have owners in both partitions
    assert set(plan.owner[appended].tolist()) == {0, 1}


def _rank_main(rank: int, world: int, port: int, grown: str, state: dict, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        stream = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4)
        stream.load_state_dict(state, allow_manifest_change=True)
        batches = read_contents(stream, 6, num_workers=1)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"batches": batches, "state": stream.state_dict()}, f)
    finally:
        dist.destroy_process_group()


def test_the_changed_state_resumes_on_two_gloo_ranks(corpora, tmp_path):
    import torch.multiprocessing as mp

    before, grown = corpora
    _, state = run_before(before)
    mp.spawn(_rank_main, args=(2, free_port(), grown, state, str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0]["state"] == results[1]["state"]
    single = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    single.load_state_dict(state, allow_manifest_change=True)
    reference = by_position(read_contents(single, 6))
    merged = by_position([b for res in results for b in res["batches"]])
    assert {p: list(k) for p, k in merged.items()} == {p: list(k) for p, k in reference.items()}


def test_growth_over_s3_with_manifest_append_equals_the_local_growth(corpora, s3_bucket, tmp_path):  # noqa: F811
    before, grown = corpora
    client = s3_bucket.client()
    for folder, _, files in os.walk(before):
        for name in files:
            path = os.path.join(folder, name)
            client.upload_file(path, s3_bucket.name, "corpus/" + os.path.relpath(path, before).replace(os.sep, "/"))
    url = f"{s3_bucket.url}/corpus"
    options = dict(storage=s3_bucket.options(), cache_dir=str(tmp_path / "cache"))
    remote = ClimbStream(url, OLD_WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1, **options)
    head, local_state = run_before(before)
    assert by_position(read_contents(remote, CHANGE // B)) == by_position(head)
    state = remote.state_dict()
    assert main(["manifest", url, "--append", "--endpoint-url", s3_bucket.endpoint_url, "--quiet"]) == 0
    grown_remote = ClimbStream(url, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1, **options)
    grown_remote.load_state_dict(state, allow_manifest_change=True)
    local = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    local.load_state_dict(local_state, allow_manifest_change=True)
    assert by_position(read_contents(grown_remote, 12, num_workers=2)) == by_position(read_contents(local, 12))


def test_a_stateful_dataloader_resumes_the_changed_stream_exactly(corpora):
    import itertools

    from torchdata.stateful_dataloader import StatefulDataLoader

    from .helpers import describe_batch

    before, grown = corpora
    _, state = run_before(before)

    def changed():
        stream = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
        stream.load_state_dict(state, allow_manifest_change=True)
        return stream

    reference = by_position(read_contents(changed(), 6))
    loader = StatefulDataLoader(changed(), batch_size=B, num_workers=2)
    it = iter(loader)
    first = [describe_batch(b) for b in itertools.islice(it, 3)]
    saved = json.loads(json.dumps(loader.state_dict()))
    del it
    again = StatefulDataLoader(changed(), batch_size=B, num_workers=2)
    again.load_state_dict(saved)
    rest = [describe_batch(b) for b in itertools.islice(iter(again), 3)]
    assert by_position(first + rest) == reference


def test_trainer_resumes_after_growth_through_the_constructor_flag_and_loader_states(corpora):
    """Integrations call load_state_dict(state) themselves: ClimbStream(allow_manifest_change=True) lets
    them continue on the grown corpus; a multi-worker StatefulDataLoader state is refused in its workers
    (each saved its own position) with the fix, and the stream takes it."""
    import itertools

    from torchdata.stateful_dataloader import StatefulDataLoader

    from climbstream.integrations.torchtitan import ClimbTitanDataloader

    from .helpers import describe_batch

    before, grown = corpora
    first = ClimbStream(before, OLD_WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    loader = StatefulDataLoader(first, batch_size=B, num_workers=2)
    it = iter(loader)
    _ = list(itertools.islice(it, CHANGE // B))
    loader_state = json.loads(json.dumps(loader.state_dict()))
    del it
    reference = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1)
    reference.load_state_dict(loader_state, allow_manifest_change=True)
    assert reference.position == CHANGE
    expected = by_position(read_contents(reference, 4))

    flagged = ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1, allow_manifest_change=True)
    resumed = flagged.dataloader()
    resumed.load_state_dict(loader_state)  # what the accelerate / HF / Lightning integrations do
    assert by_position([describe_batch(b) for b in itertools.islice(resumed, 4)]) == expected

    again = StatefulDataLoader(ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1,
                                           allow_manifest_change=True), batch_size=B, num_workers=2)
    again.load_state_dict(loader_state)
    with pytest.raises(StateError, match="another version of the corpus"):
        next(iter(again))

    titan_state = {"dp_rank_0": __import__("pickle").dumps(loader_state), "world_size": 1}
    titan = ClimbTitanDataloader(ClimbStream(grown, WEIGHTS, global_batch=B, seed=4, rank=0, world_size=1,
                                             allow_manifest_change=True), 0, 1, num_workers=2)
    titan.load_state_dict(titan_state)
    assert titan.stream.position == CHANGE


def test_epoch_caps_count_epochs_across_the_change(mds_corpus, tmp_path):
    """aa has 2 shards (32 samples) before the change and is in its second epoch when 36 shards are
    appended: that epoch grows to 32 + 576 draws, so a cap of 2 epochs stops the stream after 640
    draws of aa (not 2 x 608), and no sample of aa is drawn more than twice."""
    before = str(tmp_path / "before")
    shutil.copytree(mds_corpus, before)

    def two_shards(data):
        data["languages"]["aa"]["train"] = data["languages"]["aa"]["train"][:2]

    edit_manifest(before, two_shards)
    grown = str(tmp_path / "grown")
    shutil.copytree(before, grown)
    assert main(["manifest", grown, "--append", "--quiet"]) == 0
    weights = {"aa": 0.97, "bb": 0.01, "cc": 0.01, "dd": 0.01}  # aa reaches its cap first
    change = 3 * B
    first = ClimbStream(before, weights, global_batch=B, seed=4, rank=0, world_size=1)
    head = read_contents(first, change // B)
    state = first.state_dict()
    aa = first.languages.index("aa")
    assert 32 < int(first.schedule.counts_at(change)[aa]) < 64  # inside aa's second epoch
    second = ClimbStream(grown, weights, global_batch=B, seed=4, rank=0, world_size=1, epoch_cap=2.0,
                         on_epoch_cap="stop")
    second.load_state_dict(state, allow_manifest_change=True)
    tail = read_contents(second, 10_000)  # until the cap stops the stream
    end = change + len(tail) * B
    assert int(second.schedule.counts_at(end)[aa]) <= 640 < int(second.schedule.counts_at(end + B)[aa])
    drawn = Counter(key[3] for batch in head + tail for key in batch["keys"] if key[0] == aa)
    assert max(drawn.values()) == 2 and len(drawn) > 608 - B
