"""`climbstream inspect CONFIG --positions A:B`: what the stream holds, without reading it."""

from __future__ import annotations

import json

HELP = "show the language, cursor, shard and sample index of stream positions"
MAX_ROWS = 1_000_000


def add_arguments(parser) -> None:
    """Arguments of `climbstream inspect`."""
    parser.add_argument("config", help="a climbstream.yaml dataset config")
    parser.add_argument("--positions", default="0:16", help="range A:B of global positions (default 0:16)")
    parser.add_argument("--state", help="a saved dataset state to apply first: JSON, or a torch checkpoint "
                                        "holding it under 'data' (as the training loop saves)")
    parser.add_argument("--allow-manifest-change", action="store_true",
                        help="apply a --state saved on another version of the corpus (as "
                             "load_state_dict(state, allow_manifest_change=True) would on resume)")
    parser.add_argument("--stages", action="store_true",
                        help="show only the stages, each with the corpus it read (shards, samples and digest per "
                             "language), instead of positions")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def run(args) -> int:
    """Print one row per position."""
    from climbstream.stream.dataset import ClimbStream
    from climbstream.errors import ConfigError

    try:
        a, b = (int(x) for x in args.positions.split(":"))
    except ValueError:
        raise ConfigError(f"--positions: expected A:B with integers, got {args.positions!r}") from None
    if not 0 <= a <= b:
        raise ConfigError(f"--positions: need 0 <= A <= B, got {a}:{b}")
    if b - a > MAX_ROWS:
        raise ConfigError(f"--positions: {a}:{b} is {b - a} rows, more than {MAX_ROWS}; inspect a narrower range")
    stream = ClimbStream.from_config(args.config, rank=0, world_size=1)
    if args.state:
        stream.load_state_dict(_read_state(args.state), where=args.state,
                               allow_manifest_change=args.allow_manifest_change)
    if args.stages or (args.state and not args.json):
        _print_stages(stream, args.json)
        if args.stages:
            return 0
    rows = stream.describe(a, b)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{'position':>10} {'lang':>8} {'k':>10} {'epoch':>5}  shard:index")
    for r in rows:
        print(f"{r['position']:>10} {r['lang']:>8} {r['k']:>10} {r['epoch']:>5}  {r['shard']}:{r['index']}")
    return 0


def stage_rows(stream) -> list[dict]:
    """One row per stage: its start, weights (ratios) and the corpus version it began reading."""
    from climbstream.schedule.weights import WEIGHT_TOTAL

    versions = stream.corpus_versions()
    rows = []
    for i, stage in enumerate(stream.stages()):
        version = [v for v in versions if v["start"] <= stage["start"]][-1]
        rows.append({"stage": i, "start": stage["start"],
                     "weights": {n: w / WEIGHT_TOTAL for n, w in stage["weights"].items()},
                     "corpus_from": version["start"], "corpus": version["languages"]})
    return rows


def _print_stages(stream, as_json: bool) -> None:
    rows = stage_rows(stream)
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    for row in rows:
        weights = " ".join(f"{n} {w:.3f}" for n, w in row["weights"].items())
        print(f"stage {row['stage']} from position {row['start']}: {weights}")
        print(f"  corpus (read from position {row['corpus_from']}):")
        for name, r in row["corpus"].items():
            note = "  (old shards retired)" if r.get("restart") else ""
            print(f"    {name:>10}  {r['shards']:>6} shards  {r['samples']:>10} samples  {r['digest'][:12]}{note}")


def _read_state(path: str) -> dict:
    """A dataset state from a JSON file or a torch checkpoint ({'data': state, ...})."""
    import pickle

    from climbstream.errors import ConfigError

    try:
        if path.endswith((".pt", ".pth", ".ckpt")):
            import torch

            checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # a file cannot run code
            return checkpoint["data"] if "data" in checkpoint else checkpoint
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--state: {path} does not exist") from None
    except pickle.UnpicklingError as err:
        raise ConfigError(f"--state: {path} holds objects other than tensors and plain data, refused unread "
                          f"(torch.load weights_only): {str(err).splitlines()[0]}") from None
    except (json.JSONDecodeError, KeyError, TypeError, RuntimeError) as err:
        raise ConfigError(f"--state: {path} is not a dataset state or a checkpoint holding one ({err})") from None
