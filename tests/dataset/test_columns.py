"""columns=: other MDS columns reach each sample, matched to its tokens, through DataLoader workers."""

from __future__ import annotations

import os

import numpy as np
import pytest

from climbstream import ClimbStream
from climbstream.errors import ConfigError, ManifestError
from climbstream.prepare.scan import build_manifest

SEQ = 16
LANGS = {"en": 70, "fr": 30}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Foreign MDS with an id, a text and a per-sample array next to the tokens."""
    from streaming import MDSWriter

    root = str(tmp_path_factory.mktemp("columns"))
    data = {}
    for lang, n in LANGS.items():
        rng = np.random.default_rng(len(lang) + n)
        data[lang] = [rng.integers(0, 5000, SEQ).astype(np.uint16) for _ in range(n)]
        columns = {"tokens": "ndarray:uint16", "id": "int", "text": "str", "mask": "ndarray:uint8"}
        with MDSWriter(out=os.path.join(root, lang, "train"), columns=columns, size_limit=900) as writer:
            for i, tokens in enumerate(data[lang]):
                writer.write({"tokens": tokens, "id": i, "text": f"{lang} doc {i}",
                              "mask": (tokens % 2).astype(np.uint8)})
    build_manifest(root, "mds")
    return root, data


@pytest.mark.parametrize("num_workers", [0, 2])
def test_asked_columns_arrive_with_the_tokens_they_were_written_with(corpus, num_workers):
    root, data = corpus
    stream = ClimbStream(root, {"en": 0.6, "fr": 0.4}, global_batch=10, seed=1, rank=0, world_size=1,
                         columns=["id", "text", "mask"])
    seen = 0
    for _, batch in zip(range(6), stream.dataloader(num_workers=num_workers)):
        for j in range(len(batch["position"])):
            lang = stream.languages[int(batch["lang"][j])]
            i = int(batch["id"][j])
            assert batch["text"][j] == f"{lang} doc {i}"
            np.testing.assert_array_equal(batch["tokens"][j].numpy(), data[lang][i])
            np.testing.assert_array_equal(batch["mask"][j].numpy(), data[lang][i] % 2)
            seen += 1
    assert seen == 60


def test_columns_are_off_by_default_and_named_errors_otherwise(corpus, wds_corpus, tmp_path):
    root, _ = corpus
    sample = next(iter(ClimbStream(root, {"en": 1, "fr": 1}, global_batch=2, rank=0, world_size=1)))
    assert set(sample) == {"tokens", "lang", "position", "shard", "index"}
    with pytest.raises(ConfigError, match=r"columns: \['lang'\] are fields every sample has already"):
        ClimbStream(root, {"en": 1, "fr": 1}, global_batch=2, columns=["id", "lang"])
    with pytest.raises(ConfigError, match="columns: expected a list of column names"):
        ClimbStream(root, {"en": 1, "fr": 1}, global_batch=2, columns="id")
    with pytest.raises(ConfigError, match="is a tar corpus, whose manifest indexes only the token member"):
        ClimbStream(wds_corpus, {"method": "natural"}, global_batch=2, columns=["id"])
    missing = ClimbStream(root, {"en": 1, "fr": 1}, global_batch=2, rank=0, world_size=1, columns=["url"])
    with pytest.raises(ManifestError, match=r"MDS shard has no column 'url' \(columns: \['id', 'mask', 'text', "
                                            r"'tokens'\]\)"):
        next(iter(missing))
    config = tmp_path / "climbstream.yaml"
    config.write_text(f"sources: [{root}]\nweights: {{en: 1, fr: 1}}\nglobal_batch: 2\ncolumns: [id]\n")
    sample = next(iter(ClimbStream.from_config(str(config))))
    assert isinstance(sample["id"], int)
