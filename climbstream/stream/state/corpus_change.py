"""A saved corpus history met by this corpus: growth continues it, a rewrite is refused by name.

Why here: `load_state_dict(state, allow_manifest_change=True)` is the one way a run
continues on a changed corpus (interfaces: dataset state). The saved state's last corpus
version (formats/corpus_record.py) is compared with this corpus language by language:
appended shards and added languages become a new CorpusVersion at the resume position,
which the grown orders (schedule/growth.py) turn into an exactly-once stream; a language
whose old shards changed or went away is retired when the new stage gives it weight 0,
and refused with CorpusRewriteError, naming the shards, when it keeps weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from climbstream.errors import CorpusRewriteError, StateError
from climbstream.formats.corpus_record import CorpusVersion, LanguageRecord, compare_language


def continued_history(saved: tuple | None, tags: Mapping[str, str] | None, shards: Mapping[str, Sequence],
                      languages: Sequence[str], weights: np.ndarray, position: int, changed: bool,
                      where: str) -> tuple:
    """The cursor's corpus history after loading a state over this corpus (() = this corpus from 0).

    `saved`/`tags`: the state's corpus versions and last tags (None for a state saved before
    they existed); `shards`: this corpus's train shards per language; `weights`: the new
    stage's weights (languages order); `changed`: the manifest fingerprint differs.
    """
    if saved is None:
        if changed:
            raise StateError(
                f"{where}: the state has no corpus record (saved by a climbstream before corpus growth), so a "
                f"changed corpus cannot be told grown from rewritten; resume it on the corpus it was saved on, "
                f"save the state again, then continue on the changed corpus")
        return ()
    if not changed:
        return () if len(saved) == 1 else tuple(saved)
    last = saved[-1]
    if position < last.start:
        raise StateError(f"{where}.corpus: its last version starts at {last.start}, after the position {position}; "
                         f"the state is damaged")
    weight = dict(zip(languages, (int(w) for w in weights)))
    names = sorted(set(languages) | {n for n, _ in last.languages})
    changes = {n: compare_language(n, last.record(n), (tags or {}).get(n, ""), shards.get(n, [])) for n in names}
    refused = [c for c in changes.values() if c.kind in ("rewritten", "retired") and weight.get(c.name, 0) > 0]
    if refused:
        named = "; ".join(f"{c.name}: " + (c.shards if c.kind == "rewritten" else "all train shards gone")
                          for c in refused)
        raise CorpusRewriteError(
            f"{where}: the corpus was rewritten, not grown ({named}); a run continues exactly only over a corpus "
            f"whose languages keep their old shards, unchanged and first (append with 'climbstream manifest "
            f"--append'): restore those shards, or give {', '.join(c.name for c in refused)} weight 0 from this "
            f"change on to retire the old ones")
    if all(c.kind == "same" for c in changes.values()):
        return () if len(saved) == 1 else tuple(saved)
    version = CorpusVersion(position, tuple(
        (n, LanguageRecord.of(shards.get(n, []), restart=changes[n].kind in ("rewritten", "retired"))) for n in names))
    return (*saved, version)
