"""The README's "Command line" examples run as written on a small gettext corpus.

Each line of that block is run through the CLI in a scratch folder. Only what a test
machine cannot have is substituted, and the substitutions are listed here: the bucket of
`s3://bucket/...` is a fresh bucket on the moto S3 server; `texts/` is a small folder of
text; `tokenizer.json` is one built with `tokenizers` at test time; the demo (run in
tests/workflow/test_demo.py) is run here with 24 steps so that `report out/demo/train`
has a run to report on; `climbstream.yaml` is written for the corpus the first line makes.
"""

from __future__ import annotations

import os
import re
import shlex

import pytest
import yaml

from climbstream.cli import main
from climbstream.train.demo import run_demo
from tests.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_commands() -> list[list[str]]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("## Command line"):]
    section = section[: section.index("\n## ", 1)]
    lines = [line.strip() for line in section.splitlines() if line.startswith("    climbstream ")]
    return [shlex.split(line.split("  #")[0])[1:] for line in lines]


def _tokenizer(path) -> str:
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0, "a": 1, "b": 2, "</s>": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(path))
    return str(path)


def test_every_command_line_example_in_the_readme_runs(tmp_path, monkeypatch, capsys, s3_bucket):  # noqa: F811
    commands = readme_commands()
    assert [c[0] for c in commands] == ["prepare", "prepare", "manifest", "inspect", "solve", "report", "demo"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "texts").mkdir()
    for lang in ("de", "fr"):
        (tmp_path / "texts" / f"{lang}.txt").write_text("\n\n".join(f"a b {lang} {i} " * 40 for i in range(60)))
    _tokenizer(tmp_path / "tokenizer.json")
    run_demo(str(tmp_path / "out" / "demo"), steps=24, resolve_every=12, num_workers=0, progress=False)
    for args in commands:
        args = [a.replace("s3://bucket", s3_bucket.url) for a in args]
        if args[0] == "prepare" and "--from-gettext" in args:
            args += ["--max-bytes-per-lang", "60000"]
            (tmp_path / "climbstream.yaml").write_text(yaml.safe_dump(
                {"sources": ["corpus/"], "weights": {"method": "temperature", "alpha": 0.3}, "global_batch": 32}))
        if args[0] == "manifest":  # shards written elsewhere: the ones the previous line put there
            args[1] = args[1].replace("/shards", "/corpus")
            s3_bucket.client().delete_object(Bucket=s3_bucket.name, Key="corpus/climbstream-manifest.json")
            args[args.index("--format") + 1] = "wds"
        if args[0] == "demo":
            args += ["--out", "out/demo", "--steps", "24", "--quiet"]
        assert main(args) == 0, (args, capsys.readouterr().err[-2000:])
    printed = capsys.readouterr().out
    assert re.search(r"^\s+0\s+\S+\s+\d+", printed, re.M), "inspect printed no rows"
    assert "wrote out/demo/train" in printed or "loss_by_language.png" in printed
