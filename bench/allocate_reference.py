#!/usr/bin/env python3
"""CVXPY/Clarabel reference solver for the `allonet allocate` problem.

This script is the *peer* for the Rust optimiser: it reads the same instance
TOML, solves the same convex problem with a general-purpose conic solver, and
reports the objective, the allocation and the timings, so the Rust solver can
be cross-checked (values) and benchmarked (timings) against it.  It is an
independent implementation written from the specification (the instance
format and the problem statement shared by the Rust crate and this script);
it does not import any project code.

The problem (pools d with price p_d > 0 and budget B_d, projects i with weight
w_i and concave utility u_i; x_di >= 0 in whole tokens of pool d):

    maximise   sum_i w_i u_i(X_i) - rho * sum_{d,i} (x_di - b_di)^2,
               X_i = sum_d p_d x_di                       (units of value)
    subject to sum_i x_di <= B_d            (== B_d when spend_all)
               x_di <= c_di                 (pool_caps)
               x_di <= max_share_d * B_d    (max_share)
               sum_d p_d x_di <= C_i        (cap, units of value)
               x_di = 0                     where i is not eligible in d
    u: log        ln(a + X)               a > 0
       saturating s (1 - exp(-X / s))     s > 0
       sqrt       sqrt(a + X)             a >= 0 (default 0)
       linear     X
    weights: `weight` on every project, or inline signals mixed by [weights]:
             s_hat_i = s_i / sum_j s_j (all-zero signal -> 0), w_i = sum_s alpha_s s_hat_i.

The `min_grant` rule (x_di = 0 or x_di >= m_d) makes the problem mixed-integer;
this reference solves the convex problem only and refuses instances that use
it.  Signal *files* (`[signals]`) are not read either; inline signals are.

Sources:
  * S. Boyd, L. Vandenberghe, "Convex Optimization", Cambridge University
    Press, 2004, section 5.5.3 (water-filling) -- the closed-form optimum of
    the one-pool separable problem, used by the self-test.
  * P. J. Goulart, Y. Chen, "Clarabel: An interior-point solver for conic
    programs with quadratic objectives", 2024 (arXiv:2405.12762) -- the solver.
  * S. Diamond, S. Boyd, "CVXPY: A Python-embedded modeling language for
    convex optimization", Journal of Machine Learning Research 17(83), 2016
    -- the modelling layer (disciplined convex programming atoms).

Formulation (sparse): one variable per *eligible* (pool, project) pair,
z_k = p_d x_k / S in units of S = (sum_d p_d B_d) / scale_div; sparse 0/1
matrices map pairs to projects (X = S * A z) and pairs to pools.  Every pair is
boxed, x_k <= min(c_k, max_share_d B_d, B_d).  The utilities become DCP atoms:
    log         w ln(a/S + A z)                        (+ w ln S, dropped)
    saturating  -w s exp(-(S/s) A z)                   (+ w s, dropped), or the
                same exponential cone in perspective form with all three
                coordinates in value units: (-A z, s/S, v), objective -w S v
    sqrt        w sqrt(S) sqrt(a/S + A z)
    linear      w S A z
    baseline    rho S^2 sum_k (z_k / p_k - b_k / S)^2
    proximal    -r ||z||^2, worth 1e-9 of the objective (see solve_instance)
Projects with w_i = 0 contribute nothing and are left out of the model.

Robustness and the certificate.  Clarabel solves small and mid-size instances
at once, but on large multi-pool ones (10 pools x 10,000 projects) its
exponential-cone iterations may stall, or stop "AlmostSolved" slightly outside
the budgets, depending on the value unit and on the saturating form.  So:
  * a few formulations are tried in turn (ATTEMPTS);
  * a point is repaired (clipped and scaled) onto the feasible set -- it moves
    by about the solver's residual, ~1e-7 of a budget at worst;
  * the reported objective is recomputed in NumPy in the specification's units
    (constants included, proximal term excluded) from the allocation in tokens;
  * an upper bound on the optimum is computed in NumPy by weak duality: relax the
    pool budget rows with multipliers lam_d (from Clarabel's duals, improved by
    a few L-BFGS-B steps); what is left splits into one-dimensional problems per
    project, solved exactly (dual_bound).  relative_gap = (bound - objective) /
    max(1, |objective|) bounds the reference's own error, independent of the
    solver.  The first attempt with gap <= 1e-6 is kept ("verified"), else the
    feasible one with the best objective.  Measured gaps: 1e-13 to 6e-9 up to
    10 pools x 2,000 projects, 7e-9 to 1.5e-7 at 10 pools x 10,000.
A Rust objective should therefore lie in [objective - eps, dual_bound + eps].
Allocations are not unique in general (pools are substitutes when rho = 0; ties
between linear projects), and where they are unique they are flat-optimal
(error ~ sqrt(solver gap)): compare objectives, then X_i, then x_di loosely.

CLI:
  python3 bench/allocate_reference.py INSTANCE.toml [--json] [--tol 1e-10]
                                       [--tol-feas 1e-10] [--verbose] [--no-certify]
  python3 bench/allocate_reference.py --selftest
--json prints one JSON object: objective, seconds, solve_seconds,
compile_seconds, certify_seconds, attempt_seconds, status, verified,
dual_bound, relative_gap, max_violation, relative_violation,
repaired_violation, regularisation, iterations, attempts, formulation, tol,
tol_feas, pools ({pool_id: {project_id: tokens}} for every eligible pair).
status is cvxpy's status for the attempt kept ("optimal", "optimal_inaccurate"
= Clarabel AlmostSolved; " (dual-polished)" is appended when, with rho > 0, the
dual's maximiser beat the solver's point), or the failure.
seconds is end to end: from just before reading the TOML to the extracted,
certified allocation (module imports excluded; it includes failed attempts and
the certificate, certify_seconds).  Exit codes: 0 verified, 1 solver failure,
infeasible or not verified (the JSON is still printed), 2 unsupported or
invalid instance.
"""

import argparse
import json
import math
import sys
import time
import tomllib
import warnings

import numpy as np
import scipy.sparse as sp

try:
    import cvxpy as cp
except ImportError:  # pragma: no cover - environment problem
    cp = None

KINDS = ("log", "saturating", "sqrt", "linear")


class InstanceError(Exception):
    """Invalid or unsupported instance (exit code 2)."""


# ---------------------------------------------------------------- parsing --

def _amount(v, what, allow_zero=True):
    """Decimal string (or number) in whole tokens / units of value -> float >= 0."""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise InstanceError(f"{what}: expected a decimal string, got {v!r}")
    try:
        f = float(v)
    except ValueError:
        raise InstanceError(f"{what}: not a decimal amount: {v!r}") from None
    if not math.isfinite(f) or f < 0 or (not allow_zero and f == 0):
        raise InstanceError(f"{what}: must be {'>= 0' if allow_zero else '> 0'} and finite, "
                            f"got {v!r}")
    return f


def _number(v, what):
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise InstanceError(f"{what}: expected a number, got {v!r}")
    try:
        f = float(v)
    except ValueError:
        raise InstanceError(f"{what}: not a number: {v!r}") from None
    if not math.isfinite(f):
        raise InstanceError(f"{what}: must be finite, got {v!r}")
    return f


