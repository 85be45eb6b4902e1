"""The built-in end-to-end demo: real multilingual text to a re-weighted training run.

Steps, each reusing what an earlier run left in `out_dir`:
1. corpus: the machine's gettext catalogs (a generated corpus where there are none),
   prepared into MDS shards with a manifest;
2. initial mixture: temperature sampling (alpha 0.3) with epoch caps;
3. training: a small byte-level transformer on 2 CPU cores, logging per-language loss,
   scoring held-out text, re-solving the mixture at checkpoints;
4. report: loss curves, the mixture over time, tokens per language (PNG + text).
It is deterministic given the seed.
"""

from __future__ import annotations

import logging
import os

from climbstream.formats.manifest import MANIFEST_NAME

log = logging.getLogger(__name__)

# A skewed high/low-resource mix of locales present on most Debian machines.
DEMO_LANGUAGES = ["en_GB", "es", "fr", "hi", "is", "ja", "ru", "uk"]
DEMO_SEQ_LEN = 128
DEMO_MAX_BYTES = 600_000


def ensure_gettext_corpus(out: str, *, seq_len: int = DEMO_SEQ_LEN, max_bytes_per_lang: int = DEMO_MAX_BYTES,
                          progress: bool = False, locale_dir: str = "/usr/share/locale") -> str:
    """Prepare the demo corpus at `out` unless a manifest is already there; returns `out`."""
    from climbstream.prepare.gettext_corpus import catalog_sizes, gettext_corpus
    from climbstream.prepare.prepare import prepare

    if os.path.exists(os.path.join(out, MANIFEST_NAME)):
        return out
    available = catalog_sizes(locale_dir) if os.path.isdir(locale_dir) else {}
    langs = [lang for lang in DEMO_LANGUAGES if lang in available]
    corpus = gettext_corpus(locale_dir, langs if len(langs) >= 4 else None, max_bytes_per_lang)
    prepare(corpus, out, fmt="mds", seq_len=seq_len, heldout_frac=0.05, shard_samples=256, progress=progress)
    return out


def run_demo(out_dir: str = "out/demo", *, steps: int = 240, seed: int = 0, num_workers: int = 1,
             resolve_every: int = 60, progress: bool = True) -> dict:
    """Run the whole demo; returns the training summary plus the report's files."""
    from climbstream.report.plots import write_plots
    from climbstream.report.summary import summarize
    from climbstream.formats.loss_log import LossLog
    from climbstream.train.loop import TrainConfig, train

    corpus = ensure_gettext_corpus(os.path.join(out_dir, "corpus"), progress=progress)
    train_dir = os.path.join(out_dir, "train")
    cfg = TrainConfig(
        corpus=corpus, out_dir=train_dir, weights={"method": "temperature", "alpha": 0.3, "e_max": 8.0},
        steps=steps, global_batch=16, seed=seed, checkpoint_every=resolve_every, resolve_every=resolve_every,
        heldout_every=resolve_every // 2, heldout_samples=24, num_workers=num_workers, progress=progress,
        reweight={"e_max": 8.0},
    )
    summary = train(cfg)
    loss_log = LossLog.read(os.path.join(train_dir, "losses.jsonl"))
    summary["report_files"] = [str(p) for p in write_plots(loss_log, os.path.join(out_dir, "report"))]
    summary["report_text"] = summarize(loss_log)
    return summary
