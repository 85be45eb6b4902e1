"""Columnar inputs for `prepare`: Parquet, Arrow, and Hugging Face datasets saved to disk.

`datasets.Dataset.save_to_disk(folder)` writes Arrow IPC stream files listed, in order, in
`folder/state.json` (`_data_files`), with `dataset_info.json` beside them; the Hub's
parquet export is a folder of `*.parquet` files. Both are read here with pyarrow alone:
the `datasets` package is not needed to read what it wrote (and its current releases
require a huggingface_hub that transformers 4.x cannot load beside).

`LangFieldCorpus` reads one table, or a folder of them, whose rows name their language
in a column (`--lang-field`): one file, many languages. Each language's documents are
its rows in file order, read a record batch at a time with only the needed columns and
filtered on the language column in Arrow, so a pass per language costs a columnar scan,
not a parse of every row.
"""

from __future__ import annotations

import json
import os
from typing import Iterator

from climbstream.errors import ConfigError
from climbstream.prepare.documents import Document, row_document, select_languages

TABLE_SUFFIXES = (".parquet", ".arrow")
HF_STATE, HF_INFO = "state.json", "dataset_info.json"  # what save_to_disk writes beside its Arrow files


def _pyarrow(path: str):
    from climbstream.extras import require

    return require("pyarrow", f"{path}: reading Parquet and Arrow files")


def is_saved_dataset(folder: str) -> bool:
    """Whether `folder` is a Hugging Face dataset written by `save_to_disk`."""
    return os.path.isfile(os.path.join(folder, HF_STATE)) and os.path.isfile(os.path.join(folder, HF_INFO))