def _utility(u, what):
    """Return (kind, param) with param = a (log, sqrt), s (saturating), 0 (linear)."""
    if not isinstance(u, dict) or "kind" not in u:
        raise InstanceError(f"{what}: utility needs a `kind`")
    kind = u["kind"]
    if kind == "log":
        if "a" not in u:
            raise InstanceError(f"{what}: log utility needs `a` > 0")
        a = _number(u["a"], f"{what}.a")
        if not a > 0:
            raise InstanceError(f"{what}: log utility needs `a` > 0, got {a}")
        return kind, a
    if kind == "saturating":
        if "s" not in u:
            raise InstanceError(f"{what}: saturating utility needs `s` > 0")
        s = _number(u["s"], f"{what}.s")
        if not s > 0:
            raise InstanceError(f"{what}: saturating utility needs `s` > 0, got {s}")
        return kind, s
    if kind == "sqrt":
        a = _number(u.get("a", 0.0), f"{what}.a")
        if a < 0:
            raise InstanceError(f"{what}: sqrt utility needs `a` >= 0, got {a}")
        return kind, a
    if kind == "linear":
        return kind, 0.0
    raise InstanceError(f"{what}: unknown utility kind {kind!r} "
                        f"(expected one of {', '.join(KINDS)})")


def parse_instance(doc):
    """Validate the TOML document and return a dict of NumPy arrays (pair-sparse)."""
    if "signals" in doc:
        raise InstanceError("signal files ([signals]) are not supported by the reference; "
                            "use `weight` or inline `signals` with [weights]")
    pools = doc.get("pools") or []
    projects = doc.get("projects") or []
    if not pools:
        raise InstanceError("no [[pools]]")
    if not projects:
        raise InstanceError("no [[projects]]")
    for d, pool in enumerate(pools):
        if "min_grant" in pool:
            raise InstanceError("min_grant is a mixed-integer rule; the reference solves "
                                "the convex problem only")
    rho = _number(doc.get("rho", 0.0), "rho")
    if rho < 0:
        raise InstanceError(f"rho must be >= 0, got {rho}")

    # pools
    pool_ids = []
    pool_ix = {}
    D = len(pools)
    price = np.empty(D)
    budget = np.empty(D)
    spend_all = np.zeros(D, dtype=bool)
    share_ub = np.full(D, np.inf)          # max_share * B_d, tokens
    for d, pool in enumerate(pools):
        pid = pool.get("id")
        if not isinstance(pid, str) or not pid:
            raise InstanceError(f"pools[{d}]: missing id")
        if pid in pool_ix:
            raise InstanceError(f"duplicate pool id {pid!r}")
        pool_ix[pid] = d
        pool_ids.append(pid)
        if "price" not in pool:
            raise InstanceError(f"pool {pid}: missing price")
        price[d] = _number(pool["price"], f"pool {pid}: price")
        if not price[d] > 0:
            raise InstanceError(f"pool {pid}: price must be > 0")
        if "budget" not in pool:
            raise InstanceError(f"pool {pid}: missing budget")
        budget[d] = _amount(pool["budget"], f"pool {pid}: budget")
        if "decimals" in pool:
            dec = pool["decimals"]
            if isinstance(dec, bool) or not isinstance(dec, int) or not 0 <= dec <= 18:
                raise InstanceError(f"pool {pid}: decimals must be an integer in 0..=18")
        sa = pool.get("spend_all", False)
        if not isinstance(sa, bool):
            raise InstanceError(f"pool {pid}: spend_all must be a boolean")
        spend_all[d] = sa
        if "max_share" in pool:
            ms = _number(pool["max_share"], f"pool {pid}: max_share")
            if not 0 < ms <= 1:
                raise InstanceError(f"pool {pid}: max_share must be in (0, 1], got {ms}")
            share_ub[d] = ms * budget[d]

    # projects
    n = len(projects)
    proj_ids = []
    proj_ix = {}
    for i, prj in enumerate(projects):
        pid = prj.get("id")
        if not isinstance(pid, str) or not pid:
            raise InstanceError(f"projects[{i}]: missing id")
        if pid in proj_ix:
            raise InstanceError(f"duplicate project id {pid!r}")
        proj_ix[pid] = i
        proj_ids.append(pid)

    # weights
    if all("weight" in prj for prj in projects):
        w = np.array([_number(prj["weight"], f"project {prj['id']}: weight") for prj in projects])
        weights_from = "weight"
    else:
        alpha = doc.get("weights")
        if not isinstance(alpha, dict) or not alpha:
            raise InstanceError("weights: give `weight` on every project, or [weights] with "
                                "inline project `signals`")
        if any("weight" in prj for prj in projects):
            print("warning: `weight` is not on every project; using [weights] x signals and "
                  "ignoring the per-project weights", file=sys.stderr)
        w = np.zeros(n)
        for name, a_s in alpha.items():
            a_s = _number(a_s, f"weights.{name}")
            vals = np.zeros(n)
            for i, prj in enumerate(projects):
                sig = prj.get("signals") or {}
                if not isinstance(sig, dict):
                    raise InstanceError(f"project {prj['id']}: signals must be a table")
                if name in sig:
                    vals[i] = _number(sig[name], f"project {prj['id']}: signals.{name}")
            if (vals < 0).any():
                raise InstanceError(f"signal {name!r}: negative values cannot be normalised "
                                    "to shares")
            tot = vals.sum()
            if tot > 0:
                w += a_s * (vals / tot)
        weights_from = "signals"

    # utilities
    default_u = doc.get("utility")
    kind = np.empty(n, dtype=object)
    param = np.zeros(n)
    for i, prj in enumerate(projects):
        if "utility" in prj:
            kind[i], param[i] = _utility(prj["utility"], f"project {prj['id']}: utility")
        elif default_u is not None:
            kind[i], param[i] = _utility(default_u, "[utility]")
        else:
            raise InstanceError(f"project {prj['id']}: no utility and no default [utility]")
    bad = (w < 0) & (kind != "linear")
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InstanceError(f"project {proj_ids[i]}: negative weight with a concave utility "
                            "makes the problem non-convex")

    # caps, eligibility, baselines, pool caps -> pairs
    cap = np.full(n, np.inf)
    pair_pool, pair_proj, pair_ub, pair_base = [], [], [], []
    const_base_sq = 0.0                    # sum of b_di^2 over ineligible pairs (x_di = 0)
    for i, prj in enumerate(projects):
        pid = prj["id"]
        if "cap" in prj:
            cap[i] = _amount(prj["cap"], f"project {pid}: cap")
        elig = prj.get("eligible")
        if elig is None:
            elig_set = set(range(D))
        else:
            if not isinstance(elig, list):
                raise InstanceError(f"project {pid}: eligible must be a list of pool ids")
            elig_set = set()
            for e in elig:
                if e not in pool_ix:
                    raise InstanceError(f"project {pid}: eligible names unknown pool {e!r}")
                elig_set.add(pool_ix[e])
        base = prj.get("baseline") or {}
        pcaps = prj.get("pool_caps") or {}
        for tbl, label in ((base, "baseline"), (pcaps, "pool_caps")):
            if not isinstance(tbl, dict):
                raise InstanceError(f"project {pid}: {label} must be a table")
            for k in tbl:
                if k not in pool_ix:
                    raise InstanceError(f"project {pid}: {label} names unknown pool {k!r}")
        bvals = {pool_ix[k]: _amount(v, f"project {pid}: baseline.{k}") for k, v in base.items()}
        cvals = {pool_ix[k]: _amount(v, f"project {pid}: pool_caps.{k}") for k, v in pcaps.items()}
        for d in range(D):
            b = bvals.get(d, 0.0)
            if d not in elig_set:
                const_base_sq += b * b
                continue
            pair_pool.append(d)
            pair_proj.append(i)
            pair_ub.append(min(cvals.get(d, np.inf), share_ub[d]))
            pair_base.append(b)

    return {
        "rho": rho,
        "pool_ids": pool_ids, "price": price, "budget": budget, "spend_all": spend_all,
        "proj_ids": proj_ids, "w": w, "kind": kind, "param": param, "cap": cap,
        "pair_pool": np.asarray(pair_pool, dtype=np.int64),
        "pair_proj": np.asarray(pair_proj, dtype=np.int64),
        "pair_ub": np.asarray(pair_ub, dtype=np.float64),
        "pair_base": np.asarray(pair_base, dtype=np.float64),
        "const_base_sq": const_base_sq,
        "weights_from": weights_from,
    }


