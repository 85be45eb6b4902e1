"""`climbstream report LOGDIR_OR_LOG [--out DIR]`: plots and a summary of a loss log."""

from __future__ import annotations

import argparse

HELP = "plot per-language loss, the mixture over time and tokens per language from a loss log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", metavar="LOGDIR_OR_JSONL",
                        help="a loss log (.jsonl or .csv) or the directory holding losses.jsonl")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where to write the PNG files (default: the log's directory)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from climbstream.report.plots import write_plots
    from climbstream.report.summary import summarize
    from climbstream.formats.loss_log import LossLog, LossLogError

    loss_log = LossLog.read(args.log)
    if not loss_log.of_kind("language"):
        raise LossLogError(f"{loss_log.source}: no per-language records to report; the run has not "
                           f"flushed yet (see LanguageLossTracker flush_every)")
    out = Path(args.out) if args.out else Path(loss_log.source).parent
    print(summarize(loss_log))
    for path in write_plots(loss_log, out):
        print(f"wrote {path}")
    return 0
