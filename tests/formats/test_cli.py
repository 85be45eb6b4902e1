"""The `prepare` and `manifest` subcommands, through the real CLI entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from climbstream.cli import main as cli_main
from climbstream.formats.manifest import MANIFEST_NAME, Manifest
from climbstream.read.reader import open_reader


def test_prepare_help_lists_the_options_and_exits_zero():
    out = subprocess.run([sys.executable, "-m", "climbstream", "prepare", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for flag in ("--from-gettext", "--langs", "--format", "--seq-len", "--tail", "--heldout-frac",
                 "--shard-samples", "--tokenizer", "--text-field", "--out", "--quiet"):
        assert flag in out.stdout
    assert "manifest" in subprocess.run([sys.executable, "-m", "climbstream", "--help"],
                                        capture_output=True, text=True, timeout=120).stdout


def test_prepare_cli_writes_a_readable_corpus_and_refuses_to_overwrite(corpus_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    args = ["prepare", corpus_dir, "--out", out, "--format", "wds", "--seq-len", "16", "--langs", "aa,cc",
            "--heldout-frac", "0.1", "--shard-samples", "64"]
    assert cli_main(args + ["--quiet"]) == 0
    manifest = Manifest.load(out)
    assert manifest.languages == ["aa", "cc"] and manifest.seq_len == 16 and manifest.format == "wds"
    assert manifest.tokenizer == {"kind": "bytes", "vocab_size": 257, "eos_id": 256, "hash": "bytes-v1"}
    assert open_reader(manifest).read("cc", "train", 0, 0).shape == (16,)
    capsys.readouterr()
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert f"{out}: already holds a prepared corpus" in err and "--overwrite" in err
    assert cli_main(args + ["--overwrite", "--quiet", "--seq-len", "8"]) == 0
    assert Manifest.load(out).seq_len == 8


def test_prepare_cli_from_gettext_on_a_machine_without_catalogs(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert cli_main(["prepare", "--from-gettext", str(tmp_path / "none"), "--langs", "3", "--out", out,
                     "--seq-len", "32"]) == 0
    printed = capsys.readouterr().out
    assert f"{out}/{MANIFEST_NAME}: 3 languages, seq_len 32" in printed
    assert len(Manifest.load(out).languages) == 3


def test_prepare_cli_with_a_huggingface_tokenizer(corpus_dir, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train([os.path.join(corpus_dir, f) for f in sorted(os.listdir(corpus_dir))],
              trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"]))
    path = str(tmp_path / "tokenizer.json")
    tok.save(path)
    out = str(tmp_path / "out")
    assert cli_main(["prepare", corpus_dir, "--out", out, "--tokenizer", path, "--seq-len", "8", "--quiet"]) == 0
    manifest = Manifest.load(out)
    info = manifest.tokenizer
    assert info["kind"] == "hf-tokenizers" and info["eos_id"] == tok.token_to_id("</s>") == 1
    assert info["vocab_size"] == tok.get_vocab_size() and len(info["hash"]) == 64
    sample = open_reader(manifest).read("aa", "train", 0, 0)
    first_doc = Tokenizer.from_file(path).encode("[id=doc-0]", add_special_tokens=False).ids
    np.testing.assert_array_equal(sample[:len(first_doc)], first_doc)


def test_parquet_input_without_pyarrow_is_a_clear_error(tmp_path, capsys, monkeypatch):
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(__import__("sys").modules, name, None)  # what an uninstalled package looks like
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "fr.parquet").write_bytes(b"PAR1")
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "fr.parquet: reading Parquet and Arrow files needs pyarrow, which is not installed" in err
    assert "pip install 'climbstream[parquet]'" in err


def test_prepare_progress_counts_input_bytes_toward_a_total(corpus_dir, tmp_path, capsys):
    total = sum(os.path.getsize(os.path.join(corpus_dir, f)) for f in os.listdir(corpus_dir))
    assert cli_main(["prepare", corpus_dir, "--out", str(tmp_path / "out"), "--seq-len", "16"]) == 0
    frames = [f for f in capsys.readouterr().err.replace("\r", "\n").splitlines() if f.startswith("prepare:")]
    assert frames, "no progress bar"
    from tqdm import tqdm

    shown = f"/{tqdm.format_sizeof(total)} ["  # the total, scaled as the bar writes it (33.8M)
    assert all(shown in f for f in frames), (shown, frames[:3])
    assert frames[0].startswith("prepare:   0%") and "100%" in frames[-1]


def _compress(path: str, suffix: str) -> None:
    import bz2
    import gzip
    import lzma

    import zstd

    data = open(path, "rb").read()
    packed = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, ".zst": zstd.compress}[suffix](data)
    with open(path + suffix, "wb") as f:
        f.write(packed)
    os.remove(path)


def test_compressed_inputs_give_the_same_corpus_as_plain_ones(tmp_path):
    import json
    import shutil

    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir()
    with open(plain / "de.jsonl", "w", encoding="utf-8") as f:
        for i in range(300):
            f.write(json.dumps({"text": f"Satz Nummer {i} " * (i % 7 + 1)}) + "\n")
    (plain / "fr").mkdir()
    for part in range(4):
        (plain / "fr" / f"part-{part}.txt").write_text("\n\n".join(f"phrase {part}.{i} " * 5 for i in range(80)))
    shutil.copytree(plain, packed)
    _compress(str(packed / "de.jsonl"), ".gz")
    for part, suffix in enumerate((".gz", ".bz2", ".xz", ".zst")):
        _compress(str(packed / "fr" / f"part-{part}.txt"), suffix)
    for src in (plain, packed):
        assert cli_main(["prepare", str(src), "--out", str(tmp_path / f"out-{src.name}"), "--seq-len", "16",
                         "--quiet"]) == 0
    a, b = (Manifest.load(str(tmp_path / f"out-{n}")) for n in ("plain", "packed"))
    assert a.languages == b.languages == ["de", "fr"]
    assert a.fingerprint() == b.fingerprint()  # same shards, same bytes, same held-out split


def test_an_unknown_input_file_is_an_error_naming_it_and_dotfiles_are_skipped_aloud(tmp_path, capsys, caplog):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "fr.txt").write_text("bonjour le monde " * 50)
    (tmp_path / "in" / ".DS_Store").write_bytes(b"\0")
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "a"), "--seq-len", "8", "--quiet"]) == 0
    assert "skipping the hidden file" in caplog.text
    (tmp_path / "in" / "de.jsonl.lz4").write_bytes(b"x")
    assert cli_main(["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "b"), "--seq-len", "8", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "de.jsonl.lz4: not a known input file" in err and ".gz, .bz2, .xz or .zst" in err
