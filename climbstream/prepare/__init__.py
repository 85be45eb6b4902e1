"""The write side: raw text (or shards written elsewhere) to a prepared corpus and its manifest.

- prepare.py        prepare(): documents -> tokens -> packed samples -> shards + manifest
- corpus.py         Corpus inputs: folders of text, JSONL, compressed text
- documents.py      Document; choosing languages and a row's document (shared by the inputs)
- gettext_corpus.py the machine's gettext catalogs as a multilingual corpus
- table_input.py    Parquet / Arrow tables, saved datasets, --lang-field
- tokenizer.py      byte-level and tokenizer.json tokenizers
- packing.py        documents packed into fixed-length samples; the held-out rule
- writers.py        MDS and tar split writers
- parts.py          prepare --part i/N and the merge of part manifests
- scan.py           a manifest for shards written by someone else (`climbstream manifest`)
- append.py         the grown manifest of an existing corpus (`climbstream manifest --append`)
"""
