"""The package's public surface: lazy names are listed, importable, typed; -v works after a subcommand."""

from __future__ import annotations

import logging
import os

import climbstream
from climbstream.cli import build_parser, main


def test_dir_lists_every_public_name_and_each_imports():
    names = dir(climbstream)
    for name in climbstream.__all__:
        assert name in names
        assert getattr(climbstream, name) is not None
    from climbstream import StorageOptions  # the top level, not climbstream.storage.options

    assert StorageOptions.__name__ == "StorageOptions"


def test_package_ships_its_type_marker():
    assert os.path.exists(os.path.join(os.path.dirname(climbstream.__file__), "py.typed"))


def test_verbose_flag_works_before_and_after_the_subcommand():
    parser = build_parser()
    assert parser.parse_args(["prepare", "--from-gettext", "--out", "x", "-v"]).verbose == 1
    assert parser.parse_args(["-vv", "prepare", "--from-gettext", "--out", "x"]).verbose == 2
    assert parser.parse_args(["prepare", "--from-gettext", "--out", "x"]).verbose == 0


def test_verbose_after_the_subcommand_turns_on_info_logging(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.update(kw))
    assert main(["inspect", str(tmp_path / "missing.yaml"), "-v"]) == 2  # fails, but after logging is set
    assert seen["level"] == logging.INFO


def test_the_api_reference_lists_every_public_name_and_is_current():
    import importlib.util
    import os

    import climbstream
    import climbstream.mixture

    here = os.path.join(os.path.dirname(__file__), "..", "..", "docs")
    spec = importlib.util.spec_from_file_location("make_api", os.path.join(here, "make_api.py"))
    make_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_api)
    with open(os.path.join(here, "api.md"), encoding="utf-8") as f:
        text = f.read()
    assert text == make_api.render(), "docs/api.md is stale: run .venv/bin/python docs/make_api.py"
    for name in [*climbstream.__all__, *climbstream.mixture.__all__]:
        if not name.startswith("__"):
            assert f"### `{name}" in text, name
