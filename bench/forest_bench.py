#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Random-forest regression benchmark: allonet engine vs scikit-learn.

This script is the *peer* for the Rust random forest in `allonet-ml`. Both
engines get the same train/test CSVs; the script reports wall-clock fit and
predict times and held-out R^2 for each, then the speed-ups of allonet over
scikit-learn (> 1 means allonet is faster) and the R^2 difference
(allonet - sklearn).

Model: L. Breiman, "Random Forests", Machine Learning 45(1):5-32, 2001
(bootstrap-aggregated CART regression trees with random feature subsets).
scikit-learn peer: RandomForestRegressor(n_estimators=T, random_state=42,
n_jobs=-1), other parameters at their defaults.

Data: the "Friedman #1" function from J. H. Friedman, "Multivariate Adaptive
Regression Splines", Annals of Statistics 19(1):1-67, 1991:
    y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + N(0, noise^2),
x ~ U[0,1]^10 (x5..x9 are pure noise), generated with
sklearn.datasets.make_friedman1(n_samples=n + 20000, n_features=10,
noise=1.0, random_state=1); the first n rows train, the last 20,000 test.

The allonet side is run as
    ALLONET bench forest --train TRAIN.csv --test TEST.csv --target y \
        --trees T --seed 42 --json
and must print one JSON object {"fit_s", "predict_s", "r2", "threads"} on
stdout. If the binary is missing or fails, the script says so and still
reports scikit-learn alone.

sklearn forests parallelise with threads (joblib threading backend), so
time.process_time() covers all worker CPU time; it is reported as "fit CPU s".

The allonet binary is run --repeat times (default 3, each a fresh process) and
the median fit and predict times are reported, with every run's fit time: its
fit takes about two seconds, so one stall of a shared host moves it by a large
fraction, where scikit-learn's 45-second fit averages such stalls out. The
model, and so R^2, is the same in every run (same seed).

Usage:
    python3 bench/forest_bench.py [--n 100000] [--trees 100] [--repeat 3]
                                  [--allonet target/release/allonet]
                                  [--keep-data DIR]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import sklearn
from sklearn.datasets import make_friedman1
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score

N_TEST = 20_000
SEED = 42


def write_csv(path, x, y):
    header = ",".join([f"x{i}" for i in range(x.shape[1])] + ["y"])
    # %.17g round-trips every double exactly.
    np.savetxt(path, np.column_stack([x, y]), fmt="%.17g", delimiter=",",
               header=header, comments="")


def run_allonet_repeated(binary, train_csv, test_csv, trees, repeat):
    """Run allonet `repeat` times; return the median result (with every fit time), or None."""
    runs = []
    for _ in range(max(1, repeat)):
        res = run_allonet(binary, train_csv, test_csv, trees)
        if res is None:
            return None
        runs.append(res)
    fits = [r["fit_s"] for r in runs]
    med = dict(runs[0])
    for key in ("fit_s", "predict_s", "wall_s"):
        med[key] = statistics.median(r[key] for r in runs)
    med["fit_runs"] = fits
    if len({r["r2"] for r in runs}) != 1:
        print("[allonet] warning: R² differs between runs of the same seed")
    return med


def run_allonet(binary, train_csv, test_csv, trees):
    """Return the allonet result dict, or None (with a message) on failure."""
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"[allonet] binary not found or not executable: {binary}\n"
              f"[allonet] build it with `cargo build --release` "
              f"(or pass --allonet PATH); reporting scikit-learn only.")
        return None
    cmd = [binary, "bench", "forest", "--train", train_csv, "--test", test_csv,
           "--target", "y", "--trees", str(trees), "--seed", str(SEED), "--json"]
    print("[allonet] " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        print(f"[allonet] could not run the binary: {e}; reporting scikit-learn only.")
        return None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"[allonet] exited with status {proc.returncode}; "
              f"reporting scikit-learn only.\n[allonet] stderr:\n{proc.stderr.strip()}")
        return None
    # Take the last non-empty stdout line that parses as a JSON object.
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            res = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(res, dict) and all(k in res for k in ("fit_s", "predict_s", "r2")):
            res["wall_s"] = wall
            return res
    print(f"[allonet] no JSON result with fit_s/predict_s/r2 on stdout; "
          f"reporting scikit-learn only.\n[allonet] stdout:\n{proc.stdout.strip()}")
    return None


