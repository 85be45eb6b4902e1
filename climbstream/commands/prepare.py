"""`climbstream prepare`: tokenize a multilingual corpus into packed shards and a manifest."""

from __future__ import annotations

import argparse

HELP = "tokenize a corpus (folder per language, or the machine's gettext catalogs) into packed shards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("input", nargs="?", help="folder with one file or folder per language "
                     "(*.txt, *.jsonl, optionally .gz/.bz2/.xz/.zst, *.parquet, *.arrow, a dataset saved with "
                     "save_to_disk); with --lang-field, a Parquet/Arrow file, a folder of them or a saved dataset")
    src.add_argument("--from-gettext", nargs="?", const="/usr/share/locale", metavar="DIR",
                     help="use the gettext catalogs under DIR (default /usr/share/locale); a "
                     "generated corpus is used where there are none")
    parser.add_argument("--out", required=True, help="output folder or s3://bucket/prefix")
    parser.add_argument("--format", choices=("mds", "wds"), default="mds", help="shard format (default mds)")
    parser.add_argument("--langs", default=None, help="languages to take: 'fr,de,en_GB', or a count N "
                        "of the largest (gettext); default all (folders) or a skewed mix of 8 (gettext)")
    parser.add_argument("--max-bytes-per-lang", type=int, default=None,
                        help="stop adding a language's documents at this many bytes of text")
    parser.add_argument("--lang-field", default=None, metavar="COLUMN",
                        help="the input is one table of many languages: each row's language is in COLUMN")
    parser.add_argument("--text-field", default="text", help="JSONL/Parquet text field (default text)")
    parser.add_argument("--id-field", default="id", help="JSONL/Parquet document id field (default id)")
    parser.add_argument("--text-unit", choices=("paragraph", "line"), default="paragraph",
                        help="plain text: one document per blank-line-separated paragraph (default) or per line")
    parser.add_argument("--tokenizer", default=None, metavar="PATH",
                        help="a Hugging Face tokenizer.json (default: UTF-8 bytes, eos 256)")
    parser.add_argument("--eos-id", type=int, default=None, help="end-of-document id (default: the "
                        "tokenizer's end-of-sequence special token)")
    parser.add_argument("--seq-len", type=int, default=256, help="tokens per sample (default 256)")
    parser.add_argument("--tail", choices=("drop", "pad"), default="drop",
                        help="last partial sample per language and split: drop it (default, counted in "
                        "the manifest) or pad it with eos")
    parser.add_argument("--heldout-frac", type=float, default=0.05,
                        help="fraction of documents held out, chosen by document id (default 0.05)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--shard-samples", type=int, default=None, help="samples per shard")
    size.add_argument("--shard-bytes", type=int, default=None,
                      help="approximate token bytes per shard (default 4 MiB)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes preparing languages side by side (default 1); the output "
                        "is the same bytes whatever N is")
    parser.add_argument("--part", default=None, metavar="I/N",
                        help="prepare only part I of N (whole languages, balanced by input size) and "
                        "write a part manifest; join the N parts with 'climbstream manifest OUT --merge'")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing prepared corpus")
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: AWS configuration)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from climbstream.prepare.corpus import FolderCorpus
    from climbstream.prepare.gettext_corpus import gettext_corpus
    from climbstream.prepare.prepare import prepare
    from climbstream.prepare.tokenizer import load_tokenizer
    from climbstream.storage.options import StorageOptions

    langs = args.langs
    if args.from_gettext is not None:
        selected = int(langs) if langs and langs.isdigit() else (langs.split(",") if langs else None)
        corpus = gettext_corpus(args.from_gettext, selected, args.max_bytes_per_lang)
    elif args.lang_field:
        from climbstream.prepare.table_input import LangFieldCorpus

        corpus = LangFieldCorpus(args.input, args.lang_field, text_field=args.text_field,
                                 id_field=args.id_field, langs=langs.split(",") if langs else None)
    else:
        corpus = FolderCorpus(args.input, text_field=args.text_field, text_unit=args.text_unit,
                              id_field=args.id_field, langs=langs.split(",") if langs else None)
    storage = StorageOptions(endpoint_url=args.endpoint_url) if args.endpoint_url else None
    manifest = prepare(
        corpus, args.out, fmt=args.format, seq_len=args.seq_len,
        tokenizer=load_tokenizer(args.tokenizer, args.eos_id), tail=args.tail,
        heldout_frac=args.heldout_frac, shard_samples=args.shard_samples, shard_bytes=args.shard_bytes,
        storage=storage, overwrite=args.overwrite, progress=not args.quiet, workers=args.workers,
        part=args.part,
    )
    if not args.quiet:
        print(f"{manifest.where}: {len(manifest.languages)} languages, seq_len {manifest.seq_len}")
        for lang in manifest.languages:
            info = manifest.language_info(lang)
            print(f"  {lang:>10}  train {info['samples']:>8} samples ({len(info['train'])} shards)"
                  f"  heldout {info['heldout_samples']:>6}  dropped tail {info['dropped_tail_tokens']} tokens")
    return 0