# ------------------------------------------------------------- evaluation --

def project_values(inst, x):
    """X_i = sum_d p_d x_di (units of value) from the pair vector x (tokens)."""
    p_pair = inst["price"][inst["pair_pool"]]
    return np.bincount(inst["pair_proj"], weights=p_pair * x, minlength=len(inst["proj_ids"]))


def utilities(kind, param, X):
    u = np.zeros_like(X)
    m = kind == "log"
    u[m] = np.log(param[m] + X[m])
    m = kind == "saturating"
    u[m] = -param[m] * np.expm1(-X[m] / param[m])
    m = kind == "sqrt"
    u[m] = np.sqrt(param[m] + X[m])
    m = kind == "linear"
    u[m] = X[m]
    return u


def objective_value(inst, x):
    """The specification's objective, in its units, for pair allocation x (tokens)."""
    X = project_values(inst, x)
    util = float(np.dot(inst["w"], utilities(inst["kind"], inst["param"], X)))
    pen = float(np.sum((x - inst["pair_base"]) ** 2)) + inst["const_base_sq"]
    return util - inst["rho"] * pen


def max_violation(inst, x):
    """Largest absolute constraint violation (tokens, or units of value for caps)."""
    D = len(inst["pool_ids"])
    spent = np.bincount(inst["pair_pool"], weights=x, minlength=D)
    v = [0.0, float(np.max(-x, initial=0.0))]
    over = spent - inst["budget"]
    v.append(float(np.max(over, initial=0.0)))
    if inst["spend_all"].any():
        v.append(float(np.max(np.abs(over[inst["spend_all"]]))))
    fin = np.isfinite(inst["pair_ub"])
    v.append(float(np.max(x[fin] - inst["pair_ub"][fin], initial=0.0)))
    X = project_values(inst, x)
    fin = np.isfinite(inst["cap"])
    v.append(float(np.max(X[fin] - inst["cap"][fin], initial=0.0)))
    return max(v)


def repair(inst, x):
    """Make a nearly feasible allocation exactly feasible (up to round-off).

    Interior-point answers end a hair outside the feasible set (here, after
    scaling back to tokens, up to ~1e-7 of a budget on large instances).  Clip
    to the pair bounds, scale down projects over their cap and pools over their
    budget, then top up spend_all pools short of their budget in proportion to
    each pair's room.  The objective moves by about (violation x marginal
    value), far below the dual gap it is then checked against.
    """
    pp, pj = inst["pair_pool"], inst["pair_proj"]
    D, n = len(inst["pool_ids"]), len(inst["proj_ids"])
    p = inst["price"][pp]
    ub = np.minimum(inst["pair_ub"], inst["budget"][pp])
    x = np.clip(x, 0.0, ub)
    X = np.bincount(pj, weights=p * x, minlength=n)
    over = X > inst["cap"]
    if over.any():
        f = np.where(over, inst["cap"] / np.where(X > 0, X, 1.0), 1.0)
        x = x * f[pj]
    spent = np.bincount(pp, weights=x, minlength=D)
    f = np.where(spent > inst["budget"], inst["budget"] / np.where(spent > 0, spent, 1.0), 1.0)
    x = x * f[pp]
    for d in np.flatnonzero(inst["spend_all"]):
        spent_d = x[pp == d].sum()
        short = inst["budget"][d] - spent_d
        if short <= 0:
            continue
        X = np.bincount(pj, weights=p * x, minlength=n)
        m = pp == d
        room = np.minimum(ub[m] - x[m], np.maximum(inst["cap"][pj[m]] - X[pj[m]], 0.0) / p[m])
        room = np.maximum(room, 0.0)
        tot = room.sum()
        if tot > 0:
            x[m] += room * min(1.0, short / tot)
    return x


# ------------------------------------------------------------ dual bound --
#
# Weak duality gives a certificate that does not trust the solver: relax only
# the pool rows with multipliers lam_d (>= 0; free sign for spend_all pools).
# Every other constraint is per project, so for ANY lam
#   g(lam) = sum_d lam_d B_d + sum_i h_i(lam) - rho * sum_{ineligible} b^2  >=  optimum,
#   h_i(lam) = max { w_i u_i(X_i) - sum_k [lam_d(k) x_k + rho (x_k - b_k)^2] :
#                    0 <= x_k <= ub_k, X_i = sum_k p_k x_k <= C_i }   (k: pairs of i).
# h_i is a one-dimensional concave problem in X_i: with rho = 0 the cheapest
# value comes first (a convex piecewise-linear cost), with rho > 0 the split is a
# water-fill x_k(theta) = clip(b_k + (theta p_k - lam_k) / (2 rho), 0, ub_k) and
# theta solves w u'(X(theta)) = theta (bisection).  The gap g(lam) - f(x) bounds
# how far the reported objective f(x) can be below the optimum (x feasible).

def _uprime(kind, a, X):
    up = np.ones_like(X)                               # linear
    m = kind == "log"
    up[m] = 1.0 / (a[m] + X[m])
    m = kind == "saturating"
    up[m] = np.exp(-X[m] / a[m])
    m = kind == "sqrt"
    with np.errstate(divide="ignore"):
        up[m] = 0.5 / np.sqrt(a[m] + X[m])
    return up


