"""Does the recommended mixture train better than temperature, UniMax and uniform? Prints one JSON object.

PROTOCOL v2 (fixed, with the decision rule, in docs/climb.md "The recommendation" before
any run of it was looked at; v1, whose ranking was seen, is described there too):

Corpus. allocation_corpus.py: 8 gettext languages cut to a 20:1 high/low-resource skew
(is 25K, hi 49K, en_GB 123K, uk 242K, es/fr/ja/ru 486K training tokens), seq_len 128,
and ~126 held-out samples (16 KB) per language, small languages included.

Caps. e_max = 1 (no language repeated) and the solver's default floor (0.1/K) for every
method except uniform, which is 1/K with no cap (the naive baseline; it repeats is 2.1x).

Proxies. 24 Dirichlet mixtures (design seed 0) projected onto the caps and floors, each
trained once with one init and data seed (PROXY_SEED) at the final run's length (scored
at 25%, 50%, 100%) and at half of it. Laws (library defaults): `full` (the full-length
proxies' last score: the workflow's law), `half` (the half-length proxies), `fractions`
(the full-length proxies' three scores). All three are scored on the final runs.

Refinement (allocation_refine.py, through climbstream.mixture.refine): from the `full`
law, rounds of the Climb solution, each baseline (temperature 0.3, UniMax, uniform as
above) and the midpoints between the Climb solution and each baseline, trained like the
full-length proxies; stop when the law fitted before a round predicts that round within
its 4-fold CV error, or after 2 rounds.

Recommendation (climbstream.mixture.recommend): an ensemble of 24 bootstrap refits over
the proxy runs gives each candidate a predicted loss with a 95% interval; climb is
recommended only if the ensemble puts it ahead of every baseline (every "baseline -
climb" interval above 0), else the baseline with the lowest predicted loss.

Final runs (common random numbers). Arms: climb (refined law), climb_unrefined (the
`full` law before refinement), temperature, unimax, uniform, and online (the recommended
mixture re-solved at 25/50/75% of the run by the library's guarded Reweighter from the
run's own per-language training loss). For seed s = 0..seeds-1 every arm starts from the
same initial weights (torch seed s) and reads each language's samples in the same order
(stream seed s); the learning rate warms up for 10 steps and decays to 0 by cosine
(allocation_train.py). Every model is scored on the whole held-out split, per sample.

Statistics (allocation_stats.py). Per seed, the difference of mean held-out loss (every
language weighs the same) between two arms; the 95% interval combines the spread over
seeds (t with seeds-1 degrees of freedom) and the evaluation standard error over held-out
samples. A gap is reported as real only when it is at least 3 half-widths. The
recommended mixture is "not resolvably worse" than a baseline when the interval of
"<baseline> - <recommended>" reaches 0 or above.

Regret (K = 3: en_GB, ru, uk), off by default in v2 (`--regret-languages en_GB,ru,uk`):
proxies and law as in v1 on the three languages; every interior mixture of a
1/`--regret-parts` grid and each method's pick trained with one common seed.

Sizes: the default is the CPU size: 24 proxies of 200 (and 100) steps, up to 2 rounds of
refinement of up to 7 runs of 200 steps, final runs of 200 steps (409,600 tokens) x 6
seeds x 6 arms; two 1-thread training processes. `--quick` is the smoke test's size
(shapes only, no claim). benchmarks/gpu_checks.sh runs the same protocol at a GPU size.

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

CPU = {"proxies": 24, "steps": 200, "seeds": 6, "max_rounds": 2, "replicates": 24,
       "regret_proxies": 12, "regret_proxy_steps": 60, "regret_steps": 120, "regret_parts": 6}
QUICK = {"proxies": 5, "steps": 6, "seeds": 2, "max_rounds": 1, "replicates": 3,
         "regret_proxies": 4, "regret_proxy_steps": 4, "regret_steps": 4, "regret_parts": 4}
E_MAX = 1.0
REGRET_LANGUAGES = ()  # v1 ran ("en_GB", "ru", "uk"); v2 leaves the grid out by default


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
                    help="the K=3 regret grid's languages, comma-separated (v1: en_GB,ru,uk; default: no grid)")
    ap.add_argument("--markdown", action="store_true", help="print the tables after the JSON")
    ap.add_argument("--render", metavar="JSON", help="print the tables of a saved result and exit (no training)")
    ap.add_argument("--d-model", type=int, default=128, help="model width (RunShape; the GPU size raises it)")
    ap.add_argument("--layers", type=int, default=2, help="model depth (RunShape)")
    ap.add_argument("--workers", type=int, default=2, help="training processes side by side (default 2: one per core)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1, see allocation_train.Runner)")
    args = ap.parse_args(argv)
    for key, value in (QUICK if args.quick else CPU).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.seeds < 2:
        ap.error("--seeds must be >= 2 (a paired interval needs two)")
    if args.replicates < 2:
        ap.error("--replicates must be >= 2 (an ensemble interval needs two refits)")
    return args


def render(out: dict) -> str:
    """Markdown tables of a result: arms against the recommended mixture, the laws, the online arm; the regret grid."""
    lines = []
    if "methods" in out:
        m = out["methods"]
        rec = m["recommended"]
        lines += [f"recommended: {rec} ({m['recommendation']['verdict']})", "",
                  f"| arm | mean held-out loss | per seed | <arm> - {rec} (95% interval) | law predicted | "
                  "prediction error |", "|---|---|---|---|---|---|"]
        for name, r in sorted(m["results"].items(), key=lambda kv: kv[1]["mean_heldout_loss"]):
            d = m["pairs"].get(f"{name} - {rec}")
            diff = "-" if d is None else f"{d['mean']:+.4f} ({d['low']:+.4f}, {d['high']:+.4f})"
            lines.append(f"| {name} | {r['mean_heldout_loss']:.4f} | {', '.join(f'{x:.3f}' for x in r['per_seed'])} | "
                         f"{diff} | {r['law_predicted_loss']:.4f} | {r['prediction_error']:+.4f} |")
        cands = m["recommendation"]["candidates"]
        lines += ["", "| candidate | predicted mean loss | 95% ensemble interval |", "|---|---|---|"]
        lines += [f"| {k} | {c['mean']:.4f} | {c['low']:.4f} to {c['high']:.4f} |" for k, c in cands.items()]
    if "laws" in out:
        lines += ["", "| law | rows | error on the final arms' mean loss | per-language error |", "|---|---|---|---|"]
        lines += [f"| {k} | {v['rows']} | {v['mae_mean_loss']:.4f} | {v['mae_per_language']:.4f} |"
                  for k, v in out["laws"].items() if k != "best"]
    if "refinement" in out:
        lines += ["", "| round | runs | error before refit | CV error | stop | reason |", "|---|---|---|---|---|---|"]
        for r in out["refinement"]["rounds"]:
            lines.append(f"| {r['round']} | {r['runs']} | {r.get('error_nats')} | {r.get('cv_nats')} | {r['stop']} | "
                         f"{r['reason']} |")
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
    from allocation_protocol import run_regret
    from allocation_refine import run_study_v2
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
        return RunShape(steps=steps, global_batch=args.global_batch, device=args.device, d_model=args.d_model,
                        n_layers=args.layers)

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
        out.update(run_study_v2(runner, counts, final=shape(args.steps), half=shape(args.steps // 2),
                                proxies=args.proxies, seeds=args.seeds, e_max=args.e_max, seq_len=seq_len,
                                max_rounds=args.max_rounds, replicates=args.replicates))
        if regret_langs:
            out.update(run_regret(runner, {n: counts[n] for n in regret_langs}, final=shape(args.regret_steps),
                                  proxy=shape(args.regret_proxy_steps), proxies=args.regret_proxies,
                                  parts=args.regret_parts, seq_len=seq_len, e_max=args.e_max))
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
