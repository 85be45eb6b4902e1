"""The allocation benchmark's corpus: gettext catalogs cut to a high/low-resource skew.

Why not the demo corpus: it caps every language at 600 KB, so at the benchmark's budgets
no epoch cap binds and UniMax is uniform by construction. Here each language's training
text is cut to a size from TRAIN_BYTES (a 20:1 skew, like many real multilingual mixes),
so that at the benchmark budget the small languages hit e_max and UniMax, temperature
and uniform differ. The held-out split is cut separately to HELDOUT_BYTES per language
(documents are assigned to it by the prepare step's id hash, at HELDOUT_FRAC), so every
language, small ones included, is scored on a comparable number of held-out samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from climbstream.formats.manifest import MANIFEST_NAME

# Training bytes per language (before packing into seq_len samples).
TRAIN_BYTES = {"es": 480_000, "fr": 480_000, "ja": 480_000, "ru": 480_000, "uk": 240_000, "en_GB": 120_000,
               "hi": 48_000, "is": 24_000}
HELDOUT_BYTES = 16_000
HELDOUT_FRAC = 0.2
SEQ_LEN = 128


class SkewedCorpus:
    """A gettext corpus whose languages keep TRAIN_BYTES of training and HELDOUT_BYTES of held-out text."""

    def __init__(self, locale_dir: str, train_bytes: dict[str, int], heldout_bytes: int):
        from climbstream.prepare.gettext_corpus import GettextCorpus

        self._source = GettextCorpus(locale_dir, sorted(train_bytes))
        self.train_bytes, self.heldout_bytes = dict(train_bytes), heldout_bytes
        self.description = {"kind": "gettext-skewed", "path": locale_dir, "train_bytes": self.train_bytes,
                            "heldout_bytes": heldout_bytes, "heldout_frac": HELDOUT_FRAC}

    @property
    def languages(self) -> list[str]:
        return self._source.languages

    def documents(self, lang: str) -> Iterator:
        from climbstream.prepare.packing import is_heldout

        used = {True: 0, False: 0}
        limit = {True: self.heldout_bytes, False: self.train_bytes[lang]}
        for doc in self._source.documents(lang):
            held = is_heldout(doc.id, HELDOUT_FRAC)
            size = len(doc.text.encode("utf-8"))
            if used[held] + size > limit[held]:
                if used[not held] >= limit[not held]:
                    return
                continue
            used[held] += size
            yield doc


def ensure_skewed_corpus(out: str, locale_dir: str = "/usr/share/locale") -> str:
    """Prepare the skewed corpus at `out` unless a manifest is already there; returns `out`."""
    from climbstream.errors import ConfigError
    from climbstream.prepare.gettext_corpus import catalog_sizes
    from climbstream.prepare.prepare import prepare

    if os.path.exists(os.path.join(out, MANIFEST_NAME)):
        return out
    available = catalog_sizes(locale_dir) if os.path.isdir(locale_dir) else {}
    missing = sorted(n for n in TRAIN_BYTES if n not in available)
    if missing:
        raise ConfigError(f"allocation benchmark: no gettext catalogs for {missing} under {locale_dir}; install "
                          f"the locales (Debian: the packages shipping /usr/share/locale/<lang>/LC_MESSAGES) or "
                          f"pass --corpus with a prepared corpus")
    prepare(SkewedCorpus(locale_dir, TRAIN_BYTES, HELDOUT_BYTES), out, fmt="mds", seq_len=SEQ_LEN,
            heldout_frac=HELDOUT_FRAC, shard_samples=256)
    return out
