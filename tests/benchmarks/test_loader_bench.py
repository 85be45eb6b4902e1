"""Smoke test of the loader benchmark's plumbing (not its numbers).

One real run of `benchmarks/loader.py` on the tiny corpus from local disk (every loader,
one worker, a few batches), plus the delay proxy and the pure summary functions. Timing
goals live in the benchmark itself; nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "benchmarks")
sys.path.insert(0, BENCH)

import loader  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402

REQUIRED = ("loader", "storage", "latency_ms", "workers", "samples_per_s", "tokens_per_s", "first_batch_s",
            "import_s", "resume_s", "peak_rss_mb", "batch_comp_err", "corpus", "repeats", "error")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """benchmarks/loader.py --quick on the tiny corpus, local storage, with markdown and plot."""
    work = tmp_path_factory.mktemp("bench")
    results = work / "results"
    proc = subprocess.run(
        [sys.executable, os.path.join(BENCH, "loader.py"), "--quick", "--corpora", "tiny", "--storage", "local",
         "--batch", "12", "--workers", "1", "--warmup", "1", "--batches", "3", "--work-dir", str(work),
         "--loaders", ",".join(loader.LOADERS), "--markdown", "--plot", "--results-dir", str(results),
         "--run-timeout-s", "60"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), results


def test_benchmark_prints_one_json_object_with_every_loader_and_field(bench_run):
    result, _ = bench_run
    assert result["quick"] is True and result["repeats"] == 1
    assert "1 repeat" in result["repeats_note"] and "--quick" in result["repeats_note"]
    assert sorted(r["loader"] for r in result["runs"]) == sorted(loader.LOADERS)
    for run in result["runs"]:
        assert set(REQUIRED) <= set(run), run
        assert run["error"] is None, run
        assert (run["corpus"], run["storage"], run["latency_ms"], run["workers"], run["repeats"]) == ("tiny", "local", 0, 1, 1)
        assert run["samples_per_s"] > 0 and run["first_batch_s"] > 0 and run["import_s"] > 0 and run["peak_rss_mb"] > 0
        # tokens/s counts real tokens: seq_len (64) per sample
        assert run["tokens_per_s"] == pytest.approx(run["samples_per_s"] * 64)
    assert {"torch", "mosaicml-streaming", "webdataset"} <= set(result["versions"])
    assert result["machine"]["cpus"] >= 1


def test_resume_time_is_null_only_for_webdataset(bench_run):
    result, _ = bench_run
    resume = {r["loader"]: r["resume_s"] for r in result["runs"]}
    assert resume.pop("webdataset") is None
    assert all(v is not None and v > 0 for v in resume.values()), resume


def test_climbstream_batches_are_block_exact_and_targets_are_reported(bench_run):
    result, _ = bench_run
    errors = {r["loader"]: r["batch_comp_err"] for r in result["runs"]}
    assert errors["climbstream"] < 2 and errors["climbstream-tar"] < 2
    (target,) = result["targets"]
    assert target["corpus"] == "tiny" and target["required_ratio"] == 1.0
    assert target["best_peer"] in ("mosaic", "webdataset") and target["comp_err_ok"] is True


def test_markdown_and_plot_are_written_into_the_results_dir(bench_run):
    result, results = bench_run
    table = (results / "loader.md").read_text()
    for name in loader.LOADERS:
        assert f"| tiny | local | 0 | {name} |" in table
    assert (results / "loader.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((results / "loader.json").read_text())["runs"] == result["runs"]


def test_summary_takes_the_median_of_good_repeats_and_keeps_a_peer_error():
    base = {"corpus": "c", "storage": "s3", "latency_ms": 20.0, "workers": 2, "batch": 8}
    raw = [dict(base, loader="mosaic", samples_per_s=v, first_batch_s=1.0, import_s=0.25, error=None)
           for v in (10.0, 30.0, 20.0)]
    raw.append(dict(base, loader="webdataset", error="exit code 1: boom"))
    raw += [dict(base, loader="climbstream", samples_per_s=v, first_batch_s=0.5, import_s=1.0, batch_comp_err=1.0,
                 error=None) for v in (25.0, 35.0)]
    runs = {r["loader"]: r for r in loader.summarize(raw)}
    assert runs["mosaic"]["samples_per_s"] == 20.0 and runs["mosaic"]["repeats"] == 3
    assert runs["climbstream"]["samples_per_s"] == 30.0
    assert runs["webdataset"]["repeats"] == 0 and runs["webdataset"]["samples_per_s"] is None
    assert runs["webdataset"]["error"] == "exit code 1: boom"
    (target,) = loader.targets(list(runs.values()))
    # with added latency climbstream must reach 1.5x the best peer that ran: 30 / 20 = 1.5
    assert target["best_peer"] == "mosaic" and target["required_ratio"] == 1.5
    assert target["throughput_ok"] is True and target["first_batch_ok"] is True
    assert target["first_batch_with_import_ok"] is False  # 0.5 + 1.0 > 1.0 + 0.25


def _echo_server():
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(1 << 16):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_delay_proxy_keeps_bytes_in_order_and_adds_the_round_trip():
    server = _echo_server()
    payload = os.urandom(3 << 20)
    try:
        with DelayProxy(server.getsockname()[1], rtt_ms=40) as proxy:
            with socket.create_connection(("127.0.0.1", proxy.port)) as conn:
                start = time.perf_counter()
                conn.sendall(b"ping")
                assert conn.recv(4) == b"ping"
                round_trip = time.perf_counter() - start
                sender = threading.Thread(target=conn.sendall, args=(payload,))
                sender.start()
                got = bytearray()
                while len(got) < len(payload):
                    got += conn.recv(1 << 16)
                sender.join()
            process = proxy.process
        assert round_trip >= 0.040
        assert bytes(got) == payload
        assert process.poll() is not None  # stopped on leaving the block
    finally:
        server.close()
