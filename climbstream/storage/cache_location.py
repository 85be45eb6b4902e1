"""Where a machine's shard cache lives when the caller names none.

Compressed MDS shards can only be read decompressed, and they are decompressed once per
machine into the shard cache; refusing such a corpus without a `cache_dir` made the
simplest call fail. mosaicml-streaming (a temp folder per dataset) and HF datasets
(~/.cache/huggingface) pick a per-machine default instead; so does this, under the XDG
convention: `$XDG_CACHE_HOME/climbstream` or `~/.cache/climbstream`. Passing `cache_dir`
(or `cache_dir:` in YAML) overrides it. Every corpus shares the one folder: entries are
keyed by the shard's URL, and every process of the machine coordinates through the
cache's file locks, so ranks and workers decompress each shard once.
"""

from __future__ import annotations

import os

from climbstream.errors import ConfigError


def default_cache_dir(environ: dict[str, str] | None = None) -> str:
    """`$XDG_CACHE_HOME/climbstream`, else `~/.cache/climbstream` (an absolute path).

    A relative XDG_CACHE_HOME is ignored, as the XDG base directory specification says.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        home = env.get("HOME") or os.path.expanduser("~")
        if not os.path.isabs(home):
            raise ConfigError("no cache_dir given and no home folder to put the default shard cache in "
                              "(HOME is unset); pass cache_dir (cache_dir: in YAML) or set XDG_CACHE_HOME")
        base = os.path.join(home, ".cache")
    return os.path.join(base, "climbstream")
