"""A sweep as N parts (one per machine or task), and the merge of their runs tables.

`sweep --part i/N` trains the runs `runs_of_part` gives part i, computed from the design
alone (its number of runs), so a Slurm array, a Kubernetes indexed Job or Ray tasks run
the parts in any order with nothing shared but the output folder. Every run of a sweep
trains the same steps at the same batch, so parts are balanced by run count: run r goes
to part r mod N + 1 (prepare's `assign_parts` with equal sizes deals them out so). Part i
writes `<out stem>.part-0000i-of-0000N.csv` beside `--out` and keeps checkpoints in the
sweep's one work folder (run folders are per run, so parts never share one); a part that
dies resumes like any sweep. `merge_runs` checks that the part tables cover the design,
each run in the part that owns it, with the design's ratios, and writes `--out`: the same
file, rows in the same order, that one machine's sweep writes.
"""

from __future__ import annotations

import csv
import os
import re

from climbstream.errors import ConfigError
from climbstream.prepare.parts import assign_parts, parse_part
from climbstream.train.sweep_design import load_design, ratio_cells

__all__ = ["parse_part", "runs_of_part", "part_table_path", "merge_runs"]


def runs_of_part(num_runs: int, index: int, count: int) -> list[int]:
    """The runs (0-based, ascending) that part `index` of `count` (1-based) trains."""
    if not 1 <= index <= count:
        raise ConfigError(f"--part {index}/{count}: needs 1 <= i <= N")
    names = assign_parts({f"{run:09d}": 1 for run in range(num_runs)}, count)[index - 1]
    return [int(name) for name in names]


def part_table_path(runs_out: str, index: int, count: int) -> str:
    """Where part `index` of `count` writes its runs table: beside `runs_out`."""
    stem, ext = os.path.splitext(runs_out)
    return f"{stem}.part-{index:05d}-of-{count:05d}{ext or '.csv'}"


def _part_tables(runs_out: str) -> dict[int, tuple[int, str]]:
    """{part index: (part count, path)} of the part tables beside `runs_out`."""
    folder = os.path.dirname(os.path.abspath(runs_out))
    stem, ext = os.path.splitext(os.path.basename(runs_out))
    pattern = re.compile(re.escape(stem) + r"\.part-(\d{5})-of-(\d{5})" + re.escape(ext or ".csv") + "$")
    found: dict[int, tuple[int, str]] = {}
    counts = set()
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        match = pattern.match(name)
        if match:
            counts.add(int(match.group(2)))
            found[int(match.group(1))] = (int(match.group(2)), os.path.join(folder, name))
    if len(counts) > 1:
        raise ConfigError(f"{folder}: part tables of {stem} for different part counts {sorted(counts)}; "
                          f"remove the stale ones and merge again")
    return found


def merge_runs(design: str, runs_out: str, overwrite: bool = False) -> dict:
    """Join the part tables of `runs_out` into it; returns {parts, runs, rows, runs_out}.

    ConfigError naming the part and run when a part is missing, a run is missing or in
    the wrong part, the headers differ, or a row's ratios are not the design's.
    """
    langs, mixtures = load_design(design)
    tables = _part_tables(runs_out)
    if not tables:
        stem, ext = os.path.splitext(runs_out)
        raise ConfigError(f"{runs_out}: no part tables ({stem}.part-*-of-*{ext or '.csv'}) to merge; write them "
                          f"with 'climbstream sweep ... --part i/N'")
    count = next(iter(tables.values()))[0]
    missing = [i for i in range(1, count + 1) if i not in tables]
    if missing:
        raise ConfigError(f"{runs_out}: parts {missing} of {count} have written no table yet; run "
                          f"'climbstream sweep ... --part i/{count}' for them")
    header, rows_by_run = None, {}
    for index in range(1, count + 1):
        path = tables[index][1]
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows:
            raise ConfigError(f"{path}: empty; rerun 'climbstream sweep ... --part {index}/{count}'")
        if header is None:
            header = rows[0]
        elif rows[0] != header:
            raise ConfigError(f"{path}: columns differ from part 1's; run every part with the same design and options")
        owned = set(runs_of_part(len(mixtures), index, count))
        for row in rows[1:]:
            record = dict(zip(header, row))
            run = int(record["run"])
            if run not in owned:
                raise ConfigError(f"{path}: run {run} belongs to part {_owner(run, len(mixtures), count)} of "
                                  f"{count}, not {index}; was this part run with another design or part count?")
            if [record.get(f"ratio_{n}") for n in langs] != ratio_cells(mixtures[run], langs):
                raise ConfigError(f"{path}: run {run} has other ratios than {design} gives it; every part must "
                                  f"train the same design")
            rows_by_run.setdefault(run, []).append(row)
        absent = sorted(owned - set(rows_by_run))
        if absent:
            raise ConfigError(f"{path}: runs {absent} are not done yet; rerun 'climbstream sweep ... --part "
                              f"{index}/{count}' (it resumes) and merge again")
    if os.path.exists(runs_out) and not overwrite:
        raise ConfigError(f"{runs_out} already exists; pass --overwrite to replace it with the merged table")
    tmp = runs_out + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for run in range(len(mixtures)):
            writer.writerows(rows_by_run[run])
    os.replace(tmp, runs_out)
    return {"parts": count, "runs": len(mixtures), "rows": sum(map(len, rows_by_run.values())),
            "runs_out": runs_out}


def _owner(run: int, num_runs: int, count: int) -> int:
    return next(i for i in range(1, count + 1) if run in runs_of_part(num_runs, i, count))
