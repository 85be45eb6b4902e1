"""`climbstream manifest`: build the manifest of shards written by another tool."""

from __future__ import annotations

import argparse

HELP = ("scan MDS or WebDataset tar shards (one top-level folder per language) and write their manifest, "
        "or --merge the part manifests of 'prepare --part'")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="DIR_OR_URL", help="corpus root: a folder or s3://bucket/prefix")
    parser.add_argument("--format", choices=("mds", "wds"), default=None,
                        help="shard format (required unless --merge)")
    parser.add_argument("--merge", action="store_true",
                        help="join the part manifests that 'prepare --part i/N' wrote under the root")
    parser.add_argument("--append", action="store_true",
                        help="grow an existing manifest: keep its shards as listed (not read again), append each "
                             "language's new shards after them, add new languages; a run resumes over it exactly "
                             "with load_state_dict(state, allow_manifest_change=True)")
    parser.add_argument("--overwrite", action="store_true", help="with --merge: replace an existing manifest")
    parser.add_argument("--lang-map", default=None, metavar="FILE",
                        help="JSON/YAML mapping of top-level folder name to language name")
    parser.add_argument("--column", default="tokens", help="token column (MDS) or member "
                        "'<key>.<column>.npy' (tar); default tokens")
    parser.add_argument("--seq-len", type=int, default=None,
                        help="expected tokens per sample (default: the first sample's length)")
    parser.add_argument("--vocab-size", type=int, default=None, help="default: largest token id + 1")
    parser.add_argument("--eos-id", type=int, default=None, help="end-of-document id, if known")
    parser.add_argument("--endpoint-url", default=None, help="S3 endpoint (default: AWS configuration)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from climbstream.errors import ConfigError
    from climbstream.prepare.parts import merge_parts
    from climbstream.prepare.scan import build_manifest, load_lang_map
    from climbstream.storage.options import StorageOptions

    storage = StorageOptions(endpoint_url=args.endpoint_url) if args.endpoint_url else None
    if args.append:
        from climbstream.prepare.append import append_manifest

        manifest, added = append_manifest(args.root, load_lang_map(args.lang_map), storage, progress=not args.quiet)
        if not args.quiet:
            for lang, splits in added.items():
                grown = ", ".join(f"{split} {'retired' if n < 0 else f'+{n} shards'}" for split, n in splits.items()
                                  if n)
                if grown:
                    print(f"  {lang:>10}  {grown}")
    elif args.merge:
        manifest = merge_parts(args.root, storage, overwrite=args.overwrite)
    elif args.format is None:
        raise ConfigError("manifest: give --format mds or --format wds (the shards' format), or --merge")
    else:
        manifest = build_manifest(
            args.root, args.format, lang_map=load_lang_map(args.lang_map), seq_len=args.seq_len,
            column=args.column, vocab_size=args.vocab_size, eos_id=args.eos_id, storage=storage,
            progress=not args.quiet,
        )
    if not args.quiet:
        print(f"{manifest.where}: {len(manifest.languages)} languages, seq_len {manifest.seq_len}")
        for lang in manifest.languages:
            print(f"  {lang:>10}  train {manifest.samples(lang):>8} samples"
                  f"  heldout {manifest.samples(lang, 'heldout'):>6}")
    return 0

