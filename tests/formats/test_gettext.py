"""The built-in corpus: the machine's gettext catalogs, and the generated fallback."""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import pytest

from climbstream.prepare.gettext_corpus import (
    DEFAULT_LANGUAGES,
    GettextCorpus,
    SyntheticCorpus,
    catalog_sizes,
    gettext_corpus,
    parse_mo,
)

LOCALE_DIR = "/usr/share/locale"
real_catalogs = pytest.mark.skipif(not catalog_sizes(LOCALE_DIR), reason=f"no gettext catalogs under {LOCALE_DIR}")


def _common_pair(sizes):
    """Two well-translated locales present on this machine."""
    for a, b in (("fr", "de"), ("es", "it"), ("ru", "uk")):
        if sizes.get(a, 0) > 1000 and sizes.get(b, 0) > 1000:
            return [a, b]
    top = sorted(sizes, key=lambda lang: -sizes[lang])[:2]
    return top


@real_catalogs
def test_real_catalogs_give_translated_messages_keyed_by_msgid():
    sizes = catalog_sizes(LOCALE_DIR)
    langs = _common_pair(sizes)
    corpus = gettext_corpus(LOCALE_DIR, langs, max_bytes_per_lang=40_000)
    assert isinstance(corpus, GettextCorpus) and corpus.languages == sorted(langs)
    docs = {lang: list(corpus.documents(lang)) for lang in corpus.languages}
    for lang, items in docs.items():
        assert items and sum(len(d.text.encode()) for d in items) <= 40_000
        assert all(d.id and d.text.strip() for d in items)
    # The same English msgid is translated in both: that document shares its id.
    shared = {d.id for d in docs[langs[0]]} & {d.id for d in docs[langs[1]]}
    assert len(shared) > 10


@real_catalogs
def test_default_mix_is_eight_locales_of_very_skewed_size():
    sizes = catalog_sizes(LOCALE_DIR)
    corpus = gettext_corpus(LOCALE_DIR)
    assert len(corpus.languages) == min(DEFAULT_LANGUAGES, len(sizes))
    chosen = [sizes[lang] for lang in corpus.languages]
    assert max(chosen) > 20 * min(chosen)
    largest = gettext_corpus(LOCALE_DIR, 3).languages
    assert sorted(largest) == sorted(sorted(sizes, key=lambda lang: (-sizes[lang], lang))[:3])


@real_catalogs
def test_parse_mo_joins_plural_forms_and_skips_the_header():
    path = next(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(LOCALE_DIR, "fr"))
                for f in sorted(fs) if f.endswith(".mo"))
    with open(path, "rb") as f:
        pairs = list(parse_mo(f.read(), path))
    assert pairs and all(msgid != "" and "\x00" not in text for msgid, text in pairs)


def test_unknown_locale_is_an_error_listing_what_exists(tmp_path):
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "x.mo").write_bytes(_mo({"Hello": "Bonjour", "One file": "Un fichier\x00Des fichiers"}))
    corpus = gettext_corpus(str(tmp_path), ["fr"])
    assert [(d.id, d.text) for d in corpus.documents("fr")] == [
        ("Hello", "Bonjour"), ("One file", "Un fichier\nDes fichiers")]
    from climbstream.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no \.mo catalogs for \['xx'\]; available: fr"):
        gettext_corpus(str(tmp_path), ["xx"])


def _mo(messages: dict[str, str]) -> bytes:
    """A minimal little-endian .mo file (with the usual empty-msgid header)."""
    import struct

    items = sorted({"": "Content-Type: text/plain; charset=UTF-8\n", **messages}.items())
    ids = [k.encode() for k, _ in items]
    strs = [v.encode() for _, v in items]
    n = len(items)
    header = 28
    table = header + 16 * n
    data = b""
    offsets_o, offsets_t = [], []
    for blob, out in ((ids, offsets_o), (strs, offsets_t)):
        for b in blob:
            out.append((len(b), table + len(data)))
            data += b + b"\x00"
    return (struct.pack("<7I", 0x950412DE, 0, n, header, header + 8 * n, 0, 0)
            + b"".join(struct.pack("<2I", *o) for o in offsets_o)
            + b"".join(struct.pack("<2I", *t) for t in offsets_t) + data)


def test_machine_without_catalogs_falls_back_to_a_generated_corpus_and_says_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="climbstream.prepare.gettext_corpus"):
        corpus = gettext_corpus(str(tmp_path / "nothing"), 4, seed=3)
    assert isinstance(corpus, SyntheticCorpus) and len(corpus.languages) == 4
    assert re.search(r"no gettext catalogs under .*nothing; using a generated corpus of 4", caplog.text)
    counts = {lang: len(list(corpus.documents(lang))) for lang in corpus.languages}
    assert max(counts.values()) > 5 * min(counts.values())  # skewed sizes
    alphabets = {lang: {c for d in corpus.documents(lang) for c in d.text if c != " "}
                 for lang in corpus.languages}
    langs = corpus.languages
    assert all(not (alphabets[a] & alphabets[b]) for a in langs for b in langs if a < b)
    again = gettext_corpus(str(tmp_path / "nothing"), 4, seed=3)
    assert [d.text for d in again.documents(langs[1])] == [d.text for d in corpus.documents(langs[1])]


def test_generated_corpus_prepares_and_reads_back(tmp_path):
    from climbstream.prepare.prepare import prepare
    from climbstream.read.reader import open_reader

    corpus = SyntheticCorpus(3, seed=1, base_documents=200)
    manifest = prepare(corpus, str(tmp_path / "out"), fmt="wds", seq_len=64)
    reader = open_reader(manifest)
    sample = reader.read(manifest.languages[2], "train", 0, 0)
    assert sample.shape == (64,) and (sample <= 256).all()
    assert manifest.samples(manifest.languages[0]) > 2 * manifest.samples(manifest.languages[2])
    lang = manifest.languages[2]
    everything = np.concatenate([reader.read(lang, "train", s, i) for s, sh in enumerate(manifest.shards(lang))
                                 for i in range(sh.samples)])
    info = manifest.language_info(lang)  # one eos per document, some maybe in the dropped tail
    assert info["documents"] - info["dropped_tail_tokens"] <= np.count_nonzero(everything == 256) <= info["documents"]