def run_sklearn(x_train, y_train, x_test, y_test, trees):
    rf = RandomForestRegressor(n_estimators=trees, random_state=SEED, n_jobs=-1)
    cpu0, t0 = time.process_time(), time.perf_counter()
    rf.fit(x_train, y_train)
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    t0 = time.perf_counter()
    pred = rf.predict(x_test)
    predict_s = time.perf_counter() - t0
    return {"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "predict_s": predict_s,
            "r2": float(r2_score(y_test, pred)), "threads": os.cpu_count()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="training rows (default 100000)")
    ap.add_argument("--trees", type=int, default=100, help="number of trees (default 100)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="allonet runs; the median is reported (default 3)")
    ap.add_argument("--allonet", default="target/release/allonet",
                    help="path to the allonet binary (default target/release/allonet)")
    ap.add_argument("--keep-data", metavar="DIR",
                    help="write the CSVs to DIR and keep them (default: temp dir, removed)")
    args = ap.parse_args()

    x, y = make_friedman1(n_samples=args.n + N_TEST, n_features=10, noise=1.0,
                          random_state=1)
    x_train, y_train = x[:args.n], y[:args.n]
    x_test, y_test = x[args.n:], y[args.n:]

    tmp = args.keep_data or tempfile.mkdtemp(prefix="forest_bench_")
    os.makedirs(tmp, exist_ok=True)
    try:
        train_csv = os.path.join(tmp, "train.csv")
        test_csv = os.path.join(tmp, "test.csv")
        t0 = time.perf_counter()
        write_csv(train_csv, x_train, y_train)
        write_csv(test_csv, x_test, y_test)
        # Flush the fresh CSVs to disk before timing anything, so the kernel's
        # write-back of ~25 MB of dirty pages does not overlap the first engine.
        os.sync()
        print(f"data: Friedman-1, {args.n} train / {N_TEST} test rows, 10 features, "
              f"{args.trees} trees (CSV written in {time.perf_counter() - t0:.2f} s to {tmp})",
              flush=True)

        allo = run_allonet_repeated(args.allonet, train_csv, test_csv, args.trees, args.repeat)
        print(f"[sklearn] RandomForestRegressor(n_estimators={args.trees}, "
              f"random_state={SEED}, n_jobs=-1), sklearn {sklearn.__version__}", flush=True)
        skl = run_sklearn(x_train, y_train, x_test, y_test, args.trees)
    finally:
        if not args.keep_data:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = [("scikit-learn", skl)]
    if allo is not None:
        rows.insert(0, ("allonet", allo))
    print()
    print(f"{'engine':<14} | {'fit s':>9} | {'predict s':>9} | {'R²':>8} | {'threads':>7}")
    print("-" * 14 + "-+-" + "-" * 9 + "-+-" + "-" * 9 + "-+-" + "-" * 8 + "-+-" + "-" * 7)
    for name, r in rows:
        print(f"{name:<14} | {r['fit_s']:>9.3f} | {r['predict_s']:>9.3f} | "
              f"{r['r2']:>8.5f} | {str(r.get('threads', '?')):>7}")
    print(f"scikit-learn fit CPU time: {skl['fit_cpu_s']:.2f} s "
          f"({skl['fit_cpu_s'] / skl['fit_s']:.2f}x wall)")
    if allo is not None:
        print(f"allonet fit times of the {len(allo['fit_runs'])} runs: "
              + ", ".join(f"{t:.3f}" for t in allo['fit_runs']) + " s (median above)")
        print(f"allonet process wall time (incl. CSV load): {allo['wall_s']:.3f} s")
        print(f"speed-up fit: {skl['fit_s'] / max(allo['fit_s'], 1e-9):.2f}×")
        print(f"speed-up predict: {skl['predict_s'] / max(allo['predict_s'], 1e-9):.2f}×")
        print(f"R² difference: {allo['r2'] - skl['r2']:+.5f}")
    else:
        print("speed-up fit: n/a (allonet not run)")
        print("speed-up predict: n/a (allonet not run)")
        print("R² difference: n/a (allonet not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
