#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generate the scikit-learn reference figures for the `allonet-ml` random forest.

The Rust crate `allonet-ml` implements a random-forest regressor modelled on
scikit-learn's `RandomForestRegressor`. Its tests do not try to reproduce
sklearn's trees bit for bit (the random-number streams differ); they check
that held-out accuracy lands close to the figures this script records.

References:
  * L. Breiman, "Random Forests", Machine Learning 45(1):5-32, 2001 --
    bagged CART trees with a random feature subset per split, out-of-bag
    (OOB) error estimate, impurity-based (mean decrease in impurity) importances.
  * J. H. Friedman, "Multivariate Adaptive Regression Splines", Annals of
    Statistics 19(1):1-67, 1991 -- the "Friedman #1" test function
      y = 10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise,
    x ~ U[0,1]^p; features x5.. are pure noise. Generated here with
    `sklearn.datasets.make_friedman1`.

Outputs (all paths fixed, relative to the repository root):
  crates/allonet-ml/tests/data/friedman1_1000.csv      x0..x9,y (repr floats)
  examples/op-rf4/rf4_training.csv                     joined RF4 table
  crates/allonet-ml/tests/data/sklearn_reference.json  all figures + versions

Splits are fixed and unshuffled: Friedman-1 = first 800 rows train / last 200
test; RF4 = rows sorted by application_id, first 184 train / last 46 test.

Usage:  python3 crates/allonet-ml/tests/data/make_reference.py
Needs:  numpy, scikit-learn (only the standard library otherwise).
"""

import csv
import json
import os
import platform
import sys

import numpy as np
import sklearn
from sklearn.datasets import make_friedman1
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, r2_score

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
RF4_DIR = os.path.join(ROOT, "examples", "op-rf4")

FRIEDMAN_CSV = os.path.join(HERE, "friedman1_1000.csv")
RF4_METRICS = os.path.join(RF4_DIR, "rf4_impact_metrics_by_project.csv")
RF4_RESULTS = os.path.join(RF4_DIR, "rf4_results.csv")
RF4_TRAINING = os.path.join(RF4_DIR, "rf4_training.csv")
REFERENCE_JSON = os.path.join(HERE, "sklearn_reference.json")

SEED = 42
N_TREES = 100


def fnum(x):
    """Shortest string that round-trips the float exactly."""
    return repr(float(x))


def evaluate(x_train, y_train, x_test, y_test, feature_names):
    """Fit every model of the reference suite; return a dict of figures."""

    def rf_figures(**params):
        rf = RandomForestRegressor(n_estimators=N_TREES, random_state=SEED, **params)
        rf.fit(x_train, y_train)
        pred = rf.predict(x_test)
        return rf, {
            "params": dict(n_estimators=N_TREES, random_state=SEED, **params),
            "r2": float(r2_score(y_test, pred)),
            "mae": float(mean_absolute_error(y_test, pred)),
        }

    out = {}
    rf_default, out["rf_default"] = rf_figures()
    _, out["rf_min_samples_leaf_5"] = rf_figures(min_samples_leaf=5)
    _, out["rf_max_depth_6"] = rf_figures(max_depth=6)

    # OOB R^2 (Breiman 2001, sec. 3.1), computed on the training split only.
    rf_oob = RandomForestRegressor(n_estimators=N_TREES, random_state=SEED, oob_score=True)
    rf_oob.fit(x_train, y_train)
    out["rf_oob"] = {
        "params": dict(n_estimators=N_TREES, random_state=SEED, oob_score=True),
        "oob_r2": float(rf_oob.oob_score_),
    }

    lin = LinearRegression().fit(x_train, y_train)
    lin_pred = lin.predict(x_test)
    out["linear_regression"] = {
        "r2": float(r2_score(y_test, lin_pred)),
        "mae": float(mean_absolute_error(y_test, lin_pred)),
    }

    base_pred = np.full_like(y_test, float(np.mean(y_train)), dtype=float)
    out["mean_baseline"] = {
        "train_mean": float(np.mean(y_train)),
        "r2": float(r2_score(y_test, base_pred)),
        "mae": float(mean_absolute_error(y_test, base_pred)),
    }

    # Normalised mean-decrease-in-impurity importances (sum to 1).
    imp = rf_default.feature_importances_
    out["rf_default"]["feature_importances"] = {
        name: float(v) for name, v in zip(feature_names, imp)
    }
    return out


def friedman1():
    x, y = make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)
    names = [f"x{i}" for i in range(x.shape[1])]
    with open(FRIEDMAN_CSV, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(names + ["y"])
        for row, target in zip(x, y):
            w.writerow([fnum(v) for v in row] + [fnum(target)])

    n_train = 800
    figures = evaluate(x[:n_train], y[:n_train], x[n_train:], y[n_train:], names)
    return {
        "dataset": "make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)",
        "csv": os.path.relpath(FRIEDMAN_CSV, ROOT),
        "features": names,
        "target": "y",
        "split": {"n_train": n_train, "n_test": len(y) - n_train,
                  "rule": "first 800 rows train, last 200 rows test, no shuffling"},
        **figures,
    }


def rf4():
    with open(RF4_METRICS, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        metric_cols = reader.fieldnames
        metrics = list(reader)
    with open(RF4_RESULTS, newline="", encoding="utf-8") as f:
        results = {r["Project_id"]: r for r in csv.DictReader(f)}

    excluded = {"application_id", "project_name", "is_oss"}
    numeric = [c for c in metric_cols if c not in excluded]
    for c in numeric:  # every remaining metric column must be numeric
        for r in metrics:
            float(r[c])
    features = numeric + ["is_oss"]

    rows = []
    for r in metrics:
        res = results[r["application_id"]]  # KeyError = broken join
        oss = {"true": 1.0, "false": 0.0}[r["is_oss"].strip().lower()]
        rows.append((
            r["application_id"],
            r["project_name"],
            [float(r[c]) for c in numeric] + [oss],
            float(res["rf4_allocation"]),
        ))
    if len(rows) != len(results):
        raise SystemExit(f"join mismatch: {len(rows)} metric rows vs {len(results)} results")
    rows.sort(key=lambda t: t[0])

    with open(RF4_TRAINING, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["application_id", "project_name"] + features + ["rf4_allocation"])
        for app_id, name, xs, target in rows:
            # is_oss is written as the integer 0/1; the rest as repr floats.
            cells = [fnum(v) for v in xs[:-1]] + [str(int(xs[-1]))]
            w.writerow([app_id, name] + cells + [fnum(target)])

    x = np.array([t[2] for t in rows], dtype=float)
    y = np.array([t[3] for t in rows], dtype=float)
    n_train = 184
    if len(y) != 230:
        raise SystemExit(f"expected 230 joined RF4 rows, got {len(y)}")
    figures = evaluate(x[:n_train], y[:n_train], x[n_train:], y[n_train:], features)
    return {
        "dataset": "Optimism RF4 impact metrics joined with official allocations "
                   "(application_id == Project_id)",
        "csv": os.path.relpath(RF4_TRAINING, ROOT),
        "features": features,
        "target": "rf4_allocation",
        "split": {"n_train": n_train, "n_test": len(y) - n_train,
                  "rule": "rows sorted by application_id ascending; first 184 train, "
                          "last 46 test, no shuffling"},
        **figures,
    }


def main():
    ref = {
        "generated_by": "crates/allonet-ml/tests/data/make_reference.py",
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
        },
        "friedman1_1000": friedman1(),
        "rf4": rf4(),
    }
    with open(REFERENCE_JSON, "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")
    json.dump(ref, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
