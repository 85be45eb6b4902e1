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
        stream.load_state_dict(_read_state(args.state), where=args.state)
    rows = stream.describe(a, b)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    print(f"{'position':>10} {'lang':>8} {'k':>10} {'epoch':>5}  shard:index")
    for r in rows:
        print(f"{r['position']:>10} {r['lang']:>8} {r['k']:>10} {r['epoch']:>5}  {r['shard']}:{r['index']}")
    return 0


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
