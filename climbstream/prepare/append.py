"""`climbstream manifest --append`: the grown manifest of a corpus, its old shards untouched.

Why: a run that takes in new data mid-way resumes on the grown corpus with
`load_state_dict(state, allow_manifest_change=True)`, which is exact only when every
language's old train shards stay, unchanged and in order, at the head of its list
(stream state: formats/corpus_record.py). Rebuilding the manifest from a scan would sort
new shards among old ones and read every old shard again; this keeps the old entries as
they are (not read, not hashed), appends each language's new shards after them in path
order, adds new languages, and keeps a language whose shards are all gone with no train
shards (retired: it may only have weight 0 from the change on). A language that lost
some but not all of its shards is refused, naming them: that is a rewrite.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from climbstream.errors import ManifestError
from climbstream.formats.manifest import CHECKSUM_KEY, MANIFEST_NAME, Manifest, to_json
from climbstream.prepare.scan import build_manifest
from climbstream.storage.urls import is_remote

log = logging.getLogger(__name__)
SPLITS = ("train", "heldout")


def append_manifest(root: str, lang_map: dict[str, str] | None = None, storage: Any = None,
                    progress: bool = False) -> tuple[Manifest, dict[str, dict[str, int]]]:
    """Write the grown manifest at `root`; returns it and {lang: {split: shards appended}} (-1: retired)."""
    old = Manifest.load(root, storage)
    old_data = {k: v for k, v in old.data.items() if k != CHECKSUM_KEY}
    known = {s["path"]: s for entry in old_data["languages"].values() for split in SPLITS
             for s in entry.get(split, [])}
    scanned = build_manifest(root, old.format, lang_map=lang_map, seq_len=old.seq_len,
                             column=old_data.get("tokens_field", "tokens"), storage=storage, write=True,
                             progress=progress, known=known, write_manifest=False).data
    languages: dict[str, dict] = {}
    added: dict[str, dict[str, int]] = {}
    for lang in sorted(set(old_data["languages"]) | set(scanned["languages"])):
        before = old_data["languages"].get(lang, {})
        now = scanned["languages"].get(lang, {})
        entry = {k: v for k, v in before.items() if k not in (*SPLITS, "samples", "tokens", "heldout_samples")}
        for split in SPLITS:
            old_shards = before.get(split, [])
            found = {s["path"] for s in now.get(split, [])}
            gone = [s["path"] for s in old_shards if s["path"] not in found]
            if gone and len(gone) < len(old_shards):
                shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
                raise ManifestError(
                    f"{old.where}: languages.{lang}.{split}: {len(gone)} of its {len(old_shards)} shards are gone "
                    f"({shown}); --append only adds shards, so a run resumed over the corpus stays exact: restore "
                    f"them, or remove all of {lang}'s {split} shards to retire it")
            paths = {s["path"] for s in old_shards}
            new = [s for s in now.get(split, []) if s["path"] not in paths]
            entry[split] = ([] if gone else list(old_shards)) + new
            added.setdefault(lang, {})[split] = -1 if gone else len(new)
        entry["samples"] = sum(int(s["samples"]) for s in entry["train"])
        entry["tokens"] = entry["samples"] * old.seq_len
        entry["heldout_samples"] = sum(int(s["samples"]) for s in entry["heldout"])
        languages[lang] = entry
    data = {**old_data, "languages": languages}
    manifest_url = f"{old.root}/{MANIFEST_NAME}" if is_remote(old.root) else os.path.join(old.root, MANIFEST_NAME)
    manifest = Manifest.from_dict(data, old.root, manifest_url)
    text = to_json(data)
    if is_remote(old.root):
        from climbstream.storage.registry import open_store

        open_store(old.root, storage).put_bytes(text.encode("utf-8"), manifest_url)
    else:
        with open(manifest_url + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(manifest_url + ".tmp", manifest_url)
    log.info("appended to %s: %s", manifest_url, added)
    return manifest, added
