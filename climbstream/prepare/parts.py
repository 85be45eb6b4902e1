"""Preparing one corpus as N parts (one per machine) and merging their manifests.

A part is a set of whole languages: a language's documents are packed in input order
into one run of samples, so cutting a language between machines would change its
samples. `assign_parts` gives every language to exactly one of N parts from the corpus
alone (input sizes, largest first, each to the lightest part so far; ties to the lowest
part), so `prepare --part i/N` run on N machines, in any order and by any scheduler
(a Slurm array, a Kubernetes indexed Job, Ray tasks), writes disjoint language folders
and one part manifest each. `merge_parts` checks that the N part manifests agree and
cover the corpus, and writes the corpus manifest: the same file, byte for byte, that
one `prepare` of the whole corpus writes.
"""

from __future__ import annotations

import os
import re
from typing import Any

from climbstream.errors import ConfigError, ManifestError
from climbstream.formats.manifest import CHECKSUM_KEY, MANIFEST_NAME, Manifest, to_json

PART_KEY = "part"
_PART_NAME = re.compile(r"^climbstream-manifest\.part-(\d{5})-of-(\d{5})\.json$")


def parse_part(text: Any) -> tuple[int, int]:
    """`"i/N"` (1-based, as Slurm and Kubernetes indexes are counted after +1) -> (i, N)."""
    if isinstance(text, tuple) and len(text) == 2:
        text = f"{text[0]}/{text[1]}"
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise ConfigError(f"--part {text!r}: expected i/N, e.g. 1/4 for the first of four parts")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= 99999 or not 1 <= index <= count:
        raise ConfigError(f"--part {text!r}: needs 1 <= i <= N <= 99999 (parts are counted from 1)")
    return index, count


def part_manifest_name(index: int, count: int) -> str:
    return f"climbstream-manifest.part-{index:05d}-of-{count:05d}.json"


def assign_parts(sizes: dict[str, int], count: int) -> list[list[str]]:
    """Each language to one of `count` parts, balancing input bytes (see the module docstring)."""
    loads = [0] * count
    parts: list[list[str]] = [[] for _ in range(count)]
    for lang in sorted(sizes, key=lambda lang: (-sizes[lang], lang)):
        lightest = min(range(count), key=lambda p: (loads[p], p))
        parts[lightest].append(lang)
        loads[lightest] += sizes[lang]
    return [sorted(p) for p in parts]


def merge_parts(root: str, storage: Any = None, overwrite: bool = False) -> Manifest:
    """Join the part manifests under `root` (folder or URL) into its corpus manifest."""
    from climbstream.formats.manifest import _read_manifest
    from climbstream.storage.registry import open_store
    from climbstream.storage.urls import is_remote, join_url

    root = root.rstrip("/") or "/"
    if not is_remote(root):
        root = os.path.abspath(root)
    store = open_store(root, storage)
    top_level = (url[len(root):].strip("/") for url in store.list(root))
    names = sorted(name for name in top_level if _PART_NAME.match(name))
    if not names:
        raise ManifestError(f"{root}: no part manifests (climbstream-manifest.part-*-of-*.json) to "
                            f"merge; write them with 'climbstream prepare ... --part i/N'")
    counts = {int(_PART_NAME.match(n).group(2)) for n in names}
    if len(counts) != 1:
        raise ManifestError(f"{root}: part manifests of different part counts {sorted(counts)}; "
                            f"remove the stale ones and merge again")
    count = counts.pop()
    found = {int(_PART_NAME.match(n).group(1)) for n in names}
    missing = [i for i in range(1, count + 1) if i not in found]
    if missing:
        raise ManifestError(f"{root}: parts {missing} of {count} are not written yet "
                            f"(found {sorted(found)}); run 'prepare --part i/{count}' for them")
    parts = [_read_manifest(join_url(root, part_manifest_name(i, count)), storage) for i in range(1, count + 1)]
    merged = _merge(parts, root)
    target = join_url(root, MANIFEST_NAME)
    if store.exists(target) and not overwrite:
        raise ConfigError(f"{target} already exists; pass --overwrite to replace it")
    store.put_bytes(to_json(merged).encode("utf-8"), target)
    return Manifest.from_dict(merged, root, target)


def _merge(parts: list[dict], root: str) -> dict:
    """One manifest from the parts' dicts, after checking they are parts of one corpus."""
    def settings(part: dict) -> dict:  # what every part must share
        return {k: v for k, v in part.items() if k not in (PART_KEY, "languages", CHECKSUM_KEY)}

    first = settings(parts[0])
    corpus_languages = parts[0][PART_KEY]["corpus_languages"]
    languages: dict[str, dict] = {}
    for number, part in enumerate(parts, 1):
        rest = settings(part)
        if rest != first:
            differing = sorted(k for k in set(rest) | set(first) if rest.get(k) != first.get(k))
            raise ManifestError(f"{root}: part {number} was prepared with other settings than part 1 "
                                f"({', '.join(differing)} differ); prepare every part with the same command")
        if part[PART_KEY]["corpus_languages"] != corpus_languages:
            raise ManifestError(f"{root}: part {number} saw other input languages than part 1; "
                                f"prepare every part from the same input")
        for lang, entry in part["languages"].items():
            if lang in languages:
                raise ManifestError(f"{root}: language {lang!r} is in two parts")
            languages[lang] = entry
    absent = [lang for lang in corpus_languages if lang not in languages]
    if absent:
        raise ManifestError(f"{root}: no part holds languages {absent}")
    return {**first, "languages": {lang: languages[lang] for lang in corpus_languages}}
