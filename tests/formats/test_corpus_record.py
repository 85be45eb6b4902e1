"""The corpus record a state keeps: growth told from rewrites, and the rewritten shards named."""

from __future__ import annotations

import json
from types import SimpleNamespace

from climbstream.formats.corpus_record import (TAGS, CorpusVersion, LanguageRecord, compare_language,
                                                shard_tags)


def shards(n: int, prefix: str = "fr", start: int = 0, sha: str = "a") -> list:
    return [SimpleNamespace(path=f"{prefix}/shard-{i:05d}.mds", sha256=sha * 64, samples=32)
            for i in range(start, start + n)]


def test_appended_shards_are_growth_and_an_unchanged_list_is_the_same():
    old = shards(28)
    saved = LanguageRecord.of(old)
    assert compare_language("fr", saved, shard_tags(old), old).kind == "same"
    assert compare_language("fr", saved, shard_tags(old), old + shards(29, start=28)).kind == "appended"


def test_added_and_retired_languages():
    assert compare_language("de", LanguageRecord.of([]), "", shards(3, "de")).kind == "added"
    old = shards(4)
    assert compare_language("fr", LanguageRecord.of(old), shard_tags(old), []).kind == "retired"


def test_a_rewritten_shard_is_named_by_index_and_path():
    old = shards(28)
    new = list(old)
    new[3] = SimpleNamespace(path=old[3].path, sha256="b" * 64, samples=32)
    change = compare_language("fr", LanguageRecord.of(old), shard_tags(old), new + shards(2, start=28))
    assert change.kind == "rewritten"
    assert change.shards == "train[3] fr/shard-00003.mds"


def test_removed_shards_are_named_as_removed():
    old = shards(10)
    change = compare_language("fr", LanguageRecord.of(old), shard_tags(old), old[:7])
    assert (change.kind, change.shards) == ("rewritten", "train[7..9] (removed)")


def test_in_a_long_list_the_run_holding_the_rewrite_is_named_and_the_state_stays_small():
    old = shards(1000)
    tags = shard_tags(old)
    assert len(tags) <= TAGS * 8
    new = list(old)
    new[500] = SimpleNamespace(path=old[500].path, sha256="c" * 64, samples=32)
    change = compare_language("fr", LanguageRecord.of(old), tags, new)
    assert change.shards == "train[496..511] (one of fr/shard-00496.mds .. fr/shard-00511.mds)"
    version = CorpusVersion.of(0, {"fr": old})
    assert len(json.dumps(version.to_dict())) < 150
    assert CorpusVersion.from_dict(json.loads(json.dumps(version.to_dict())), "state") == version