def _uprime_inv(kind, w, a, r):
    """X with w u'(X) = r (may be < 0 or +-inf; the caller clips to its segment)."""
    X = np.zeros_like(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = r > 0
        m = kind == "log"
        X[m] = np.where(pos[m], w[m] / r[m] - a[m], np.inf)
        m = kind == "saturating"
        X[m] = np.where(pos[m], np.where(w[m] > 0, a[m] * np.log(w[m] / r[m]), -np.inf), np.inf)
        m = kind == "sqrt"
        X[m] = np.where(pos[m], (w[m] / (2.0 * r[m])) ** 2 - a[m], np.inf)
        m = kind == "linear"
        X[m] = np.where(w[m] > r[m], np.inf, -np.inf)
    X[(w == 0) & (r == 0)] = -np.inf                   # flat: any X, take the left end
    return X


def _inner_rho0(inst, lam):
    """h_i and the maximising pair allocation for rho = 0 (exact)."""
    pp, pj = inst["pair_pool"], inst["pair_proj"]
    n = len(inst["proj_ids"])
    p = inst["price"][pp]
    ub = np.minimum(inst["pair_ub"], inst["budget"][pp])
    w, kind, a, cap = inst["w"], inst["kind"], inst["param"], inst["cap"]
    r = lam[pp] / p                                    # cost per unit of value
    order = np.lexsort((r, pj))                        # by project, then cheapest first
    pj_o, r_o, v_o = pj[order], r[order], (p * ub)[order]
    cv = np.cumsum(v_o)
    cc = np.cumsum(r_o * v_o)
    first = np.r_[True, pj_o[1:] != pj_o[:-1]]
    starts = np.flatnonzero(first)
    base_v = np.repeat(cv[starts] - v_o[starts], np.diff(np.r_[starts, len(order)]))
    base_c = np.repeat(cc[starts] - (r_o * v_o)[starts], np.diff(np.r_[starts, len(order)]))
    xs = cv - v_o - base_v                             # segment start (value)
    cs = cc - r_o * v_o - base_c                       # cost of everything before it
    xe = xs + v_o
    ci = cap[pj_o]
    xs_c, xe_c = np.minimum(xs, ci), np.minimum(xe, ci)
    wi, ki, ai = w[pj_o], kind[pj_o], a[pj_o]
    X = np.clip(_uprime_inv(ki, wi, ai, r_o), xs_c, xe_c)
    val = wi * utilities(ki, ai, X) - (cs + r_o * (X - xs))
    val[xs >= ci] = -np.inf                            # segment lies beyond the cap
    h = w * utilities(kind, a, np.zeros(n))            # X_i = 0
    best = np.full(n, -1)
    hseg = np.full(n, -np.inf)
    np.maximum.at(hseg, pj_o, val)
    take = hseg > h
    h = np.where(take, hseg, h)
    # maximiser (for the subgradient): the winning segment, earlier pairs full
    seg_best = take[pj_o] & (val == hseg[pj_o])
    idx = np.flatnonzero(seg_best)
    idx = idx[np.r_[True, pj_o[idx][1:] != pj_o[idx][:-1]]] if idx.size else idx
    best[pj_o[idx]] = idx
    x_o = np.zeros(len(order))
    if idx.size:
        bi = best[pj_o]
        have = bi >= 0
        pos = np.arange(len(order))
        full = have & (pos < bi)                      # same project, cheaper segments
        x_o[full] = np.minimum(v_o[full], np.maximum(ci[full] - xs[full], 0.0))
        x_o[idx] = X[idx] - xs[idx]
    x = np.zeros(len(pp))
    x[order] = x_o / p[order]
    return h, x


def _inner_rho(inst, lam, iters=200):
    """h_i and the maximising pair allocation for rho > 0 (bisection on theta)."""
    rho = inst["rho"]
    pp, pj = inst["pair_pool"], inst["pair_proj"]
    n = len(inst["proj_ids"])
    p = inst["price"][pp]
    ub = np.minimum(inst["pair_ub"], inst["budget"][pp])
    b = inst["pair_base"]
    lk = lam[pp]
    w, kind, a, cap = inst["w"], inst["kind"], inst["param"], inst["cap"]

    def xk(theta):
        return np.clip(b + (theta[pj] * p - lk) / (2 * rho), 0.0, ub)

    def Xof(theta):
        return np.bincount(pj, weights=p * xk(theta), minlength=n)

    lo = np.full(n, np.inf)
    np.minimum.at(lo, pj, (lk - 2 * rho * b) / p)
    hi = np.full(n, -np.inf)
    np.maximum.at(hi, pj, (lk + 2 * rho * (ub - b)) / p)
    has = np.isfinite(lo)
    lo[~has], hi[~has] = 0.0, 0.0

    def phi(theta):
        return w * _uprime(kind, a, Xof(theta)) - theta

    def bisect(lo, hi, f):
        lo, hi = lo.copy(), hi.copy()
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            up = f(mid) > 0
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
        return 0.5 * (lo + hi)

    theta = bisect(lo, hi, phi)
    theta = np.where(phi(lo) <= 0, lo, theta)
    theta = np.where(phi(hi) >= 0, hi, theta)
    X = Xof(theta)
    over = X > cap
    if over.any():
        tc = bisect(lo, theta, lambda t: cap - Xof(t))
        theta = np.where(over, tc, theta)
    x = np.where(has[pj], xk(theta), 0.0)
    X = np.bincount(pj, weights=p * x, minlength=n)
    cost = np.bincount(pj, weights=lk * x + rho * (x - b) ** 2, minlength=n)
    return w * utilities(kind, a, X) - cost, x


def dual_bound(inst, lam, want_x=False):
    """g(lam) >= optimum (weak duality) and its gradient B_d - spent_d(inner maximiser)
    (and the inner maximiser itself with want_x)."""
    lam = np.where(inst["spend_all"], lam, np.maximum(lam, 0.0))
    h, x = (_inner_rho(inst, lam) if inst["rho"] > 0 else _inner_rho0(inst, lam))
    g = float(np.dot(lam, inst["budget"]) + h.sum() - inst["rho"] * inst["const_base_sq"])
    spent = np.bincount(inst["pair_pool"], weights=x, minlength=len(lam))
    return (g, inst["budget"] - spent, x) if want_x else (g, inst["budget"] - spent)


def best_dual_bound(inst, lam0, iters=30):
    """min of g over lam0 and a few projected L-BFGS-B steps from it."""
    from scipy.optimize import minimize
    g0, _ = dual_bound(inst, lam0)
    best = [g0, lam0]

    def f(l):
        g, grad = dual_bound(inst, l)
        if g < best[0]:
            best[0], best[1] = g, l.copy()
        return g, grad
    bounds = [(None, None) if sa else (0.0, None) for sa in inst["spend_all"]]
    try:
        minimize(f, np.where(inst["spend_all"], lam0, np.maximum(lam0, 0.0)), jac=True,
                 method="L-BFGS-B", bounds=bounds, options={"maxiter": iters})
    except (ValueError, FloatingPointError):
        pass
    return best[0], best[1]


# ------------------------------------------------------------------ model --

def marginal_scale(inst):
    """E = sum_i |w_i u_i'(Xbar)| Xbar with Xbar = total value / projects: the size of
    the objective's response to the allocation (used to size the regulariser)."""
    n = len(inst["proj_ids"])
    total = float(np.dot(inst["price"], inst["budget"]))
    if n == 0 or not total > 0:
        return 0.0
    xbar = total / n
    kind, a, w = inst["kind"], inst["param"], inst["w"]
    g = np.zeros(n)
    m = kind == "log"
    g[m] = 1.0 / (a[m] + xbar)
    m = kind == "saturating"
    g[m] = np.exp(-xbar / a[m])
    m = kind == "sqrt"
    g[m] = 0.5 / np.sqrt(a[m] + xbar)
    g[kind == "linear"] = 1.0
    return float(np.sum(np.abs(w * g)) * xbar)


def build_problem(inst, scale_div=1.0, reg_rel=0.0, sat_form="exp"):
    """Build the scaled sparse cvxpy problem.

    Value unit S = (sum_d p_d B_d) / scale_div, z_k = p_d x_k / S.  With reg_rel > 0
    the objective gets -r * ||z||^2, r chosen so that the term is worth reg_rel * E
    (see marginal_scale) at the even split.  sat_form "exp" writes saturating
    utilities as -w s exp(-X/s), "perspective" as an explicit exponential cone
    whose coordinates are all in value units.  Returns (problem, z, S, r, rows)
    with rows = [(pool indices, constraint)] for the pool budget rows.
    """
    price, budget = inst["price"], inst["budget"]
    pp, pj = inst["pair_pool"], inst["pair_proj"]
    n, D, K = len(inst["proj_ids"]), len(price), len(pp)
    total = float(np.dot(price, budget))
    S = total / scale_div if total > 0 else 1.0
    p_pair = price[pp]
    ones = np.ones(K)
    A = sp.csr_matrix((ones, (pj, np.arange(K))), shape=(n, K))   # pairs -> projects
    P = sp.csr_matrix((ones, (pp, np.arange(K))), shape=(D, K))   # pairs -> pools

    z = cp.Variable(K, nonneg=True)
    w, kind, param = inst["w"], inst["kind"], inst["param"]
    terms = []
    idx = np.flatnonzero((kind == "log") & (w > 0))
    if idx.size:
        terms.append(w[idx] @ cp.log(param[idx] / S + A[idx] @ z))
    idx = np.flatnonzero((kind == "saturating") & (w > 0))
    extra_cons = []
    if idx.size and sat_form == "perspective":
        # (x, y, z) in K_exp: y exp(x / y) <= z with x = -X/S, y = s/S, z = v:
        # v >= (s/S) exp(-X/s), and w s (1 - exp(-X/s)) = w S (s/S - v) at equality
        v = cp.Variable(idx.size)
        extra_cons.append(cp.constraints.ExpCone(-(A[idx] @ z), param[idx] / S, v))
        terms.append(-(w[idx] * S) @ v)
    elif idx.size:
        As = sp.diags(S / param[idx]) @ A[idx]
        terms.append(-(w[idx] * param[idx]) @ cp.exp(-(As @ z)))
    idx = np.flatnonzero((kind == "sqrt") & (w > 0))
    if idx.size:
        terms.append((w[idx] * math.sqrt(S)) @ cp.sqrt(param[idx] / S + A[idx] @ z))
    idx = np.flatnonzero((kind == "linear") & (w != 0))
    if idx.size:
        c = np.asarray(A[idx].T @ (w[idx] * S)).ravel()
        terms.append(c @ z)
    if inst["rho"] > 0 and K:
        terms.append(-(inst["rho"] * S * S) *
                     cp.sum_squares(cp.multiply(1.0 / p_pair, z) - inst["pair_base"] / S))
    r = 0.0
    if reg_rel > 0 and K:
        zbar_sq = (total / S) ** 2 / K          # ||z||^2 at the even split
        r = reg_rel * marginal_scale(inst) / zbar_sq
        if r > 0:
            terms.append(-r * cp.sum_squares(z))
    obj = cp.Maximize(sum(terms[1:], terms[0]) if terms else cp.Constant(0.0))

    cons = list(extra_cons)
    rhs = price * budget / S
    sa = inst["spend_all"]
    le = np.flatnonzero(~sa)
    eq = np.flatnonzero(sa)
    rows = []
    if le.size:
        cons.append(P[le] @ z <= rhs[le])
        rows.append((le, cons[-1]))
    if eq.size:
        cons.append(P[eq] @ z == rhs[eq])
        rows.append((eq, cons[-1]))
    # x_di <= min(c_di, max_share_d B_d, B_d): the B_d bound is implied by the pool
    # row but keeps every variable boxed, which Clarabel's exponential-cone
    # iterations need on large instances (without it they stall or diverge).
    ub = np.minimum(inst["pair_ub"], budget[pp])
    cons.append(z <= p_pair * ub / S)
    fin = np.flatnonzero(np.isfinite(inst["cap"]))
    if fin.size:
        cons.append(A[fin] @ z <= inst["cap"][fin] / S)
    return cp.Problem(obj, cons), z, S, r, rows


# (value-unit divisor, relative regulariser, saturating form), tried in order
# (the order was tuned on random instances: the first two rarely fail on small and
# mid-size instances, the large ones -- >= LARGE pairs -- start with the value unit
# equal to the whole budget)
ATTEMPTS = ((30.0, 1e-9, "perspective"), (1.0, 1e-9, "perspective"), (1.0, 1e-9, "exp"),
            (30.0, 1e-9, "exp"), (300.0, 0.0, "exp"))
ATTEMPTS_LARGE = ((1.0, 1e-9, "exp"), (1.0, 1e-9, "perspective"), (30.0, 1e-9, "perspective"),
                  (30.0, 1e-9, "exp"), (300.0, 0.0, "exp"))
LARGE = 20000
VERIFY_FEAS = 1e-9      # largest violation / largest pool budget, after repair
VERIFY_GAP = 1e-6       # (dual bound - objective) / max(1, |objective|): accept and stop
TIGHT_GAP = 1e-9        # above this, improve the multipliers (and, rho > 0, the point)


def relative_violation(inst, x):
    """max_violation divided by the largest pool budget (tokens) -- scale-free."""
    return max_violation(inst, x) / max(1.0, float(np.max(inst["budget"])))


def solve_instance(inst, tol=1e-10, tol_feas=1e-10, verbose=False, attempts=None,
                   certify=True, verbose_attempts=False):
    """Solve; return (x tokens per pair or None, status, stats dict).

    Clarabel is robust on small instances, but on large multi-pool ones its
    exponential-cone iterations can stall (InsufficientProgress) or end
    "AlmostSolved" slightly outside the budgets, depending on the value unit and
    on how the saturating cones are written.  So the solve is a small portfolio
    of formulations (ATTEMPTS, ATTEMPTS_LARGE), each judged independently of the
    solver: the point is repaired onto the feasible set (repair; it must then be
    within 1e-9 of the largest pool budget) and, when certify is on, compared
    with the weak-duality bound g(lam) computed in NumPy from Clarabel's pool
    duals (dual_bound; improved by L-BFGS-B when the gap exceeds 1e-9, and with
    rho > 0 the dual's own maximiser is tried as a point too).  The first
    attempt within VERIFY_GAP = 1e-6 of the bound is kept (small instances land
    at ~1e-10); otherwise the feasible point with the best objective, with
    "verified": false.  The bound reported is the smallest over all attempts
    (any lam gives a valid bound).

    Each attempt adds a tiny proximal term -r ||z||^2 worth reg_rel = 1e-9 of the
    objective's allocation scale at the even split: when pools are substitutes
    the pool split is not unique, and without it the iterations wander on the
    flat optimal face.  It also selects the minimum-norm split.  The objective
    reported is the specification's, without the term; "regularisation" is the
    term's value at the solution, and the dual gap covers its effect.
    """
    K = len(inst["pair_pool"])
    D = len(inst["pool_ids"])
    if attempts is None:
        attempts = ATTEMPTS_LARGE if K >= LARGE else ATTEMPTS
    stats = {"solve_seconds": 0.0, "compile_seconds": 0.0, "certify_seconds": 0.0,
             "attempt_seconds": [],
             "attempts": 0, "iterations": 0, "tol": tol, "tol_feas": tol_feas,
             "formulation": None, "regularisation": 0.0, "verified": False,
             "relative_violation": None, "repaired_violation": None, "dual_bound": None,
             "relative_gap": None, "solver_status": None}
    if K == 0:
        x = np.zeros(0)
        f = objective_value(inst, x)
        stats.update(verified=True, relative_violation=0.0, dual_bound=f, relative_gap=0.0)
        return x, "optimal", stats
    best = None                # (key, x, status, extra)
    g_best = math.inf
    first_status = None
    for scale_div, reg_rel, sat_form in attempts:
        stats["attempts"] += 1
        t_att = time.perf_counter()
        stats["attempt_seconds"].append(0.0)
        prob, z, S, r, rows = build_problem(inst, scale_div, reg_rel, sat_form)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # "Solution may be inaccurate"
                prob.solve(solver=cp.CLARABEL, verbose=verbose, max_iter=500,
                           tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol_feas)
            status = prob.status
        except cp.error.SolverError as e:
            status = f"solver_error: {e}"
        st = prob.solver_stats
        if st is not None and st.solve_time is not None:
            stats["solve_seconds"] += float(st.solve_time)
        if prob.compilation_time is not None:
            stats["compile_seconds"] += float(prob.compilation_time)
        first_status = first_status or status
        stats["attempt_seconds"][-1] = time.perf_counter() - t_att
        if z.value is None or status not in ("optimal", "optimal_inaccurate"):
            if verbose_attempts:
                print(f"  attempt {stats['attempts']} {scale_div, reg_rel, sat_form}: "
                      f"{status[:40]}", file=sys.stderr)
            if status in ("infeasible", "unbounded") and best is None:
                first_status = status
                break                                  # certified: retrying will not help
            continue
        zv = np.asarray(z.value, dtype=np.float64)
        x = np.maximum(zv, 0.0) * S / inst["price"][inst["pair_pool"]]
        rv_raw = relative_violation(inst, x)
        if rv_raw > 0:
            x = repair(inst, x)
        rv = relative_violation(inst, x)
        f = objective_value(inst, x)
        t0 = time.perf_counter()
        if certify:
            lam = np.zeros(D)
            for idx, con in rows:
                if con.dual_value is not None:
                    lam[idx] = np.asarray(con.dual_value, dtype=float).ravel() * \
                        inst["price"][idx] / S
            tol_g = TIGHT_GAP * max(1.0, abs(f))
            g, _ = dual_bound(inst, lam)
            start = lam
            if g - f > tol_g and inst["spend_all"].any():   # sign convention of equality duals
                flip = np.where(inst["spend_all"], -lam, lam)
                g2, _ = dual_bound(inst, flip)
                if g2 < g:
                    g, start = g2, flip
            if g - f > tol_g:
                g, lam_g = best_dual_bound(inst, start)
                if inst["rho"] > 0:
                    # with rho > 0 the inner maximiser at the improved multipliers is the
                    # primal optimum up to the remaining budget residual: try it too
                    _, _, xd = dual_bound(inst, lam_g, want_x=True)
                    xd = repair(inst, xd)
                    fd = objective_value(inst, xd)
                    if fd > f and relative_violation(inst, xd) <= VERIFY_FEAS:
                        x, f, rv = xd, fd, relative_violation(inst, xd)
                        status = status + " (dual-polished)"
            g_best = min(g_best, g)
        stats["certify_seconds"] += time.perf_counter() - t0
        feasible = rv <= VERIFY_FEAS
        extra = {"iterations": int(st.num_iters) if st is not None and st.num_iters is not None
                 else -1, "formulation": {"scale_div": scale_div, "reg_rel": reg_rel,
                                          "saturating": sat_form},
                 "solver_status": status, "regularisation": float(r * np.dot(zv, zv)),
                 "relative_violation": rv, "repaired_violation": rv_raw}
        if verbose_attempts:
            print(f"  attempt {stats['attempts']} {scale_div, reg_rel, sat_form}: {status}, "
                  f"f = {f!r}, relative violation {rv_raw:.1e} -> {rv:.1e}, bound {g_best!r}",
                  file=sys.stderr)
        key = (feasible, f if feasible else -rv)
        if best is None or key > best[0]:
            best = (key, x, status, extra)
        if feasible and (not certify or g_best - f <= VERIFY_GAP * max(1.0, abs(f))):
            break
    if best is None:
        stats["solver_status"] = first_status
        return None, first_status, stats
    (feasible, _), x, status, extra = best
    stats.update(extra)
    f = objective_value(inst, x)
    if certify and math.isfinite(g_best):
        stats["dual_bound"] = g_best
        stats["relative_gap"] = (g_best - f) / max(1.0, abs(f))
    stats["verified"] = bool(feasible and (not certify or (
        stats["relative_gap"] is not None and stats["relative_gap"] <= VERIFY_GAP)))
    return x, status, stats


def run(path, tol=1e-10, tol_feas=1e-10, verbose=False, certify=True):
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    inst = parse_instance(doc)
    x, status, stats = solve_instance(inst, tol=tol, tol_feas=tol_feas, verbose=verbose,
                                      certify=certify)
    seconds = time.perf_counter() - t0
    return inst, x, status, stats, seconds


# -------------------------------------------------------------- reporting --

def to_json(inst, x, status, stats, seconds):
    out = {
        "objective": objective_value(inst, x) if x is not None else None,
        "seconds": seconds,
        "solve_seconds": stats["solve_seconds"],
        "compile_seconds": stats["compile_seconds"],
        "certify_seconds": stats["certify_seconds"],
        "attempt_seconds": stats["attempt_seconds"],
        "status": status,
        "verified": bool(stats["verified"]) if x is not None else False,
        "dual_bound": stats["dual_bound"],
        "relative_gap": stats["relative_gap"],
        "max_violation": max_violation(inst, x) if x is not None else None,
        "relative_violation": stats["relative_violation"],
        "repaired_violation": stats["repaired_violation"],
        "regularisation": stats["regularisation"],
        "iterations": stats["iterations"],
        "attempts": stats["attempts"],
        "formulation": stats["formulation"],
        "tol": stats["tol"],
        "tol_feas": stats["tol_feas"],
        "pools": {pid: {} for pid in inst["pool_ids"]},
    }
    if x is not None:
        pools, projs = inst["pool_ids"], inst["proj_ids"]
        for d, i, v in zip(inst["pair_pool"].tolist(), inst["pair_proj"].tolist(), x.tolist()):
            out["pools"][pools[d]][projs[i]] = v
    return out


def print_summary(path, inst, x, status, stats, seconds, top=10):
    D, n, K = len(inst["pool_ids"]), len(inst["proj_ids"]), len(inst["pair_pool"])
    print(f"{path}: {D} pools, {n} projects, {K} eligible pairs, weights from "
          f"{inst['weights_from']}, rho = {inst['rho']:g}")
    form = stats["formulation"] or {}
    ver = "" if x is None else ", verified" if stats["verified"] else ", NOT verified"
    print(f"status {status}{ver}"
          f" (attempt {stats['attempts']}: {form}), {stats['iterations']} iterations")
    print(f"{seconds:.3f} s end to end (compile {stats['compile_seconds']:.3f} s, "
          f"solve {stats['solve_seconds']:.3f} s, certificate {stats['certify_seconds']:.3f} s)")
    if x is None:
        return
    gap, bound = stats["relative_gap"], stats["dual_bound"]
    print(f"objective {objective_value(inst, x):.12g}   dual bound "
          f"{bound if bound is None else format(bound, '.12g')}"
          f" (relative gap {gap if gap is None else format(gap, '.2e')})")
    print(f"max violation {max_violation(inst, x):.3g}   "
          f"regularisation {stats['regularisation']:.3g}")
    spent = np.bincount(inst["pair_pool"], weights=x, minlength=D)
    for d, pid in enumerate(inst["pool_ids"]):
        print(f"  pool {pid:>16}: spent {spent[d]:.6f} of {inst['budget'][d]:.6f}"
              f"{' (spend_all)' if inst['spend_all'][d] else ''}")
    X = project_values(inst, x)
    order = np.argsort(-X, kind="stable")[:top]
    print(f"top {len(order)} projects by value received:")
    for r, i in enumerate(order, 1):
        print(f"  {r:2d}. {X[i]:16.6f}  {inst['proj_ids'][i]}")


# --------------------------------------------------------------- selftest --

def _waterfill(kind, w, a, total, cap=None):
    """One pool, no rho: closed-form KKT solution X_i(mu) with sum X_i = total (bisection).

    kind is one kind for all projects or an array of kinds (log, saturating, sqrt
    may be mixed; linear only on its own, where the answer is the greedy fill).
    """
    n = len(w)
    cap = np.full(n, np.inf) if cap is None else np.asarray(cap, dtype=float)
    kinds = np.full(n, kind, dtype=object) if isinstance(kind, str) else np.asarray(kind)
    if (kinds == "linear").all():      # greedy: highest weight first, up to its cap
        X = np.zeros(n)
        left = total
        for i in np.argsort(-w, kind="stable"):
            X[i] = min(cap[i], left)
            left -= X[i]
        return X
    assert not (kinds == "linear").any(), "linear mixed with concave kinds"
    lg, sat, sq = kinds == "log", kinds == "saturating", kinds == "sqrt"

    def xs(mu):
        X = np.empty(n)
        X[lg] = w[lg] / mu - a[lg]                     # w / (a + X) = mu
        X[sat] = a[sat] * np.log(w[sat] / mu)          # w exp(-X / s) = mu, a = s
        X[sq] = (w[sq] / (2 * mu)) ** 2 - a[sq]        # w / (2 sqrt(a + X)) = mu
        return np.clip(X, 0.0, cap)

    lo, hi = 1e-300, 1e300
    for _ in range(3000):
        mid = math.sqrt(lo * hi)
        if xs(mid).sum() > total:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-15:
            break
    return xs(math.sqrt(lo * hi))


def _toml_mixed_pool(kinds, w, a, budget):
    lines = ["[[pools]]", 'id = "P"', "price = 1.0", f'budget = "{float(budget)!r}"', ""]
    for i, k in enumerate(kinds):
        key = "s" if k == "saturating" else "a"
        lines += ["[[projects]]", f'id = "p{i}"', f"weight = {float(w[i])!r}",
                  f'utility = {{ kind = "{k}", {key} = {float(a[i])!r} }}', ""]
    return "\n".join(lines)


def _toml_one_pool(kind, w, a, budget, price, cap=None):
    key = {"log": "a", "saturating": "s", "sqrt": "a", "linear": None}[kind]
    w, a, budget, price = [float(v) for v in w], [float(v) for v in a], float(budget), float(price)
    cap = None if cap is None else [float(v) for v in cap]
    lines = ["[[pools]]", 'id = "P"', 'token = "T"', "decimals = 18",
             f"price = {price!r}", f'budget = "{budget!r}"', ""]
    for i in range(len(w)):
        u = f'{{ kind = "{kind}", {key} = {a[i]!r} }}' if key else f'{{ kind = "{kind}" }}'
        lines += ["[[projects]]", f'id = "p{i}"', f"weight = {w[i]!r}", f"utility = {u}"]
        if cap is not None and math.isfinite(cap[i]):
            lines.append(f'cap = "{cap[i]!r}"')
        lines.append("")
    return "\n".join(lines)


def _slsqp_reference(inst):
    """Dense SciPy SLSQP solve of the same problem in tokens (self-test only, small n)."""
    from scipy.optimize import minimize
    K = len(inst["pair_pool"])
    pp, pj = inst["pair_pool"], inst["pair_proj"]
    p_pair = inst["price"][pp]
    sc = inst["budget"][pp]                          # variables y = x / B_d

    def f(y):
        return -objective_value(inst, y * sc)
    cons = []
    for d in range(len(inst["pool_ids"])):
        m = (pp == d).astype(float) * sc
        typ = "eq" if inst["spend_all"][d] else "ineq"
        cons.append({"type": typ, "fun": (lambda y, m=m, d=d: inst["budget"][d] - m @ y)})
    for i in np.flatnonzero(np.isfinite(inst["cap"])):
        m = (pj == i) * p_pair * sc
        cons.append({"type": "ineq", "fun": (lambda y, m=m, i=i: inst["cap"][i] - m @ y)})
    ub = np.where(np.isfinite(inst["pair_ub"]), inst["pair_ub"] / sc, None)
    y0 = np.full(K, 1e-3)
    r = minimize(f, y0, method="SLSQP", bounds=list(zip([0.0] * K, ub)), constraints=cons,
                 options={"ftol": 1e-14, "maxiter": 2000})
    return r.x * sc, -r.fun


SELFTEST_MIXED = """
rho = 1e-6
[weights]
ai = 0.6
qv = 0.4
[utility]
kind = "log"
a = 100.0
[[pools]]
id = "op"
token = "OP"
decimals = 18
price = 1.9
budget = "1000"
spend_all = true
max_share = 0.5
[[pools]]
id = "dai"
token = "DAI"
decimals = 18
price = 1.0
budget = "800"
[[pools]]
id = "eth"
token = "ETH"
decimals = 18
price = 2500
budget = "0.4"
max_share = 0.6
[[projects]]
id = "a"
signals = { ai = 3.0, qv = 1.0 }
cap = "900"
[[projects]]
id = "b"
signals = { ai = 1.0, qv = 2.0 }
utility = { kind = "saturating", s = 300.0 }
pool_caps = { dai = "150" }
baseline = { op = "200", dai = "100" }
[[projects]]
id = "c"
signals = { ai = 0.5 }
utility = { kind = "sqrt", a = 10.0 }
eligible = ["op", "eth"]
baseline = { dai = "50" }
[[projects]]
id = "d"
signals = { qv = 1.5 }
utility = { kind = "linear" }
cap = "400"
[[projects]]
id = "e"
signals = { ai = 2.0, qv = 0.5 }
eligible = ["dai"]
"""


def selftest():
    ok = True
    rng = np.random.default_rng(11)
    for kind in KINDS:
        for price in (1.0, 2.7):
            n = 40
            w = rng.uniform(0.1, 3.0, n)
            a = rng.uniform(10.0, 800.0, n) if kind != "sqrt" else rng.uniform(0.0, 800.0, n)
            budget = 5000.0
            cap = np.where(rng.random(n) < 0.3, rng.uniform(50, 400, n), np.inf) \
                if kind == "linear" else None
            inst = parse_instance(tomllib.loads(_toml_one_pool(kind, w, a, budget, price, cap)))
            x, status, st = solve_instance(inst)
            X_ref = _waterfill(kind, w, a, budget * price, cap)
            err = np.max(np.abs(x - X_ref / price))
            obj_ref = objective_value(inst, X_ref / price)
            obj = objective_value(inst, x)
            tol_o = 1e-9 * max(1.0, abs(obj_ref))
            # x is flat-optimal: its error behaves like sqrt(gap tolerance), so it is
            # checked relative to the budget (1e-6); the objective much tighter, and
            # the dual bound must bracket the closed-form optimum from above.
            good = st["verified"] and abs(obj - obj_ref) <= tol_o and \
                obj_ref - tol_o <= st["dual_bound"] <= obj_ref + tol_o
            if kind != "linear":   # linear ties could make x non-unique
                good = good and err < 1e-6 * max(1.0, budget)
            print(f"water-filling {kind:10s} price {price}: status {status}, "
                  f"max |x - x*| = {err:.2e} tokens ({err / budget:.1e} of B), "
                  f"objective {obj:.10g} vs {obj_ref:.10g}, bound {st['dual_bound']:.10g}"
                  f" {'ok' if good else 'MISMATCH'}")
            ok &= good
    # one pool, 1000 projects, log / saturating / sqrt mixed (a hard case for Clarabel)
    n, budget = 1000, 2.5e5
    kinds = rng.choice(["log", "saturating", "sqrt"], n)
    w = rng.lognormal(0.0, 1.0, n) / n
    a = np.where(kinds == "log", rng.uniform(100, 1e4, n),
                 np.where(kinds == "saturating", rng.uniform(1e3, 5e4, n), rng.uniform(0, 1e3, n)))
    inst = parse_instance(tomllib.loads(_toml_mixed_pool(kinds, w, a, budget)))
    x, status, st = solve_instance(inst)
    X_ref = _waterfill(kinds, w, a, budget)
    err = np.max(np.abs(x - X_ref))
    obj, obj_ref = objective_value(inst, x), objective_value(inst, X_ref)
    good = st["verified"] and err < 1e-6 * budget and abs(obj - obj_ref) <= 1e-9 * abs(obj_ref)
    print(f"water-filling mixed kinds, n = {n}: status {status} (attempt {st['attempts']}), "
          f"max |x - x*| = {err:.2e} tokens ({err / budget:.1e} of B), objective {obj:.12g} "
          f"vs {obj_ref:.12g} {'ok' if good else 'MISMATCH'}")
    ok &= good
    inst = parse_instance(tomllib.loads(SELFTEST_MIXED))
    x, status, st = solve_instance(inst)
    xs, obj_s = _slsqp_reference(inst)
    obj = objective_value(inst, x)
    viol = max_violation(inst, x)
    good = st["verified"] and viol < 1e-6 and obj >= obj_s - 1e-6 * abs(obj_s) \
        and abs(obj - obj_s) <= 1e-5 * abs(obj_s)
    print(f"3 pools, every constraint kind: status {status}, objective {obj:.10g} "
          f"(SLSQP {obj_s:.10g}), max |x - x_slsqp| {np.max(np.abs(x - xs)):.2e}, "
          f"violation {viol:.1e} {'ok' if good else 'MISMATCH'}")
    ok &= good
    # weights from inline signals: each signal normalised over projects, mixed by alpha
    doc = tomllib.loads('[weights]\nai = 0.6\nqv = 0.4\nzero = 5.0\n[utility]\nkind = "linear"\n'
                        '[[pools]]\nid = "P"\nprice = 1\nbudget = "1"\n'
                        '[[projects]]\nid = "a"\nsignals = { ai = 1.0, qv = 2.0 }\n'
                        '[[projects]]\nid = "b"\nsignals = { ai = 3.0 }\n'
                        '[[projects]]\nid = "c"\n')
    w = parse_instance(doc)["w"]
    good = np.allclose(w, [0.6 * 0.25 + 0.4, 0.6 * 0.75, 0.0], rtol=0, atol=1e-15)
    print(f"signal weights {w.tolist()} {'ok' if good else 'MISMATCH'}")
    ok &= good
    for bad, msg in (('[[pools]]\nid="P"\nprice=1\nbudget="1"\nmin_grant="1"\n'
                      '[[projects]]\nid="a"\nweight=1\nutility={kind="linear"}\n', "min_grant"),
                     ('[signals]\nai="x.json"\n[[pools]]\nid="P"\nprice=1\nbudget="1"\n'
                      '[[projects]]\nid="a"\nweight=1\nutility={kind="linear"}\n', "signal files")):
        try:
            parse_instance(tomllib.loads(bad))
            print(f"{msg}: not refused MISMATCH")
            ok = False
        except InstanceError as e:
            print(f"{msg}: refused ({e}) ok")
    print("selftest", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


# ------------------------------------------------------------------- main --

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("instance", nargs="?", help="instance TOML")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--tol", type=float, default=1e-10,
                    help="Clarabel tol_gap_abs = tol_gap_rel (default 1e-10)")
    ap.add_argument("--tol-feas", type=float, default=1e-10,
                    help="Clarabel tol_feas (default 1e-10)")
    ap.add_argument("--verbose", action="store_true", help="print the Clarabel log (on stdout)")
    ap.add_argument("--no-certify", action="store_true",
                    help="skip the dual bound (then any feasible attempt is accepted)")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args(argv)
    if cp is None:
        print("error: cvxpy is not installed (pip install cvxpy clarabel)", file=sys.stderr)
        return 2
    if args.selftest:
        return selftest()
    if not args.instance:
        ap.error("INSTANCE.toml required (or --selftest)")
    try:
        inst, x, status, stats, seconds = run(args.instance, tol=args.tol, tol_feas=args.tol_feas,
                                              verbose=args.verbose, certify=not args.no_certify)
    except InstanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"error: {args.instance}: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(to_json(inst, x, status, stats, seconds)))
    else:
        print_summary(args.instance, inst, x, status, stats, seconds)
    return 0 if x is not None and stats["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
