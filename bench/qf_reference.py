#!/usr/bin/env python3
"""NumPy/SciPy reference implementation of quadratic funding (QF) and
connection-oriented cluster match (COCM).

This script is the *peer* for the Rust benchmark: it computes the same scores
from the same input so the Rust engine can be cross-checked (values) and
benchmarked (timings) against it. It is an independent implementation written
from the formulas below; it does not depend on any project code.

Sources for the mechanisms:
  * V. Buterin, Z. Hitzig, E. G. Weyl, "A Flexible Design for Funding Public
    Goods", Management Science, 2019 (arXiv:1809.06421) -- quadratic funding.
  * J. Miller, E. G. Weyl, L. Erichsen, "Beyond Collusion Resistance:
    Leveraging Social Information for Plural Funding and Voting", 2022 --
    connection-oriented cluster match (COCM).
  * The COCM variant below (Markov-style k, harsh K, clusters = projects)
    follows the definition used by Gitcoin's public qf-calculator
    (github.com/gitcoinco/qf-calculator, fundingutils.py, COCM(...,
    calcstyle='markov', harsh=True) called with cluster_df = donation matrix).

Definitions (c_ip = total gift of donor i to project p, gifts summed per pair):
  QF     q_p = (sum_i sqrt(c_ip))^2 - sum_i c_ip            (subsidy only)
  COCM   C = donors x projects;  G = C (one group per project)
         W = G with rows scaled to sum 1          (donor  -> group weights)
         U = G^T with rows scaled to sum 1        (group  -> donor weights)
         k = W (U W)   (donor x group), then k_ig = 1 wherever G_ig > 0
         for each project p:
           harsh:      K_ig = (1 - k_ig) c_ip
           non-harsh:  K_ig = k_ig sqrt(c_ip) + (1 - k_ig) c_ip
           P'_gh = sum_i K_ig W_ih
           P_gh  = sqrt(P'_gh P'_hg) for g != h, 0 on the diagonal
           score_p = sum_{g,h} P_gh                         (subsidy only)

Implementation notes: only donors of p have K_ig != 0, and P'_gh can only be
non-zero for h among the projects those donors support, so every project is
evaluated on the sub-block (donors of p) x (projects reachable from them),
with a sparse-times-dense product.  k is mathematically in [0, 1]; it is
clipped to that range to keep round-off from producing sqrt of negatives.

CLI:
  python3 bench/qf_reference.py CSV [--mechanism qf|cocm|both] [--json out.json]
                                    [--non-harsh] [--top N]
  python3 bench/qf_reference.py --selftest
CSV columns used: contributor, grant, amount, success (GR9 format); rows are
kept when success == "True" and amount > 0.
"""

import argparse
import csv
import json
import sys
import time

import numpy as np
import scipy.sparse as sp


# ---------------------------------------------------------------- loading --

