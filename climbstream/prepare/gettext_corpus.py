"""A real multilingual corpus on most Linux machines: the gettext catalogs.

`/usr/share/locale/<lang>/LC_MESSAGES/*.mo` hold the translated messages of installed
programs, ~190 locales of very skewed sizes. A document is one translated message
(msgstr, plural forms joined by newlines) and its id is the msgid (with its context), so
a message translated into several languages has the same id in each, and the held-out
choice (a hash of the id) holds it out in all of them. Untranslated entries and the
catalog header are skipped. Where a machine has no catalogs, `gettext_corpus` falls back
to a seeded synthetic corpus (SyntheticCorpus) and logs that it did.
"""

from __future__ import annotations

import logging
import os
import struct
from typing import Iterator

import numpy as np

from climbstream.errors import ConfigError
from climbstream.prepare.corpus import Corpus
from climbstream.prepare.documents import Document

log = logging.getLogger(__name__)

DEFAULT_LOCALE_DIR = "/usr/share/locale"
DEFAULT_LANGUAGES = 8
MIN_MIX_MESSAGES = 200  # the default mix skips locales too small to fill a few samples
_MO_MAGIC = 0x950412DE


def parse_mo(data: bytes, where: str) -> Iterator[tuple[str, str]]:
    """(msgid, msgstr) pairs of a compiled .mo catalog, in catalog order.

    Contexts stay in the msgid (`ctx\\x04msgid`); plural msgids keep only the singular and
    plural msgstrs are joined with newlines. Raises ConfigError for a file that is not a .mo.
    """
    if len(data) < 20:
        raise ConfigError(f"{where}: too short to be a .mo catalog")
    for order in ("<", ">"):
        magic, _revision, count, orig_at, trans_at = struct.unpack(order + "5I", data[:20])
        if magic == _MO_MAGIC:
            break
    else:
        raise ConfigError(f"{where}: not a .mo catalog (bad magic number)")
    try:
        origs = struct.unpack_from(f"{order}{2 * count}I", data, orig_at)
        trans = struct.unpack_from(f"{order}{2 * count}I", data, trans_at)
    except struct.error:
        raise ConfigError(f"{where}: truncated .mo catalog") from None
    for i in range(count):
        olen, ooff = origs[2 * i], origs[2 * i + 1]
        tlen, toff = trans[2 * i], trans[2 * i + 1]
        msgid = data[ooff:ooff + olen].decode("utf-8", errors="replace").split("\x00")[0]
        msgstr = data[toff:toff + tlen].decode("utf-8", errors="replace")
        if msgid and msgstr.strip("\x00").strip():
            yield msgid, "\n".join(part for part in msgstr.split("\x00") if part)


class GettextCorpus:
    """Languages = locale folders; documents = translated messages, files in sorted order."""

    def __init__(self, locale_dir: str, langs: list[str], max_bytes_per_lang: int | None = None):
        self.locale_dir, self.max_bytes = locale_dir, max_bytes_per_lang
        self._langs = sorted(langs)
        self.description = {"kind": "gettext", "path": locale_dir, "languages": self._langs,
                            "max_bytes_per_lang": max_bytes_per_lang}

    @property
    def languages(self) -> list[str]:
        return list(self._langs)

    def input_bytes(self, lang: str) -> int:
        """Catalog bytes of the language, up to the cap (what the progress bar counts toward)."""
        size = sum(os.path.getsize(p) for p in catalog_files(self.locale_dir, lang))
        return size if self.max_bytes is None else min(size, self.max_bytes)

    def documents(self, lang: str) -> Iterator[Document]:
        total = 0
        for path in catalog_files(self.locale_dir, lang):
            with open(path, "rb") as f:
                data = f.read()
            try:
                pairs = list(parse_mo(data, path))
            except ConfigError as err:
                log.warning("skipping %s", err)
                continue
            for msgid, text in pairs:
                size = len(text.encode("utf-8"))
                if self.max_bytes is not None and total + size > self.max_bytes:
                    return
                total += size
                yield Document(msgid, text)


def catalog_files(locale_dir: str, lang: str) -> list[str]:
    folder = os.path.join(locale_dir, lang, "LC_MESSAGES")
    if not os.path.isdir(folder):
        return []
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".mo")]


def catalog_sizes(locale_dir: str) -> dict[str, int]:
    """Messages per locale (from the .mo headers alone, so cheap), for locales with any."""
    sizes = {}
    if os.path.isdir(locale_dir):
        for lang in sorted(os.listdir(locale_dir)):
            total = 0
            for path in catalog_files(locale_dir, lang):
                with open(path, "rb") as f:
                    head = f.read(20)
                if len(head) == 20:
                    for order in ("<", ">"):
                        magic, _, count = struct.unpack(order + "3I", head[:12])
                        if magic == _MO_MAGIC:
                            total += max(0, count - 1)  # minus the catalog header entry
                            break
            if total:
                sizes[lang] = total
    return sizes


