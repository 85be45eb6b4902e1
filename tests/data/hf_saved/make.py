"""Writes the saved datasets in this folder with the `datasets` library itself.

    python -m venv /tmp/hf && /tmp/hf/bin/pip install datasets && /tmp/hf/bin/python make.py

by_language/<lang>/: one dataset per language (columns id, text); all/: one dataset of
every language (columns id, text, lang), rows interleaved. The text is generated here.
"""

import os
import random
import shutil

from datasets import Dataset

HERE = os.path.dirname(os.path.abspath(__file__))
LANGS = {"de": 30, "fr": 20, "sw": 14}


def documents(lang: str, n: int) -> list[dict]:
    rng = random.Random(lang)
    letters = "abcdefghij" + {"de": "äöü", "fr": "éèç", "sw": "ng"}[lang]
    return [{"id": f"{lang}-{i}", "text": f"[{lang} {i}] " + " ".join(
        "".join(rng.choice(letters) for _ in range(rng.randint(2, 7))) for _ in range(rng.randint(3, 12)))}
        for i in range(n)]


def main() -> None:
    for sub in ("by_language", "all"):
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)
    rows = []
    for lang, n in LANGS.items():
        docs = documents(lang, n)
        Dataset.from_list(docs).save_to_disk(os.path.join(HERE, "by_language", lang))
        rows += [dict(doc, lang=lang) for doc in docs]
    rows.sort(key=lambda r: (int(r["id"].split("-")[1]), r["lang"]))  # interleaved, each language in order
    Dataset.from_list(rows).save_to_disk(os.path.join(HERE, "all"))


if __name__ == "__main__":
    main()
