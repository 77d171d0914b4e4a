//! Before solving: can every pool that must be spent be spent? If not, say which constraints conflict.
//!
//! Each pool on its own is checked exactly in base units (Σ of its projects' bounds against its budget).
//! Jointly, the pools that must be spent compete for projects' cross-pool caps: that is a maximum flow in
//! units of value (source → pool, capacity p_d·B_d; pool → project, p_d·ub_di; project → sink, C_i), solved
//! with Dinic's algorithm (E. A. Dinitz, "Algorithm for solution of a problem of maximum flow in networks
//! with power estimation", Soviet Math. Doklady 11, 1970). The spend-all pools fit iff the flow saturates
//! their edges; otherwise the minimum cut names the pools and the caps that conflict.

use crate::input::Problem;
use crate::solve::Pair;
use crate::AllocError;

/// Checks that each spend-all pool can be spent over `pairs`, alone and together.
pub fn check(p: &Problem, pairs: &[Pair], pools: &[usize], context: &str) -> Result<(), AllocError> {
    for &d in pools {
        let pool = &p.pools[d];
        if !pool.spend_all || pool.budget == 0 {
            continue;
        }
        let mine: Vec<&Pair> = pairs.iter().filter(|k| k.d == d).collect();
        let room: u128 = mine.iter().map(|k| k.ub).fold(0u128, |a, b| a.saturating_add(b));
        if room < pool.budget {
            let eligible = p.projects.iter().filter(|pj| pj.eligible[d]).count();
            let mut why = Vec::new();
            if let Some(s) = pool.max_share {
                why.push(format!(
                    "max_share {s} lets each take at most {}",
                    pool.token.format(crate::tok(crate::input::share_of(s, pool.budget)))
                ));
            }
            let capped = p.projects.iter().filter(|pj| pj.eligible[d] && pj.pool_caps[d].is_some()).count();
            if capped > 0 {
                why.push(format!("{capped} have pool_caps"));
            }
            if pool.min_grant > 0 {
                why.push(format!("min_grant {}", pool.token.format(crate::tok(pool.min_grant))));
            }
            return Err(AllocError::Infeasible(format!(
                "pool `{}`: spend_all needs {} {} given{context}, but its {} eligible projects ({} with a bound above zero) can take at most {} {}{}",
                pool.id,
                pool.token.format(crate::tok(pool.budget)),
                pool.token.symbol,
                eligible,
                mine.len(),
                pool.token.format(crate::tok(room)),
                pool.token.symbol,
                if why.is_empty() { String::new() } else { format!(" ({})", why.join("; ")) }
            )));
        }
    }
    // Jointly, through the projects' cross-pool caps.
    let must: Vec<usize> = pools.iter().copied().filter(|&d| p.pools[d].spend_all && p.pools[d].budget > 0).collect();
    if must.len() < 2 && p.projects.iter().all(|pj| pj.cap.is_none()) {
        return Ok(());
    }
    let nd = p.pools.len();
    let ni = p.projects.len();
    let (src, sink) = (nd + ni, nd + ni + 1);
    let mut g = Flow::new(nd + ni + 2);
    let mut need = 0.0;
    for &d in &must {
        let v = p.pools[d].price * p.pools[d].budget_tokens();
        need += v;
        g.edge(src, d, v);
    }
    for k in pairs.iter().filter(|k| p.pools[k.d].spend_all) {
        g.edge(k.d, nd + k.i, p.pools[k.d].price * k.ub as f64 / p.pools[k.d].unit());
    }
    for (i, pj) in p.projects.iter().enumerate() {
        g.edge(nd + i, sink, pj.cap.unwrap_or(f64::INFINITY));
    }
    let got = g.max_flow(src, sink);
    if got >= need * (1.0 - 1e-9) {
        return Ok(());
    }
    let reach = g.reachable(src);
    let pools: Vec<&str> = must.iter().filter(|&&d| reach[d]).map(|&d| p.pools[d].id.as_str()).collect();
    let capped: Vec<&str> =
        (0..ni).filter(|&i| reach[nd + i] && p.projects[i].cap.is_some()).map(|i| p.projects[i].id.as_str()).collect();
    let shown: Vec<&str> = capped.iter().take(5).copied().collect();
    Err(AllocError::Infeasible(format!(
        "pools {} must be spent{context} ({:.6} units of value together), but the projects they may fund can take at most {:.6}: \
         the cross-pool caps of {} projects bind ({}{})",
        pools.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        need,
        got,
        capped.len(),
        shown.join(", "),
        if capped.len() > shown.len() { ", …" } else { "" }
    )))
}

/// A small max-flow graph (Dinic) in f64.
struct Flow {
    head: Vec<Vec<usize>>,
    to: Vec<usize>,
    cap: Vec<f64>,
}

impl Flow {
    fn new(n: usize) -> Self {
        Flow { head: vec![Vec::new(); n], to: Vec::new(), cap: Vec::new() }
    }

    fn edge(&mut self, a: usize, b: usize, c: f64) {
        self.head[a].push(self.to.len());
        self.to.push(b);
        self.cap.push(c);
        self.head[b].push(self.to.len());
        self.to.push(a);
        self.cap.push(0.0);
    }

    fn levels(&self, s: usize) -> Vec<i64> {
        let mut level = vec![-1i64; self.head.len()];
        let mut queue = std::collections::VecDeque::from([s]);
        level[s] = 0;
        while let Some(u) = queue.pop_front() {
            for &e in &self.head[u] {
                let v = self.to[e];
                if level[v] < 0 && self.cap[e] > 1e-12 {
                    level[v] = level[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        level
    }

    fn reachable(&self, s: usize) -> Vec<bool> {
        self.levels(s).into_iter().map(|l| l >= 0).collect()
    }

    fn push(&mut self, u: usize, t: usize, f: f64, level: &[i64], it: &mut [usize]) -> f64 {
        if u == t {
            return f;
        }
        while it[u] < self.head[u].len() {
            let e = self.head[u][it[u]];
            let v = self.to[e];
            if self.cap[e] > 1e-12 && level[v] == level[u] + 1 {
                let got = self.push(v, t, f.min(self.cap[e]), level, it);
                if got > 0.0 {
                    self.cap[e] -= got;
                    self.cap[e ^ 1] += got;
                    return got;
                }
            }
            it[u] += 1;
        }
        0.0
    }

    fn max_flow(&mut self, s: usize, t: usize) -> f64 {
        let mut total = 0.0;
        loop {
            let level = self.levels(s);
            if level[t] < 0 {
                return total;
            }
            let mut it = vec![0usize; self.head.len()];
            loop {
                let f = self.push(s, t, f64::INFINITY, &level, &mut it);
                if f <= 0.0 {
                    break;
                }
                total += f;
            }
        }
    }
}