def saved_dataset_files(folder: str) -> list[str]:
    """The Arrow files of a `save_to_disk` folder, in the dataset's row order."""
    where = os.path.join(folder, HF_STATE)
    try:
        with open(where, encoding="utf-8") as f:
            names = [entry["filename"] for entry in json.load(f)["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{where}: not a readable datasets state file ({err}); save the dataset again "
                          f"with save_to_disk") from None
    if os.path.isfile(os.path.join(folder, "dataset_dict.json")) or not names:
        raise ConfigError(f"{folder}: a DatasetDict or an empty dataset; give the folder of one split "
                          f"(e.g. {folder}/train)")
    for name in names:
        if not isinstance(name, str) or os.path.basename(name) != name or not os.path.isfile(os.path.join(folder, name)):
            raise ConfigError(f"{where}: lists {name!r}, which is not a file in {folder}; save the dataset again")
    return [os.path.join(folder, name) for name in names]


def name_of(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


class Table:
    """One Parquet or Arrow file: its column names, and its rows as RecordBatches."""

    def __init__(self, path: str):
        self.path = path
        self.pa = _pyarrow(path)
        self.names = self._open()[0]

    def _open(self):
        pa = self.pa
        try:
            if self.path.endswith(".parquet"):
                import pyarrow.parquet as pq

                reader = pq.ParquetFile(self.path)
                return reader.schema_arrow.names, lambda cols: reader.iter_batches(columns=cols, batch_size=4096)
            import pyarrow.ipc as ipc

            source = pa.memory_map(self.path)
            try:
                reader = ipc.open_stream(source)  # what save_to_disk writes
                return reader.schema.names, lambda cols: (b.select(cols) for b in reader)
            except pa.ArrowInvalid:
                reader = ipc.open_file(source)
                return reader.schema.names, lambda cols: (reader.get_batch(i).select(cols)
                                                          for i in range(reader.num_record_batches))
        except (OSError, pa.ArrowException) as err:
            kind = "Parquet" if self.path.endswith(".parquet") else "Arrow"
            raise ConfigError(f"{self.path}: not a readable {kind} file ({err})") from None

    def batches(self, columns: list[str]) -> Iterator:
        """RecordBatches of just `columns` (in that order); a missing one is a ConfigError."""
        missing = [c for c in columns if c not in self.names]
        if missing:
            raise ConfigError(f"{self.path}: no column {missing[0]!r} (columns: {self.names}); pass "
                              f"--text-field, --id-field or --lang-field with the right name")
        yield from self._open()[1](columns)


def table_rows(path: str, text_field: str, id_field: str) -> Iterator[dict]:
    """Rows of one Parquet/Arrow file as dicts with the text (and id, where there is one)."""
    table = Table(path)
    for batch in table.batches([text_field] + ([id_field] if id_field in table.names else [])):
        yield from batch.to_pylist()


class LangFieldCorpus:
    """Rows of Parquet/Arrow files (or a saved dataset) with their language in a column."""

    def __init__(self, path: str, lang_field: str, text_field: str = "text", id_field: str = "id",
                 langs: list[str] | None = None):
        self.path, self.lang_field, self.text_field, self.id_field = path, lang_field, text_field, id_field
        self.root = path if os.path.isdir(path) else os.path.dirname(path)
        self.files = _table_files(path)
        pa = _pyarrow(path)
        import pyarrow.compute as pc

        self._rows: dict[str, int] = {}
        self._total_rows = 0
        for file in self.files:
            for batch in Table(file).batches([lang_field]):
                column = batch.column(0)
                if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                    raise ConfigError(f"{file}: column {lang_field!r} is {column.type}, not text; pass "
                                      f"--lang-field with the column naming each row's language")
                counts = pc.value_counts(column).to_pylist()
                for item in counts:
                    if item["values"] is None:
                        raise ConfigError(f"{file}: {item['counts']} rows have no {lang_field!r}; "
                                          f"fill or drop them")
                    self._rows[item["values"]] = self._rows.get(item["values"], 0) + item["counts"]
                self._total_rows += len(column)
        if not self._rows:
            raise ConfigError(f"{path}: no rows")
        self._rows = select_languages(self._rows, langs, f"{path}: no rows with {lang_field} in")
        self._bytes = sum(os.path.getsize(f) for f in self.files)
        self.description = {"kind": "table", "path": os.path.abspath(path), "lang_field": lang_field,
                            "text_field": text_field}

    @property
    def languages(self) -> list[str]:
        return sorted(self._rows)

    def input_bytes(self, lang: str) -> int:
        """The language's share of the input, by rows (what the progress bar counts toward)."""
        return self._bytes * self._rows[lang] // self._total_rows

    def documents(self, lang: str) -> Iterator[Document]:
        import pyarrow.compute as pc

        for file in self.files:
            rel = name_of(file, self.root)
            table = Table(file)
            columns = [self.lang_field, self.text_field] + ([self.id_field] if self.id_field in table.names else [])
            first = 0
            for batch in table.batches(columns):
                mask = pc.equal(batch.column(0), lang)
                rows = pc.indices_nonzero(mask).to_pylist()
                picked = batch.filter(mask).to_pylist()
                for row_number, row in zip(rows, picked):
                    doc = row_document(row, first + row_number, rel, file, self.text_field, self.id_field)
                    if doc is not None:
                        yield doc
                first += batch.num_rows


def _table_files(path: str) -> list[str]:
    """The Parquet/Arrow files of `path`: itself, a saved dataset's, or a folder's (sorted)."""
    if os.path.isfile(path):
        if not path.endswith(TABLE_SUFFIXES):
            raise ConfigError(f"{path}: --lang-field reads .parquet and .arrow files (or a folder of them, or "
                              f"a dataset saved with save_to_disk)")
        return [path]
    if not os.path.isdir(path):
        raise ConfigError(f"{path}: no such file or folder")
    if is_saved_dataset(path):
        return saved_dataset_files(path)
    files = []
    for d, dirs, names in os.walk(path):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for name in sorted(names):
            full = os.path.join(d, name)
            if name.startswith("."):
                continue
            if not name.endswith(TABLE_SUFFIXES):
                raise ConfigError(f"{full}: not a .parquet or .arrow file; with --lang-field the input is "
                                  f"tables only. Move other files out of the input folder")
            files.append(full)
    if not files:
        raise ConfigError(f"{path}: no .parquet or .arrow files")
    return files