def skewed_mix(sizes: dict[str, int], count: int) -> list[str]:
    """`count` locales at geometrically spaced size ranks, from the largest to the smallest."""
    ranked = sorted(sizes, key=lambda lang: (-sizes[lang], lang))
    if count >= len(ranked):
        return sorted(ranked)
    picks = {int(round(x)) - 1 for x in np.geomspace(1, len(ranked), count)}
    rank = 0
    while len(picks) < count:  # rounding collisions: fill with the largest unpicked
        picks.add(rank)
        rank += 1
    return sorted(ranked[r] for r in picks)


def gettext_corpus(locale_dir: str = DEFAULT_LOCALE_DIR, langs: list[str] | int | None = None,
                   max_bytes_per_lang: int | None = None, seed: int = 0) -> Corpus:
    """The gettext corpus of `locale_dir`, or the synthetic fallback when it has no catalogs.

    `langs`: a list of locale names, an int N for the N with most messages, or None for a
    skewed mix of DEFAULT_LANGUAGES locales (of at least MIN_MIX_MESSAGES messages).
    """
    sizes = catalog_sizes(locale_dir)
    if not sizes:
        count = langs if isinstance(langs, int) else (len(langs) if langs else DEFAULT_LANGUAGES)
        log.warning("no gettext catalogs under %s; using a generated corpus of %d synthetic languages "
                    "(seed %d) instead", locale_dir, count, seed)
        return SyntheticCorpus(count, seed=seed, max_bytes_per_lang=max_bytes_per_lang)
    if isinstance(langs, int):
        if langs < 1:
            raise ConfigError(f"--langs {langs}: need at least one language")
        chosen = sorted(sorted(sizes, key=lambda lang: (-sizes[lang], lang))[:langs])
    elif langs:
        missing = [lang for lang in langs if lang not in sizes]
        if missing:
            raise ConfigError(f"{locale_dir}: no .mo catalogs for {missing}; available: "
                              f"{', '.join(sorted(sizes))}")
        chosen = list(langs)
    else:
        usable = {lang: n for lang, n in sizes.items() if n >= MIN_MIX_MESSAGES}
        chosen = skewed_mix(usable or sizes, DEFAULT_LANGUAGES)
    return GettextCorpus(locale_dir, chosen, max_bytes_per_lang)


# Distinct alphabets for the synthetic languages (Unicode code point ranges).
_ALPHABETS = [(0x61, 0x7A), (0x3B1, 0x3C9), (0x430, 0x44F), (0x561, 0x586), (0x5D0, 0x5EA),
              (0x627, 0x64A), (0x905, 0x939), (0x10D0, 0x10F0), (0xAC00, 0xAC40), (0x3041, 0x3093),
              (0xE01, 0xE2E), (0x1200, 0x1248)]


class SyntheticCorpus:
    """Seeded "languages" with distinct alphabets and Zipf-skewed sizes.

    Language i has about `base_documents / (i + 1)**1.5` documents; document ids
    `msg-000000...` are shared, so the same id exists in several languages like a
    translation does.
    """

    def __init__(self, count: int = DEFAULT_LANGUAGES, seed: int = 0, base_documents: int = 2000,
                 max_bytes_per_lang: int | None = None):
        if not 1 <= count <= 26 * len(_ALPHABETS):
            raise ConfigError(f"synthetic corpus: count must be 1..{26 * len(_ALPHABETS)}, got {count}")
        self.count, self.seed, self.base, self.max_bytes = count, seed, base_documents, max_bytes_per_lang
        self._langs = [f"syn{chr(97 + i // len(_ALPHABETS))}{i % len(_ALPHABETS):02d}" for i in range(count)]
        self.description = {"kind": "synthetic", "languages": count, "seed": seed,
                            "base_documents": base_documents, "max_bytes_per_lang": max_bytes_per_lang}

    @property
    def languages(self) -> list[str]:
        return sorted(self._langs)

    def documents(self, lang: str) -> Iterator[Document]:
        i = self._langs.index(lang)
        lo, hi = _ALPHABETS[i % len(_ALPHABETS)]
        rng = np.random.default_rng([self.seed, i])
        letters = np.array([chr(c) for c in range(lo, hi + 1)])
        words = ["".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(500)]
        zipf = 1.0 / np.arange(1, len(words) + 1)
        zipf /= zipf.sum()
        total = 0
        for d in range(max(1, int(self.base / (i + 1) ** 1.5))):
            text = " ".join(rng.choice(words, size=rng.integers(3, 30), p=zipf))
            size = len(text.encode("utf-8"))
            if self.max_bytes is not None and total + size > self.max_bytes:
                return
            total += size
            yield Document(f"msg-{d:06d}", text)
