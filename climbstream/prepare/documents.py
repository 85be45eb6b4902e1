"""A document, and the two rules every input reader shares: choosing languages, and a row's document.

Why a module of its own: the folder corpus (corpus.py) and the table inputs
(table_input.py) both build documents this way, and corpus.py dispatches to the table
readers; keeping the shared part here lets both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from climbstream.errors import ConfigError


@dataclass(frozen=True)
class Document:
    id: str
    text: str


def select_languages(found: dict, langs: list[str] | None, missing_message: str) -> dict:
    """`found` ({lang: ...}) cut to `langs` in that order, or all of it; ConfigError naming
    the languages asked for that are not there."""
    if not langs:
        return found
    missing = [lang for lang in langs if lang not in found]
    if missing:
        raise ConfigError(f"{missing_message} {missing} (found {sorted(found)})")
    return {lang: found[lang] for lang in langs}


def row_document(row: dict, n: int, rel: str, where: str, text_field: str, id_field: str) -> Document | None:
    """The document of row `n` (0-based) of the file `rel`: its id the row's `id_field`, else
    `rel#n`; None for a row of blank text. A text that is not a string is a ConfigError."""
    text = row[text_field]
    if not isinstance(text, str):
        raise ConfigError(f"{where}: row {n + 1}: field {text_field!r} is {type(text).__name__}, not text")
    if not text.strip():
        return None
    doc_id = row.get(id_field)
    return Document(str(doc_id) if doc_id is not None else f"{rel}#{n}", text)
