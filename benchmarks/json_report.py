"""How a benchmark hands over its result: one JSON object on stdout, and in a file if asked."""

from __future__ import annotations

import json


def emit(report: dict, out: str | None = None) -> None:
    """Print `report` as indented JSON; also write it to `out` when given."""
    text = json.dumps(report, indent=1)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
