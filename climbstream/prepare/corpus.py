"""Raw corpora for `prepare`: a folder with one folder or file per language.

    INPUT/fr.txt | INPUT/fr.jsonl | INPUT/fr.parquet | INPUT/fr.arrow   one file per language,
    INPUT/fr/**/*.txt|*.jsonl|*.parquet|*.arrow                         one folder per language,
    INPUT/fr/ written by datasets' save_to_disk                         or a saved dataset

Text and JSONL may be compressed: .gz, .bz2, .xz, .zst (fr.jsonl.gz, fr/part-1.txt.zst).
Any other file in the input is an error naming it (a language dropped silently would
change every ratio); dotfiles are skipped with a warning.

Plain text: one document per blank-line-separated paragraph (`text_unit="paragraph"`,
the default) or per line (`text_unit="line"`). JSONL, Parquet and Arrow: one document
per row, text in `text_field` (default "text"). One table holding every language, its
rows tagged in a column, is `table_input.LangFieldCorpus` (`prepare --lang-field`). A
document's id is its `id_field` value when the row has one, else `<file relative to the language>#<ordinal>`, so aligned parallel
files (same names, same order) give a translation the same id in every language, which
is what the held-out choice keys on. Languages and files are visited in sorted order, so
the same folder always gives the same documents in the same order.
"""

from __future__ import annotations

import io
import json
import logging
import os
from typing import Iterator, Protocol

from climbstream.errors import ConfigError
from climbstream.prepare.documents import Document, row_document, select_languages
from climbstream.prepare.table_input import is_saved_dataset, name_of, saved_dataset_files, table_rows

log = logging.getLogger(__name__)

COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
SUFFIXES = (".txt", ".jsonl", ".parquet", ".arrow") + tuple(f"{s}{c}" for s in (".txt", ".jsonl") for c in COMPRESSIONS)


def input_kind(name: str) -> tuple[str, str] | None:
    """(base name without suffixes, kind "txt"|"jsonl"|"parquet") of an input file, or None."""
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix.split(".")[1]
    return None


def open_text(path: str) -> io.TextIOBase:
    """A UTF-8 text reader over a plain or compressed (.gz, .bz2, .xz, .zst) file."""
    if path.endswith(".gz"):
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    if path.endswith(".bz2"):
        import bz2

        return bz2.open(path, "rt", encoding="utf-8")
    if path.endswith(".xz"):
        import lzma

        return lzma.open(path, "rt", encoding="utf-8")
    if path.endswith(".zst"):
        return io.TextIOWrapper(_zstd_reader(path), encoding="utf-8")
    return open(path, encoding="utf-8")


def _zstd_reader(path: str):
    try:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    except ImportError:
        pass
    try:
        import zstd  # mosaicml-streaming's dependency: whole-buffer only
    except ImportError:
        raise ConfigError(f"{path}: reading .zst needs zstandard (pip install zstandard)") from None
    with open(path, "rb") as f:
        return io.BytesIO(zstd.decompress(f.read()))


def _uncompressed(rel: str) -> str:
    """`rel` without a compression suffix: document ids (and so the held-out split) do not
    depend on whether a file was compressed."""
    for c in COMPRESSIONS:
        if rel.endswith(c):
            return rel[: -len(c)]
    return rel


def _refuse(path: str, what: str) -> None:
    raise ConfigError(f"{path}: {what}; inputs are .txt, .jsonl (either may end in .gz, .bz2, .xz or .zst), "
                      f".parquet, .arrow and datasets saved with save_to_disk. Move other files out of the input folder")
TEXT_UNITS = ("paragraph", "line")


class Corpus(Protocol):
    """What `prepare` reads: named languages, each an ordered stream of documents."""

    description: dict

    @property
    def languages(self) -> list[str]: ...

    def documents(self, lang: str) -> Iterator[Document]: ...