def load_csv(path):
    """Return (C csr donors x projects with summed gifts, donor names, project names)."""
    donor_ix, grant_ix = {}, {}
    rows, cols, vals = [], [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        for rec in reader:
            if rec["success"] != "True":
                continue
            try:
                amt = float(rec["amount"])
            except (TypeError, ValueError):
                continue
            if not amt > 0:  # also drops NaN
                continue
            d = donor_ix.setdefault(rec["contributor"], len(donor_ix))
            g = grant_ix.setdefault(rec["grant"], len(grant_ix))
            rows.append(d)
            cols.append(g)
            vals.append(amt)
    return build_matrix(rows, cols, vals, len(donor_ix), len(grant_ix)), \
        list(donor_ix), list(grant_ix)


def build_matrix(rows, cols, vals, n_donors, n_projects):
    # duplicate (donor, project) entries are summed by the COO -> CSR conversion
    c = sp.coo_matrix((np.asarray(vals, dtype=np.float64),
                       (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                      shape=(n_donors, n_projects)).tocsr()
    c.sum_duplicates()
    c.eliminate_zeros()
    c.sort_indices()
    return c


# --------------------------------------------------------------------- QF --

def qf_scores(c):
    """q_p = (sum_i sqrt c_ip)^2 - sum_i c_ip for every project (column)."""
    csc = c.tocsc()
    sqrt_sum = np.asarray(csc.sqrt().sum(axis=0)).ravel()
    total = np.asarray(csc.sum(axis=0)).ravel()
    return sqrt_sum * sqrt_sum - total


# ------------------------------------------------------------------- COCM --

def _row_normalise(m):
    m = sp.csr_matrix(m, dtype=np.float64)
    s = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    return sp.diags(inv) @ m


def cocm_scores(c, harsh=True, timings=None):
    """COCM with groups = projects (G = C), Markov-style k. Returns array per project."""
    t0 = time.perf_counter()
    c = sp.csr_matrix(c, dtype=np.float64)
    n, m = c.shape
    g = c                                   # clusters = projects
    w = _row_normalise(g).tocsr()           # n x m
    u = _row_normalise(g.T.tocsr()).tocsr()  # m x n
    uw = (u @ w).toarray()                  # m x m, dense
    k = np.asarray(w @ uw)                  # n x m, dense
    np.clip(k, 0.0, 1.0, out=k)
    gi, gj = g.nonzero()
    k[gi, gj] = 1.0                         # member of the group -> k = 1
    t1 = time.perf_counter()

    csc = c.tocsc()
    scores = np.zeros(m)
    for p in range(m):
        lo, hi = csc.indptr[p], csc.indptr[p + 1]
        donors = csc.indices[lo:hi]
        if donors.size == 0:
            continue
        amounts = csc.data[lo:hi]
        w_rows = w[donors]                  # |D| x m sparse
        reach = np.unique(w_rows.indices)   # projects reachable from the donors
        if reach.size < 2:
            continue
        w_sub = w_rows[:, reach]            # |D| x |H| sparse
        k_sub = k[np.ix_(donors, reach)]    # |D| x |H| dense
        if harsh:
            k_big = (1.0 - k_sub) * amounts[:, None]
        else:
            k_big = k_sub * np.sqrt(amounts)[:, None] + (1.0 - k_sub) * amounts[:, None]
        # pt[h, g] = sum_i W_ih K_ig = P'_gh
        pt = np.asarray(w_sub.T @ k_big)
        prod = pt * pt.T
        np.maximum(prod, 0.0, out=prod)
        np.fill_diagonal(prod, 0.0)
        scores[p] = np.sqrt(prod).sum()
    t2 = time.perf_counter()
    if timings is not None:
        timings["cocm_k_matrix_s"] = t1 - t0
        timings["cocm_projects_s"] = t2 - t1
    return scores


def cocm_dense_naive(c, harsh=True):
    """Literal dense transcription of the definition (for the self-test only)."""
    g = np.asarray(c, dtype=np.float64)
    n, m = g.shape
    rs = g.sum(axis=1, keepdims=True)
    w = np.divide(g, rs, out=np.zeros_like(g), where=rs > 0)
    cs = g.T.sum(axis=1, keepdims=True)
    u = np.divide(g.T, cs, out=np.zeros_like(g.T), where=cs > 0)
    k = w @ (u @ w)
    k[g > 0] = 1.0
    out = np.zeros(m)
    for p in range(m):
        cp = np.repeat(g[:, p:p + 1], m, axis=1)
        kk = (1 - k) * cp if harsh else k * np.sqrt(cp) + (1 - k) * cp
        pp = kk.T @ w
        pm = np.sqrt(pp * pp.T)
        np.fill_diagonal(pm, 0.0)
        out[p] = pm.sum()
    return out


# -------------------------------------------------------------- reporting --

def print_top(title, names, scores, top):
    order = np.argsort(-scores, kind="stable")[:top]
    print(f"\nTop {len(order)} by {title}:")
    for rank, j in enumerate(order, 1):
        print(f"  {rank:2d}. {scores[j]:16.4f}  {names[j]}")


def selftest():
    ok = True
    # QF vector (pluralistic.js linear.test.ts): distinct donors within each project
    gifts = {"p1": [1, 4, 1, 9], "p2": [1, 1, 1, 1, 1, 1, 4], "p3": [1, 9, 1, 9, 1, 9, 4]}
    rows, cols, vals, d = [], [], [], 0
    for j, name in enumerate(gifts):
        for a in gifts[name]:
            rows.append(d); cols.append(j); vals.append(a); d += 1
    c = build_matrix(rows, cols, vals, d, 3)
    q = qf_scores(c)
    print("QF tiny vector (distinct donors):", q.tolist(), "expected [34, 54, 162]")
    ok &= np.allclose(q, [34, 54, 162])
    cc = cocm_scores(c)
    print("COCM same vector (single-project donors -> 0):", cc.tolist())
    ok &= np.allclose(cc, 0)
    # same gifts with senders shared across projects (sender_k gives the k-th gift)
    rows = [i for name in gifts for i in range(len(gifts[name]))]
    cols = [j for j, name in enumerate(gifts) for _ in gifts[name]]
    vals = [a for name in gifts for a in gifts[name]]
    c2 = build_matrix(rows, cols, vals, 7, 3)
    q2 = qf_scores(c2)
    ok &= np.allclose(q2, [34, 54, 162])
    for harsh in (True, False):
        a = cocm_scores(c2, harsh=harsh)
        b = cocm_dense_naive(c2.toarray(), harsh=harsh)
        print(f"COCM shared-sender vector harsh={harsh}:", a.tolist())
        ok &= np.allclose(a, b, rtol=1e-12, atol=1e-12)
    # random instances: sparse per-project evaluation == literal dense definition
    rng = np.random.default_rng(7)
    for trial in range(20):
        n, m = rng.integers(2, 40), rng.integers(2, 12)
        dense = rng.exponential(5.0, size=(n, m)) * (rng.random((n, m)) < 0.3)
        for harsh in (True, False):
            a = cocm_scores(sp.csr_matrix(dense), harsh=harsh)
            b = cocm_dense_naive(dense, harsh=harsh)
            if not np.allclose(a, b, rtol=1e-10, atol=1e-9):
                print("mismatch", trial, harsh, a, b)
                ok = False
    print("selftest", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", nargs="?")
    ap.add_argument("--mechanism", choices=["qf", "cocm", "both"], default="both")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--non-harsh", action="store_true", help="use the non-harsh COCM K")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest()
    if not args.csv:
        ap.error("CSV path required (or --selftest)")

    timings = {}
    t = time.perf_counter()
    c, donors, grants = load_csv(args.csv)
    timings["load_s"] = time.perf_counter() - t
    print(f"loaded {c.nnz} (donor, project) pairs, {len(donors)} donors, "
          f"{len(grants)} projects in {timings['load_s']:.3f} s")

    out = {}
    if args.mechanism in ("qf", "both"):
        t = time.perf_counter()
        q = qf_scores(c)
        timings["qf_s"] = time.perf_counter() - t
        print(f"QF   {timings['qf_s']:.4f} s")
        out["qf"] = q
    if args.mechanism in ("cocm", "both"):
        t = time.perf_counter()
        s = cocm_scores(c, harsh=not args.non_harsh, timings=timings)
        timings["cocm_s"] = time.perf_counter() - t
        print(f"COCM {timings['cocm_s']:.4f} s  (k matrix {timings['cocm_k_matrix_s']:.4f} s, "
              f"per-project {timings['cocm_projects_s']:.4f} s, "
              f"{'non-harsh' if args.non_harsh else 'harsh'})")
        out["cocm"] = s

    for key, label in (("qf", "QF score"), ("cocm", "COCM score")):
        if key in out:
            print_top(label, grants, out[key], args.top)

    if args.json_out:
        doc = {key: {grants[j]: float(v[j]) for j in range(len(grants))} for key, v in out.items()}
        doc["timings"] = timings
        with open(args.json_out, "w") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
