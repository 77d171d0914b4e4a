#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NumPy/SciPy reference for fund propagation through a weighted dependency graph.

This script is the *peer* for the Rust fund-propagation benchmark: it computes
the same per-node amounts from the same input so the Rust engine can be
cross-checked (values) and benchmarked (timings) against it. It is an
independent implementation of the rule below and uses no project code.

Model (float version). A directed graph; every node v has out-edges v -> u
with fractions f_vu >= 0 and sum_u f_vu <= 1. Whatever v receives it passes
on in those fractions and *keeps* the remainder 1 - sum_u f_vu; a node with
no out-edges keeps everything. Self-loops and cycles are allowed.
This is the splitting rule of
  * Drips "splits" (https://docs.drips.network; drips-network/contracts
    Splits.sol): an account lists up to 200 receivers with integer weights
    out of _TOTAL_SPLITS_WEIGHT = 1,000,000; what is not split is kept by the
    account (here weights are fractions, i.e. weight / 1e6);
  * Deep Funding (https://deepfunding.org; github.com/deepfunding/dependency-graph):
    funds enter at the root "ethereum" and flow down repo -> dependency edges
    whose weights are the fractions passed on.

With F the n x n matrix of fractions (F[v, u] = f_vu), keep = 1 - F 1 and
injection x0, iterate
    kept     += keep * inflight
    inflight  = F^T inflight            (one sparse CSR mat-vec)
until sum(inflight) < tol (default 1e-9 * sum(x0)) or 10,000 iterations.
The fixed point is kept = keep * r with r = (I - F^T)^-1 x0 (total received);
--check solves that linear system with scipy's sparse LU for comparison
(fine for the Deep Funding graph; LU fill-in makes it impractical for large
random graphs such as --synthetic 100000 1000000).
Rows whose fractions sum to slightly more than 1 (float round-off, <= 1e-9)
get keep = 0 instead of a tiny negative value; larger excess is an error.

Inputs (exactly one of):
  --graph-csv PATH   Deep Funding form, header repo,parent,weight: each row is
                     an edge parent -> repo carrying fraction `weight` of the
                     parent's funds (money flows FROM parent TO repo).
                     Needs --inject NODE=AMOUNT (repeatable).
  --synthetic N M    random graph: M edges with src, dst uniform on 0..N-1
                     (numpy default_rng(--seed); self-loops allowed), each
                     node's out-weights uniform(0,1] normalised to sum 0.9
                     (10% kept); 1e6 injected at node 0. Node names "0".."N-1".
                     --dump-graph PATH writes it in the Deep Funding CSV form.
  --mc RUNS STEPS NODES
                     Monte Carlo: RUNS independent NODES-node random networks
                     (each node 3 out-edges to uniform random nodes, with
                     replacement, self-loops allowed; out-weights uniform(0,1]
                     normalised to 0.8), STEPS timesteps; each step does one hop
                         kept += keep * inflight; inflight = F^T inflight + a_t e_0
                     with a_t ~ lognormal(mean=ln 1000, sigma=0.5) drawn per run.
                     All runs are advanced together: one block-diagonal CSR
                     mat-vec over a RUNS*NODES vector per step.

Output: timings and the top nodes on stdout; --json OUT writes
  {"kept": {node: value (non-zero only)}, "iterations": k, "in_flight": r,
   "timings": {"load_s": .., "propagate_s": ..}, ...}
  or for --mc {"timings": {"build_s": .., "mc_s": ..}, "mean_kept_total": .., ...}.

Examples:
  python3 bench/flow_reference.py --graph-csv examples/deepfunding/repo_parent_weight_graph.csv \
      --inject ethereum=1000000 --check
  python3 bench/flow_reference.py --synthetic 100000 1000000 --seed 1
  python3 bench/flow_reference.py --mc 10000 100 50 --seed 1
"""
import argparse
import csv
import json
import math
import sys
import time

import numpy as np
import scipy.sparse as sp

try:  # in-place CSR mat-vec (y += A x) without allocating; falls back to A @ x
    from scipy.sparse import _sparsetools as _spt

    _CSR_MATVEC = _spt.csr_matvec
except Exception:  # pragma: no cover - depends on the SciPy build
    _CSR_MATVEC = None

ROWSUM_SLACK = 1e-9


class Graph:
    """F^T in CSR (row u lists the in-edges of u) plus the kept fraction per node."""

    def __init__(self, names, src, dst, frac):
        n = len(names)
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        frac = np.asarray(frac, dtype=np.float64)
        if frac.size and (not np.all(np.isfinite(frac)) or frac.min() < 0):
            raise ValueError("fractions must be finite and >= 0")
        rowsum = np.bincount(src, weights=frac, minlength=n)
        worst = int(np.argmax(rowsum)) if n else 0
        if n and rowsum[worst] > 1 + ROWSUM_SLACK:
            raise ValueError(f"out-fractions of {names[worst]!r} sum to {rowsum[worst]!r} > 1")
        self.names = names
        self.n = n
        self.rowsum = rowsum
        self.keep = np.clip(1.0 - rowsum, 0.0, None)
        # Built once: duplicates (same src,dst) are summed, indices sorted.
        ft = sp.csr_matrix((frac, (dst, src)), shape=(n, n))
        ft.sum_duplicates()
        ft.sort_indices()
        self.ft = ft
        self.n_edges = int(src.size)


def load_deepfunding_csv(path):
    """Rows repo,parent,weight -> edges parent -> repo with fraction weight."""
    index = {}
    names = []
    src, dst, frac = [], [], []

    def idx(name):
        i = index.get(name)
        if i is None:
            i = index[name] = len(names)
            names.append(name)
        return i

    with open(path, newline="") as fh:
        rd = csv.DictReader(fh)
        missing = {"repo", "parent", "weight"} - set(rd.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in rd:
            p = idx(row["parent"].strip())
            r = idx(row["repo"].strip())
            src.append(p)
            dst.append(r)
            frac.append(float(row["weight"]))
    return Graph(names, src, dst, frac), index


def synthetic_graph(n, m, seed, kept_share=0.1):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, size=m)
    dst = rng.integers(0, n, size=m)
    w = 1.0 - rng.random(m)  # uniform (0, 1]
    tot = np.bincount(src, weights=w, minlength=n)
    frac = (1.0 - kept_share) * w / tot[src]
    names = [str(i) for i in range(n)]
    return Graph(names, src, dst, frac), (src, dst, frac)


def propagate(g, x0, tol_rel=1e-9, max_iter=10_000):
    """Iterate until sum(inflight) < tol_rel * sum(x0). Returns kept, iterations, in_flight."""
    total = float(np.sum(x0))
    tol = tol_rel * total
    kept = np.zeros(g.n)
    cur = np.array(x0, dtype=np.float64)
    nxt = np.empty_like(cur)
    ft, keep = g.ft, g.keep
    indptr, indices, data = ft.indptr, ft.indices, ft.data
    tmp = np.empty_like(cur)
    it = 0
    flying = float(cur.sum())
    while flying >= tol and it < max_iter:
        np.multiply(keep, cur, out=tmp)
        kept += tmp
        if _CSR_MATVEC is not None:
            nxt.fill(0.0)
            _CSR_MATVEC(g.n, g.n, indptr, indices, data, cur, nxt)
        else:
            nxt = ft @ cur
        cur, nxt = nxt, cur
        it += 1
        flying = float(cur.sum())
    return kept, it, flying, cur


def solve_direct(g, x0):
    """kept = keep * (I - F^T)^-1 x0 via sparse LU (reference for --check)."""
    from scipy.sparse.linalg import spsolve

    a = (sp.identity(g.n, format="csc") - g.ft.tocsc()).tocsc()
    r = spsolve(a, np.asarray(x0, dtype=np.float64))
    return g.keep * r


def parse_inject(items, index):
    x0 = None
    out = []
    for it in items:
        if "=" not in it:
            raise ValueError(f"--inject expects NODE=AMOUNT, got {it!r}")
        node, amt = it.rsplit("=", 1)
        node = node.strip()
        if node not in index:
            raise ValueError(f"--inject: unknown node {node!r}")
        out.append((index[node], float(amt)))
    x0 = np.zeros(len(index))
    for i, a in out:
        x0[i] += a
    return x0


def print_top(g, kept, top):
    order = np.argsort(-kept, kind="stable")[:top]
    print(f"top {len(order)} by kept:")
    for rank, i in enumerate(order, 1):
        print(f"  {rank:2d}. {kept[i]:18.6f}  {g.names[i]}")


def kept_dict(g, kept):
    nz = np.nonzero(kept)[0]
    return {g.names[i]: float(kept[i]) for i in nz}


def monte_carlo(runs, steps, nodes, seed, out_degree=3, passed_share=0.8):
    """RUNS independent random networks advanced together (block-diagonal F^T)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    total = runs * nodes
    src = np.repeat(np.arange(total, dtype=np.int64), out_degree)
    run_of = src // nodes
    dst = run_of * nodes + rng.integers(0, nodes, size=src.size)
    w = (1.0 - rng.random((total, out_degree)))
    frac = (passed_share * w / w.sum(axis=1, keepdims=True)).ravel()
    ft = sp.csr_matrix((frac, (dst, src)), shape=(total, total))
    ft.sum_duplicates()
    ft.sort_indices()
    keep = np.clip(1.0 - np.bincount(src, weights=frac, minlength=total), 0.0, None)
    amounts = rng.lognormal(mean=math.log(1000.0), sigma=0.5, size=(steps, runs))
    t1 = time.perf_counter()

    kept = np.zeros(total)
    cur = np.zeros(total)
    nxt = np.empty(total)
    tmp = np.empty(total)
    inject_at = np.arange(runs, dtype=np.int64) * nodes  # node 0 of every run
    indptr, indices, data = ft.indptr, ft.indices, ft.data
    for s in range(steps):
        np.multiply(keep, cur, out=tmp)
        kept += tmp
        if _CSR_MATVEC is not None:
            nxt.fill(0.0)
            _CSR_MATVEC(total, total, indptr, indices, data, cur, nxt)
        else:
            nxt = ft @ cur
        nxt[inject_at] += amounts[s]
        cur, nxt = nxt, cur
    t2 = time.perf_counter()
    kept_tot = kept.reshape(runs, nodes).sum(axis=1)
    fly_tot = cur.reshape(runs, nodes).sum(axis=1)
    inj_tot = amounts.sum(axis=0)
    return {
        "timings": {"build_s": t1 - t0, "mc_s": t2 - t1},
        "runs": runs,
        "steps": steps,
        "nodes": nodes,
        "seed": seed,
        "mean_kept_total": float(kept_tot.mean()),
        "mean_in_flight": float(fly_tot.mean()),
        "mean_injected": float(inj_tot.mean()),
        "max_conservation_error": float(np.max(np.abs(kept_tot + fly_tot - inj_tot))),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--graph-csv", metavar="PATH")
    src.add_argument("--synthetic", nargs=2, type=int, metavar=("N", "M"))
    src.add_argument("--mc", nargs=3, type=int, metavar=("RUNS", "STEPS", "NODES"))
    ap.add_argument("--inject", action="append", default=[], metavar="NODE=AMOUNT")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-9, help="relative to total injected")
    ap.add_argument("--max-iter", type=int, default=10_000)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--check", action="store_true", help="compare with a sparse direct solve")
    ap.add_argument("--dump-graph", metavar="PATH", help="(--synthetic) write repo,parent,weight CSV")
    ap.add_argument("--json", dest="json_out", metavar="OUT")
    args = ap.parse_args(argv)

    if args.mc:
        runs, steps, nodes = args.mc
        res = monte_carlo(runs, steps, nodes, args.seed)
        t = res["timings"]
        print(f"mc: {runs} runs x {nodes} nodes x {steps} steps (seed {args.seed})")
        print(f"build {t['build_s']:.4f} s, mc {t['mc_s']:.4f} s")
        print(f"mean kept total {res['mean_kept_total']:.6f}, mean in flight "
              f"{res['mean_in_flight']:.6f}, mean injected {res['mean_injected']:.6f}, "
              f"max |kept+in_flight-injected| {res['max_conservation_error']:.3e}")
        if args.json_out:
            with open(args.json_out, "w") as fh:
                json.dump(res, fh, indent=1, sort_keys=True)
            print(f"wrote {args.json_out}")
        return 0

    t0 = time.perf_counter()
    if args.graph_csv:
        g, index = load_deepfunding_csv(args.graph_csv)
        if not args.inject:
            ap.error("--graph-csv needs at least one --inject NODE=AMOUNT")
        x0 = parse_inject(args.inject, index)
    else:
        n, m = args.synthetic
        g, edges = synthetic_graph(n, m, args.seed)
        x0 = np.zeros(n)
        x0[0] = 1e6
    load_s = time.perf_counter() - t0
    if args.synthetic and args.dump_graph:
        s_, d_, f_ = edges
        with open(args.dump_graph, "w") as fh:
            fh.write("repo,parent,weight\n")
            for a, b, f in zip(d_.tolist(), s_.tolist(), f_.tolist()):
                fh.write(f"{a},{b},{f!r}\n")
        print(f"wrote {args.dump_graph}")

    print(f"graph: {g.n} nodes, {g.n_edges} edges ({g.ft.nnz} after merging duplicates), "
          f"{int(np.count_nonzero(g.rowsum))} nodes with out-edges; injected {x0.sum():.6f}")
    t0 = time.perf_counter()
    kept, iters, flying, _ = propagate(g, x0, args.tol, args.max_iter)
    prop_s = time.perf_counter() - t0
    print(f"iterations {iters}, in flight {flying:.6e}, kept total {kept.sum():.6f}")
    print(f"load {load_s:.4f} s, propagate {prop_s:.4f} s "
          f"({prop_s / max(iters, 1) * 1e3:.3f} ms/iteration)")
    print_top(g, kept, args.top)
    doc = {"kept": kept_dict(g, kept), "iterations": iters, "in_flight": flying,
           "timings": {"load_s": load_s, "propagate_s": prop_s}}
    if args.check:
        t0 = time.perf_counter()
        exact = solve_direct(g, x0)
        dt = time.perf_counter() - t0
        err = float(np.max(np.abs(exact - kept)))
        print(f"check: direct solve {dt:.4f} s, max |kept - direct| = {err:.3e}, "
              f"direct total {exact.sum():.6f}")
        doc["check"] = {"max_abs_diff": err, "solve_s": dt}
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
