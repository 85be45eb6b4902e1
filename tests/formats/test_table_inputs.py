"""Parquet, Arrow and saved Hugging Face datasets as prepare input: the same corpus as JSONL.

Each input kind is written at test time from one JSONL corpus (real pyarrow files; the
saved dataset is the one in tests/data/hf_saved, written by `datasets.save_to_disk`, see
its make.py), prepared, and compared shard by shard with the JSONL corpus prepared alike:
same documents, same ids, same order give the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from climbstream.cli import main as cli_main
from climbstream.errors import ConfigError
from climbstream.prepare.corpus import FolderCorpus
from climbstream.prepare.prepare import prepare
from climbstream.prepare.table_input import LangFieldCorpus
from tests.formats.conftest import write_parallel_corpus

pa = pytest.importorskip("pyarrow")
import pyarrow.ipc as ipc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

SIZES = {"aa": 60, "bb": 25, "cc": 12}
HF_SAVED = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "hf_saved")


def _rows(raw: str, lang: str) -> list[dict]:
    with open(os.path.join(raw, f"{lang}.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _write_arrow(path: str, table, stream: bool = True) -> None:
    with pa.OSFile(path, "wb") as sink:
        writer = (ipc.new_stream if stream else ipc.new_file)(sink, table.schema)
        for batch in table.to_batches(max_chunksize=7):  # several record batches
            writer.write_batch(batch)
        writer.close()


def _shards(manifest) -> dict:
    return {lang: [s.sha256 for split in ("train", "heldout") for s in manifest.shards(lang, split)]
            for lang in manifest.languages}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return write_parallel_corpus(str(tmp_path_factory.mktemp("jsonl")), SIZES)


@pytest.fixture(scope="module")
def expected(raw, tmp_path_factory):
    return _shards(prepare(FolderCorpus(raw), str(tmp_path_factory.mktemp("want")), seq_len=24, shard_samples=8))


def _prepared(corpus, tmp_path) -> dict:
    return _shards(prepare(corpus, str(tmp_path / "out"), seq_len=24, shard_samples=8))


@pytest.mark.parametrize("kind", ["parquet", "arrow-stream", "arrow-file"])
def test_a_table_per_language_gives_the_jsonl_corpus(raw, expected, tmp_path, kind):
    folder = tmp_path / "in"
    folder.mkdir()
    for lang in SIZES:
        table = pa.Table.from_pylist(_rows(raw, lang))
        if kind == "parquet":
            pq.write_table(table, folder / f"{lang}.parquet", row_group_size=10)
        else:
            _write_arrow(str(folder / f"{lang}.arrow"), table, stream=kind == "arrow-stream")
    assert _prepared(FolderCorpus(str(folder)), tmp_path) == expected


def test_one_table_of_all_languages_split_by_its_language_column(raw, expected, tmp_path):
    rows = [dict(row, language=lang) for lang in SIZES for row in _rows(raw, lang)]
    rows = [rows[i] for i in sorted(range(len(rows)), key=lambda i: (i * 7919) % len(rows))]  # interleaved
    rows.sort(key=lambda r: int(r["id"].split("-")[1]))  # each language's rows stay in their order
    one = tmp_path / "all.parquet"
    pq.write_table(pa.Table.from_pylist(rows), one, row_group_size=16)
    corpus = LangFieldCorpus(str(one), "language")
    assert corpus.languages == sorted(SIZES)
    assert _prepared(corpus, tmp_path) == expected
    parts = tmp_path / "parts"  # the Hub's parquet export: a folder of parts
    parts.mkdir()
    half = len(rows) // 2
    pq.write_table(pa.Table.from_pylist(rows[:half]), parts / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[half:]), parts / "train-00001-of-00002.parquet")
    shutil.rmtree(tmp_path / "out")
    assert _prepared(LangFieldCorpus(str(parts), "language"), tmp_path) == expected


def test_a_dataset_saved_by_datasets_is_read_per_language_and_by_column(tmp_path):
    """tests/data/hf_saved/<lang>/ and tests/data/hf_saved/all/ were written by save_to_disk."""
    per_lang = FolderCorpus(os.path.join(HF_SAVED, "by_language"))
    mixed = LangFieldCorpus(os.path.join(HF_SAVED, "all"), "lang")
    assert per_lang.languages == mixed.languages == ["de", "fr", "sw"]
    for lang in per_lang.languages:
        docs = list(per_lang.documents(lang))
        assert docs == list(mixed.documents(lang)) and len(docs) > 10
        assert docs[0].id == f"{lang}-0" and docs[0].text.startswith(f"[{lang} 0]")
    a = _shards(prepare(per_lang, str(tmp_path / "a"), seq_len=16, shard_samples=4))
    b = _shards(prepare(mixed, str(tmp_path / "b"), seq_len=16, shard_samples=4))
    assert a == b


def test_cli_prepares_one_parquet_file_with_lang_field(raw, tmp_path, capsys):
    rows = [dict(row, lang=lang) for lang in SIZES for row in _rows(raw, lang)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "all.parquet")
    assert cli_main(["prepare", str(tmp_path / "all.parquet"), "--lang-field", "lang", "--out",
                     str(tmp_path / "out"), "--seq-len", "24", "--langs", "aa,cc", "--quiet"]) == 0
    with open(tmp_path / "out" / "climbstream-manifest.json") as f:
        assert sorted(json.load(f)["languages"]) == ["aa", "cc"]


def test_table_input_errors_name_the_file_and_the_column(raw, tmp_path):
    rows = [dict(row, lang=lang) for lang in SIZES for row in _rows(raw, lang)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "all.parquet")
    with pytest.raises(ConfigError, match=r"all.parquet: no column 'language' \(columns: \['id', 'text', 'lang'\]\)"):
        LangFieldCorpus(str(tmp_path / "all.parquet"), "language")
    with pytest.raises(ConfigError, match=r"all.parquet: no column 'body'"):
        list(LangFieldCorpus(str(tmp_path / "all.parquet"), "lang", text_field="body").documents("aa"))
    pq.write_table(pa.Table.from_pylist([{"text": "x", "lang": 3}]), tmp_path / "n.parquet")
    with pytest.raises(ConfigError, match="column 'lang' is int64, not text"):
        LangFieldCorpus(str(tmp_path / "n.parquet"), "lang")
    pq.write_table(pa.Table.from_pylist([{"text": "x", "lang": None}, {"text": "y", "lang": "aa"}]),
                   tmp_path / "null.parquet")
    with pytest.raises(ConfigError, match="null.parquet: 1 rows have no 'lang'"):
        LangFieldCorpus(str(tmp_path / "null.parquet"), "lang")
    with pytest.raises(ConfigError, match="--lang-field reads .parquet and .arrow files"):
        LangFieldCorpus(os.path.join(raw, "aa.jsonl"), "lang")
    (tmp_path / "bad.arrow").write_bytes(b"not arrow at all")
    (tmp_path / "in").mkdir()
    shutil.copy(tmp_path / "bad.arrow", tmp_path / "in" / "fr.arrow")
    with pytest.raises(ConfigError, match=r"fr.arrow: not a readable Arrow file"):
        list(FolderCorpus(str(tmp_path / "in")).documents("fr"))