class FolderCorpus:
    """A folder with one file or folder per language (see the module docstring)."""

    def __init__(self, path: str, text_field: str = "text", text_unit: str = "paragraph",
                 id_field: str = "id", langs: list[str] | None = None):

        if text_unit not in TEXT_UNITS:
            raise ConfigError(f"text unit must be one of {list(TEXT_UNITS)}, got {text_unit!r}")
        if not os.path.isdir(path):
            raise ConfigError(f"{path}: input is not a folder; give a folder with one file or "
                              f"folder per language, or use --from-gettext")
        self.path, self.text_field, self.text_unit, self.id_field = path, text_field, text_unit, id_field
        self._files: dict[str, list[tuple[str, str]]] = {}
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if name.startswith("."):
                log.warning("%s: skipping the hidden %s", full, "folder" if os.path.isdir(full) else "file")
                continue
            if os.path.isdir(full) and is_saved_dataset(full):
                self._files[name] = [(name_of(f, full), f) for f in saved_dataset_files(full)]
            elif os.path.isdir(full):
                files = []
                for d, dirs, fs in os.walk(full):
                    dirs[:] = sorted(x for x in dirs if not x.startswith("."))
                    for f in sorted(fs):
                        if f.startswith("."):
                            log.warning("%s: skipping the hidden file", os.path.join(d, f))
                        elif input_kind(f) is None:
                            _refuse(os.path.join(d, f), "not a known input file")
                        else:
                            files.append((_uncompressed(os.path.relpath(os.path.join(d, f), full)),
                                          os.path.join(d, f)))
                if files:
                    self._files[name] = sorted(files)
                else:
                    _refuse(full, "a language folder with no input files")
            elif input_kind(name) is None:
                _refuse(full, "not a known input file")
            else:
                lang = input_kind(name)[0]
                if lang in self._files:
                    raise ConfigError(f"{path}: language {lang!r} appears twice ({name} and another "
                                      f"file or folder); keep one")
                self._files[lang] = [(_uncompressed(name), full)]
        if not self._files:
            raise ConfigError(f"{path}: no language files or folders (*.txt, *.jsonl, *.parquet, *.arrow) found")
        self._files = select_languages(self._files, langs, f"{path}: no input for languages")
        self.description = {"kind": "folder", "path": os.path.abspath(path), "text_unit": text_unit,
                            "text_field": text_field}

    @property
    def languages(self) -> list[str]:
        return sorted(self._files)

    def input_bytes(self, lang: str) -> int:
        """Size of the language's input files (what the progress bar counts toward)."""
        return sum(os.path.getsize(full) for _, full in self._files[lang])

    def documents(self, lang: str) -> Iterator[Document]:
        for rel, full in self._files[lang]:
            kind = input_kind(os.path.basename(full))[1]
            if kind == "txt":
                yield from self._text(rel, full)
            elif kind == "jsonl":
                yield from self._jsonl(rel, full)
            else:

                yield from self._rows(rel, full, table_rows(full, self.text_field, self.id_field))

    def _text(self, rel: str, full: str) -> Iterator[Document]:
        with open_text(full) as f:
            text = f.read()
        if self.text_unit == "line":
            units = text.splitlines()
        else:
            units, para = [], []
            for line in text.splitlines():
                if line.strip():
                    para.append(line)
                elif para:
                    units.append("\n".join(para))
                    para = []
            if para:
                units.append("\n".join(para))
        n = 0
        for unit in units:
            if unit.strip():
                yield Document(f"{rel}#{n}", unit)
                n += 1

    def _rows(self, rel: str, full: str, rows) -> Iterator[Document]:
        for n, row in enumerate(rows):
            if not isinstance(row, dict) or self.text_field not in row:
                raise ConfigError(f"{full}: row {n + 1} has no field {self.text_field!r}; pass "
                                  f"--text-field with the name of the text column")
            doc = row_document(row, n, rel, full, self.text_field, self.id_field)
            if doc is not None:
                yield doc

    def _jsonl(self, rel: str, full: str) -> Iterator[Document]:
        def rows():
            with open_text(full) as f:
                for n, line in enumerate(f):
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except json.JSONDecodeError as err:
                            raise ConfigError(f"{full}: line {n + 1} is not JSON ({err})") from None
        yield from self._rows(rel, full, rows())
