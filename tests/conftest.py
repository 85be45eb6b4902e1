"""Fixtures shared by every test folder: small prepared corpora (once per session)."""

from __future__ import annotations

import pytest

from tests.corpora import SIZES, prepare, write_text_corpus


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory) -> str:
    return write_text_corpus(str(tmp_path_factory.mktemp("text")), SIZES)


@pytest.fixture(scope="session")
def mds_corpus(tmp_path_factory, text_corpus) -> str:
    return prepare(text_corpus, str(tmp_path_factory.mktemp("mds")), "mds")


@pytest.fixture(scope="session")
def wds_corpus(tmp_path_factory, text_corpus) -> str:
    return prepare(text_corpus, str(tmp_path_factory.mktemp("wds")), "wds")
