"""Does the Climb allocation train better than temperature, UniMax and uniform? Prints one JSON object.

PROTOCOL (fixed before the ranking at the CPU size was looked at; changing it means
saying so next to the new numbers):

Corpus. allocation_corpus.py: 8 gettext languages cut to a 20:1 high/low-resource skew
(is 25K, hi 49K, en_GB 123K, uk 242K, es/fr/ja/ru 486K training tokens), seq_len 128,
and ~126 held-out samples (16 KB) per language, small languages included.

Caps. e_max = 1 (no language repeated) and the solver's default floor (0.1/K) for every
method except uniform. At the final budget the caps bind (is and hi at the CPU size), so
UniMax differs from uniform and temperature is cut at is's cap.

Methods, solved for the final budget D = steps x global batch x seq_len:
- climb: the Climb law (library defaults: bounded W, ridge by CV) fitted on proxy runs,
  solved with allocate("climb");
- temperature: alpha 0.3; unimax: UniMax; both through allocate() under the same caps;
- uniform: 1/K with no cap (the naive baseline; it repeats the small languages).

Proxies. `--proxies` Dirichlet mixtures (design seed 0) projected onto the caps and floors
at the proxy budget, each trained once for `--proxy-steps` steps with the same trainer,
init and data seed (PROXY_SEED), scored on the whole held-out split. The law is fitted at
that budget and extrapolated to D. Reported: its 4-fold CV error on the proxies and, per
method, its predicted mean loss next to the trained one (prediction error).

Final runs (common random numbers). For seed s = 0..seeds-1 every method starts from the
same initial weights (torch seed s) and reads each language's samples in the same order
(stream seed s); the learning rate warms up for 10 steps and decays to 0 by cosine, so
the last iterate is not a noisy point of a constant-rate run (allocation_train.py). Every
model is scored on the whole held-out split, per sample.

Statistics (allocation_stats.py). Per seed, the difference of mean held-out loss (every
language weighs the same) between two methods; the 95% interval combines the spread over
seeds (t with seeds-1 degrees of freedom) and the evaluation standard error over held-out
samples. A gap is reported as real only when it is at least 3 half-widths; otherwise it
is not resolved at this size. The ranking groups methods no resolved gap separates.

Regret (K = 3: en_GB, ru, uk). Proxies and law as above on the three languages; every
interior mixture of a 1/`--regret-parts` grid and each method's pick trained with one
common seed; regret = pick's loss - the best trained mixture's, with its evaluation
standard error. No cap binds at that budget, so there UniMax is uniform; with one seed the
regret carries no training-noise interval (the K=8 paired spread is the guide).

Sizes: the default is the CPU size: 24 proxies of 100 steps, final runs of 200 steps
(409,600 tokens; caps bind for is and hi) with 6 seeds, K=3 grid of 1/6 (10 mixtures) at
120 steps after 12 proxies of 60 steps; two 1-thread training processes (about 10
minutes on 2 idle cores). It was chosen from one pilot at a smaller size (8 proxies of 75
steps, finals of 150 steps, 3 seeds, no grid), whose ranking was seen: with 8 proxies
each language's law row had more parameters (E, B, beta, 7 transfers) than runs, so the
proxies went to 24 (3 per language, as in the gettext runs of climb-method.md); the
per-seed differences to climb spread by 0.012, so the seeds went to 6 (t 2.57 instead
of 4.30). Nothing else changed after the pilot. `--quick` is the smoke test's size
(shapes only, no claim). No GPU size was run.

    .venv/bin/python benchmarks/allocation.py --out out/allocation > benchmarks/results/allocation.json
    .venv/bin/python benchmarks/allocation.py --quick --out /tmp/allocation
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CPU = {"proxies": 24, "proxy_steps": 100, "steps": 200, "seeds": 6,
       "regret_proxies": 12, "regret_proxy_steps": 60, "regret_steps": 120, "regret_parts": 6}
QUICK = {"proxies": 4, "proxy_steps": 4, "steps": 6, "seeds": 2,
         "regret_proxies": 4, "regret_proxy_steps": 4, "regret_steps": 4, "regret_parts": 4}
E_MAX = 1.0
REGRET_LANGUAGES = ("en_GB", "ru", "uk")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/allocation", help="work directory (the corpus when --corpus is not given)")
    ap.add_argument("--corpus", default=None, help="prepared corpus (default: the skewed gettext corpus under --out)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help=f"smoke-test size: {QUICK}")
    for key, value in CPU.items():
        ap.add_argument("--" + key.replace("_", "-"), type=int, default=None, help=f"default {value}")
    ap.add_argument("--global-batch", type=int, default=16)
    ap.add_argument("--e-max", type=float, default=E_MAX)
    ap.add_argument("--regret-languages", default=",".join(REGRET_LANGUAGES),
                    help="the K=3 regret grid's languages, comma-separated ('' to skip the grid)")
    ap.add_argument("--markdown", action="store_true", help="print the tables after the JSON")
    ap.add_argument("--render", metavar="JSON", help="print the tables of a saved result and exit (no training)")
    ap.add_argument("--workers", type=int, default=2, help="training processes side by side (default 2: one per core)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1, see allocation_train.Runner)")
    args = ap.parse_args(argv)
    for key, value in (QUICK if args.quick else CPU).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.seeds < 2:
        ap.error("--seeds must be >= 2 (a paired interval needs two)")
    return args


def render(out: dict) -> str:
    """Markdown tables of a result: methods with paired intervals and the law's predictions; the regret grid."""
    m = out["methods"]
    lines = ["| method | mean held-out loss | per seed | minus climb (95% interval) | resolved | law predicted | "
             "prediction error |", "|---|---|---|---|---|---|---|"]
    for name, r in sorted(m["results"].items(), key=lambda kv: kv[1]["mean_heldout_loss"]):
        d = r["minus_climb"]
        diff = "-" if d is None else f"{d['mean']:+.4f} +- {d['half_width']:.4f}"
        lines.append(f"| {name} | {r['mean_heldout_loss']:.4f} | {', '.join(f'{x:.3f}' for x in r['per_seed'])} | "
                     f"{diff} | {'-' if d is None else ('yes' if d['resolved'] else 'no')} | "
                     f"{r['law_predicted_loss']:.4f} | {r['prediction_error']:+.4f} |")
    lines += ["", "| pair | mean difference | 95% half-width | training SE | evaluation SE | resolved |",
              "|---|---|---|---|---|---|"]
    for key, p in m["pairs"].items():
        lines.append(f"| {key} | {p['mean']:+.4f} | {p['half_width']:.4f} | {p['train_se']:.4f} | {p['eval_se']:.4f} | "
                     f"{'yes' if p['resolved'] else 'no'} |")
    if "regret" in out:
        g = out["regret"]
        lines += ["", f"K=3 ({', '.join(g['languages'])}): best trained mixture {g['best']['label']} "
                  f"{g['best']['ratios']} at {g['best']['loss']:.4f}", "",
                  "| pick | ratios | trained loss | regret | evaluation SE | law predicted |", "|---|---|---|---|---|---|"]
        for name, p in g["picks"].items():
            lines.append(f"| {name} | {p['ratios']} | {p['loss']:.4f} | {p['regret']:+.4f} | "
                         f"{p['regret_eval_stderr']:.4f} | {p['law_predicted_loss']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    import torch

    from allocation_corpus import ensure_skewed_corpus
    from allocation_protocol import run_study
    from allocation_train import Runner, RunShape
    from climbstream.formats.manifest import MANIFEST_NAME, Manifest
    from climbstream.mixture.inputs import read_counts

    args = parse_args(argv)
    if args.render:
        with open(args.render, encoding="utf-8") as f:
            saved = json.load(f)
        print(render(saved))
        return saved
    started, cpu_started = time.time(), time.process_time()
    os.makedirs(args.out, exist_ok=True)
    corpus = args.corpus or ensure_skewed_corpus(os.path.join(args.out, "corpus"))
    seq_len = Manifest.load(corpus).seq_len
    counts = read_counts(os.path.join(corpus, MANIFEST_NAME))

    def shape(steps: int) -> RunShape:
        return RunShape(steps=steps, global_batch=args.global_batch, device=args.device)

    out = {"protocol": "benchmarks/allocation.py docstring", "corpus": corpus, "device": args.device,
           "machine": {"cpus": os.cpu_count(), "workers": args.workers, "torch_threads_per_worker": args.threads,
                       "torch": torch.__version__, "python": platform.python_version(),
                       "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
           "sizes": {k: getattr(args, k) for k in CPU} | {"global_batch": args.global_batch, "quick": args.quick},
           "available_tokens": counts}
    regret_langs = sorted(n for n in args.regret_languages.split(",") if n)
    unknown = sorted(set(regret_langs) - set(counts))
    if unknown:
        raise SystemExit(f"--regret-languages: {unknown} are not languages of {corpus} ({sorted(counts)}); "
                         f"name some of these or pass --regret-languages ''")
    runner = Runner(corpus, workers=args.workers, threads=args.threads)
    try:
        out.update(run_study(runner, counts, final=shape(args.steps), proxy=shape(args.proxy_steps),
                             proxies=args.proxies, seeds=args.seeds, e_max=args.e_max, seq_len=seq_len,
                             regret_languages=regret_langs, regret_final=shape(args.regret_steps),
                             regret_proxy=shape(args.regret_proxy_steps), regret_proxies=args.regret_proxies,
                             regret_parts=args.regret_parts))
    finally:
        runner.close()
    out["seconds"] = round(time.time() - started, 1)
    out["cpu_seconds"] = round(time.process_time() - cpu_started, 1)  # this process: corpus, law fits, solves
    out["cpu_seconds_workers"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime, 1)  # the training runs
    out["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    json.dump(out, sys.stdout)
    print()
    if args.markdown:
        print(render(out))
    return out


if __name__ == "__main__":
    main()
