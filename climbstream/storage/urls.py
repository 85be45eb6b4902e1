"""URL helpers: which scheme a URL has, local paths, joining. Pure functions, no I/O.

Manifests hold paths relative to their corpus root, joined here with the root's URL, so
a corpus reads the same from a folder, file://, s3:// or any fsspec scheme.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from climbstream.errors import StorageError


def url_scheme(url: str) -> str:
    """'s3', 'gs', ... or 'file' for plain paths and file:// URLs."""
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower() or "file"


def is_remote(url: str) -> bool:
    """True for URLs with a scheme other than file:// (s3://, gs://, ...)."""
    return url_scheme(url) != "file"


def local_path(url: str) -> str:
    """The filesystem path of a plain path or a file:// URL (StorageError for anything else)."""
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"{url}: file:// URLs must name a local path (file:///abs/path)")
        return unquote(parts.path)
    if "://" in url:
        raise StorageError(f"{url}: not a local path or file:// URL")
    return url


def join_url(root: str, relative: str) -> str:
    """`relative` resolved against the directory URL `root`; absolute paths and URLs win."""
    if "://" in relative or relative.startswith("/") or not root:
        return relative
    while relative.startswith("./"):
        relative = relative[2:]
    return root + ("" if root.endswith("/") else "/") + relative


def parent_url(url: str) -> str:
    """The directory URL holding `url` ('s3://b/a/m.json' -> 's3://b/a'); a bucket is its own parent."""
    stripped = url.rstrip("/")
    if "://" in stripped:
        scheme, rest = stripped.split("://", 1)
        head, sep, _ = rest.rpartition("/")
        return f"{scheme}://{head or '/'}" if sep else f"{scheme}://{rest}"
    return os.path.dirname(stripped) or "."
