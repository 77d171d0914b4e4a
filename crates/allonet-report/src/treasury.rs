//! A DAO treasury as people read it: the policy report, runway, stress scenarios, optimal weights,
//! rebalancing trades and backtests, as terminal text and self-contained HTML pages.
//!
//! Each `fn thing(…)` returns what `allonet treasury thing` prints (every line ending in a newline) and each
//! `fn thing_html(…)` the page `--html` writes. The figures come from `allonet_engine::treasury`; the JSON form
//! is those results serialised as they are.

use crate::html::{self, esc, Bar};
use crate::{group_thousands, right, table};
use allonet_engine::treasury::{AssetLine, BacktestReport, Backtested, Optimized, Problem, Report, RunwayReport};
use allonet_treasury::policy::{Policy, SpendingRule};
use allonet_treasury::rebalance::Plan;
use allonet_treasury::stress::StressResult;
use std::collections::BTreeSet;

/// A whole number with thousands separators.
fn whole(x: f64) -> String {
    group_thousands(&format!("{x:.0}"))
}

/// A share as a percentage with `places` decimals.
fn pct(x: f64, places: usize) -> String {
    format!("{:.*}%", places, x * 100.0)
}

fn bar(label: String, value: f64, text: String) -> Bar {
    Bar { label, value, text }
}

/// Lines joined, each ending in a newline.
fn text(lines: impl IntoIterator<Item = String>) -> String {
    lines.into_iter().map(|l| l + "\n").collect()
}

/// Buy or sell, by the sign of a trade.
fn side(amount: f64) -> &'static str {
    if amount >= 0.0 {
        "buy"
    } else {
        "sell"
    }
}

/// The figures of optimal weights in one line: method, expected return, volatility and Sharpe ratio.
pub fn optimize_summary(o: &Optimized) -> String {
    let (ret, vol) = (pct(o.expected_return, 2), pct(o.volatility, 2));
    format!("{:?}: expected return {ret}, volatility {vol}, Sharpe {:.3}", o.method, o.sharpe)
}

/// Optimal weights beside the policy's target and cap and each asset's expected return and volatility, then
/// the figures at risk-free rate `rf` and the assets a cap-ignoring method puts over their cap.
pub fn optimize(policy: &Policy, problem: &Problem, o: &Optimized, rf: f64) -> String {
    let vols = problem.volatilities();
    let mut t = table(&["asset", "weight", "policy target", "cap", "expected return", "volatility"]);
    for (i, n) in problem.assets.iter().enumerate() {
        let (r, mu) = (&policy.assets[n], problem.inputs.mu[i]);
        t.add_row(vec![n.clone(), pct(o.weights[n], 2), pct(r.target, 1), pct(r.cap, 0), pct(mu, 1), pct(vols[i], 1)]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    let mut lines = vec![t.to_string(), format!("{} (rf {rf}) — from history, not a forecast", optimize_summary(o))];
    if !o.over_cap.is_empty() {
        lines.push(format!("note: {:?} ignores caps and exceeds them for {}", o.method, o.over_cap.join(", ")));
    }
    text(lines)
}

/// The optimal weights as a page: an allocation chart against the policy's targets and the weights.
pub fn optimize_html(policy: &Policy, o: &Optimized) -> String {
    let target = |n: &String| pct(policy.assets[n].target, 1);
    let bars: Vec<Bar> =
        o.weights.iter().map(|(n, v)| bar(n.clone(), *v, format!("{} (target {})", pct(*v, 2), target(n)))).collect();
    let rows: Vec<Vec<String>> = o.weights.iter().map(|(n, v)| vec![n.clone(), format!("{:.4}", v)]).collect();
    let summary = [optimize_summary(o)];
    html::report("allonet treasury optimize", &summary, "Allocation", &bars, &["asset", "weight"], &rows)
}

/// The trades of a rebalancing plan (or that none is needed) and the cost of not trading.
pub fn rebalance(plan: &Plan) -> String {
    let mut lines = vec![];
    if plan.trades.is_empty() {
        lines.push("every asset is inside its band: no trades".to_string());
    } else {
        let mut t = table(&["asset", "trade", "tranches", "weight after"]);
        for tr in &plan.trades {
            t.add_row(vec![
                tr.asset.clone(),
                format!("{} {}", side(tr.amount), whole(tr.amount.abs())),
                format!("{} × {}", tr.tranches.len(), whole(tr.tranches[0].abs())),
                pct(plan.after.get(&tr.asset).copied().unwrap_or(0.0), 2),
            ]);
        }
        right(&mut t, &[1, 2, 3]);
        lines.push(t.to_string());
    }
    if let Some(te) = plan.tracking_error {
        lines.push(format!("cost of not rebalancing: {} annual tracking error against the targets", pct(te, 2)));
    }
    text(lines)
}

/// A rebalancing plan as a page: a chart of the trades and the weights after them.
pub fn rebalance_html(plan: &Plan) -> String {
    let bars: Vec<Bar> = plan
        .trades
        .iter()
        .map(|t| {
            let text = format!("{} in {} tranche(s)", whole(t.amount.abs()), t.tranches.len());
            bar(format!("{} {}", side(t.amount), t.asset), t.amount.abs(), text)
        })
        .collect();
    let rows: Vec<Vec<String>> = plan.after.iter().map(|(n, w)| vec![n.clone(), pct(*w, 2)]).collect();
    let summary: Vec<String> = plan
        .tracking_error
        .map(|te| format!("cost of not rebalancing: {} annual tracking error", pct(te, 2)))
        .into_iter()
        .collect();
    html::report("allonet treasury rebalance", &summary, "Trades", &bars, &["asset", "weight after"], &rows)
}

/// A backtest: growth, volatility, drawdown, rebalances and turnover of the policy's targets and of the
/// benchmark `bench` (as given, e.g. `ETH=0.6,USDC=0.4`), then the period.
pub fn backtest(r: &BacktestReport, bench: &str) -> String {
    let mut t = table(&["portfolio", "CAGR", "volatility", "max drawdown", "rebalances", "turnover"]);
    let bench = format!("benchmark {bench} monthly");
    for (n, b) in [("policy targets, band rebalancing", &r.policy), (bench.as_str(), &r.benchmark)] {
        let turnover = format!("{:.2}", b.turnover);
        let (cagr, vol, dd) = (pct(b.cagr, 1), pct(b.volatility, 1), pct(b.max_drawdown, 1));
        t.add_row(vec![n.to_string(), cagr, vol, dd, b.rebalances.to_string(), turnover]);
    }
    right(&mut t, &[1, 2, 3, 4, 5]);
    text([t.to_string(), format!("{} … {} ({} days)", r.from, r.to, r.days)])
}

/// A backtest as a page: value (start = 1) and drawdown charts of the policy and the benchmark `bench`.
pub fn backtest_html(r: &BacktestReport, bench: &str) -> String {
    let (pol, ben) = (&r.policy, &r.benchmark);
    let (w, h) = (800.0, 260.0);
    let line = |vals: &[f64], max: f64, min: f64, colour: &str| {
        let x = |i: usize| 50.0 + w * i as f64 / (vals.len() - 1) as f64;
        let y = |v: f64| 10.0 + h - h * (v - min) / (max - min).max(1e-12);
        let pts: Vec<String> = vals.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
        format!("<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>", pts.join(" "))
    };
    let max = pol.values.iter().chain(&ben.values).cloned().fold(f64::MIN, f64::max);
    let min = pol.values.iter().chain(&ben.values).cloned().fold(f64::MAX, f64::min);
    let (dp, db) = (&pol.drawdowns, &ben.drawdowns);
    let dmin = dp.iter().chain(db).cloned().fold(0.0, f64::min);
    let chart = |title: &str, body: String| {
        format!(
            "<h2>{title}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\"><rect x=\"50\" y=\"10\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#ccd\"/>{body}<text x=\"50\" y=\"{}\">{} … {}</text><text x=\"{}\" y=\"24\" fill=\"#4f6bd8\">policy</text><text x=\"{}\" y=\"40\" fill=\"#d84f6b\">{}</text></svg>",
            w + 200.0,
            h + 40.0,
            h + 30.0,
            r.from,
            r.to,
            w + 60.0,
            w + 60.0,
            esc(bench)
        )
    };
    let body =
        chart("Value (start = 1)", line(&pol.values, max, min, "#4f6bd8") + &line(&ben.values, max, min, "#d84f6b"))
            + &chart("Drawdown", line(dp, 0.0, dmin, "#4f6bd8") + &line(db, 0.0, dmin, "#d84f6b"));
    let figures = |b: &Backtested| {
        format!("CAGR {}, volatility {}, max drawdown {}", pct(b.cagr, 1), pct(b.volatility, 1), pct(b.max_drawdown, 1))
    };
    let summary = vec![format!("policy: {}", figures(pol)), format!("benchmark {bench}: {}", figures(ben))];
    html::page("allonet treasury backtest", &summary, &body, &[], &[])
}

/// The treasury against its policy: every held asset (`lines`) against its target, band and cap, the total,
/// spending and stablecoin cover, the breaches, and (with prices) risk, volatilities and correlations.
pub fn report(policy: &Policy, lines: &[AssetLine], r: &Report) -> String {
    let mut t = table(&["asset", "value", "weight", "target ± band", "cap", "status"]);
    for l in lines {
        let (tb, cap) = match &l.rule {
            Some(x) => (format!("{} ± {}", pct(x.target, 1), pct(x.band, 1)), pct(x.cap, 0)),
            None => ("not allowed".into(), "—".into()),
        };
        let status = if l.within_policy { "ok" } else { "BREACH" };
        t.add_row(vec![l.asset.clone(), whole(l.value), pct(l.weight, 2), tb, cap, status.into()]);
    }
    right(&mut t, &[1, 2, 3, 4]);
    let rule = match policy.spending {
        SpendingRule::Fixed { .. } => "fixed",
        SpendingRule::Percent { .. } => "percent of value",
        SpendingRule::Endowment { .. } => "endowment rule",
    };
    let (total, spend, floor) = (whole(r.total), whole(r.monthly_spending), policy.runway_floor_months);
    let mut out = vec![
        t.to_string(),
        format!(
            "total {total} · spending now {spend} a month ({rule}) · stablecoins cover {:.1} months (floor {floor:.0})",
            r.stable_months
        ),
    ];
    if r.violations.is_empty() {
        out.push("policy: no breaches".into());
    } else {
        let mut t = table(&["breached rule", "figures"]);
        for v in &r.violations {
            t.add_row(vec![v.rule.clone(), v.detail.clone()]);
        }
        out.push(t.to_string());
    }
    if let Some(k) = &r.risk {
        out.push(format!(
            "risk over {} days ({} … {}), current weights: daily 95% VaR {} (historical) / {} (normal); CVaR {} / {}; max drawdown {}",
            k.days,
            k.from,
            k.to,
            pct(k.daily_var95_historical, 2),
            pct(k.daily_var95_normal, 2),
            pct(k.daily_cvar95_historical, 2),
            pct(k.daily_cvar95_normal, 2),
            pct(k.max_drawdown, 1)
        ));
        let mut header = vec!["asset".to_string(), "annual vol".to_string()];
        header.extend(k.assets.iter().map(|x| format!("ρ {x}")));
        let mut t = table(&header.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        for (i, asset) in k.assets.iter().enumerate() {
            let mut row = vec![asset.clone(), pct(k.annual_vol[asset], 1)];
            row.extend(k.correlation[i].iter().map(|c| format!("{c:+.2}")));
            t.add_row(row);
        }
        out.push(t.to_string());
        out.push(format!("Ledoit–Wolf shrinkage intensity {:.4}", k.ledoit_wolf_shrinkage));
    }
    text(out)
}

/// The treasury against its policy as a page: an allocation chart against the targets and the breaches.
pub fn report_html(lines: &[AssetLine], r: &Report) -> String {
    let bars: Vec<Bar> = lines
        .iter()
        .map(|l| {
            let target = l.rule.as_ref().map(|x| pct(x.target, 1)).unwrap_or_else(|| "not allowed".into());
            bar(l.asset.clone(), l.value, format!("{} (target {target})", pct(l.weight, 2)))
        })
        .collect();
    let rows: Vec<Vec<String>> = r.violations.iter().map(|v| vec![v.rule.clone(), v.detail.clone()]).collect();
    let (total, spend) = (r.total, r.monthly_spending);
    let summary =
        [format!("total {total:.0} · spending {spend:.0} a month · stablecoins cover {:.1} months", r.stable_months)];
    html::report("allonet treasury report", &summary, "Allocation", &bars, &["breached rule", "figures"], &rows)
}

/// A runway simulation: the value percentiles every 12 months and at the end, then the settings, the
/// `secs` it took and the probabilities of falling below the floor and of running out.
pub fn runway(report: &RunwayReport, secs: f64) -> String {
    let (spec, r) = (&report.spec, &report.runway);
    let mut t = table(&["month", "p5", "p25", "median", "p75", "p95"]);
    let months: BTreeSet<usize> = (11..spec.months).step_by(12).chain([spec.months - 1]).collect();
    for m in months {
        t.add_row([(m + 1).to_string()].into_iter().chain(r.fan[m].iter().map(|v| whole(*v))).collect::<Vec<_>>());
    }
    right(&mut t, &[0, 1, 2, 3, 4, 5]);
    let line = format!(
        "{} paths × {} months in {secs:.2} s · monthly μ {:.4}, σ {:.4} · P(value below {} months of spending) {} · P(depleted) {}{}",
        spec.paths,
        spec.months,
        spec.mu,
        spec.sigma,
        spec.floor_months,
        pct(r.p_below_floor, 2),
        pct(r.p_depleted, 2),
        r.median_depletion_month.map(|m| format!(" · median depletion month {m}")).unwrap_or_default()
    );
    text([t.to_string(), line])
}

/// A runway simulation as a page: the fan chart (5–95% and 25–75% bands, median line) and the settings.
pub fn runway_html(report: &RunwayReport) -> String {
    let (spec, r) = (&report.spec, &report.runway);
    let (w, h) = (800.0, 320.0);
    let max = r.fan.iter().map(|f| f[4]).fold(1.0f64, f64::max);
    let point = |m: usize, q: usize| {
        format!("{:.1},{:.1}", 50.0 + w * (m as f64 + 1.0) / spec.months as f64, 10.0 + h - h * r.fan[m][q] / max)
    };
    let band = |lo: usize, hi: usize, colour: &str| {
        let pts: Vec<String> =
            (0..r.fan.len()).map(|m| point(m, hi)).chain((0..r.fan.len()).rev().map(|m| point(m, lo))).collect();
        format!("<polygon points=\"{}\" fill=\"{colour}\" stroke=\"none\"/>", pts.join(" "))
    };
    let median: Vec<String> = (0..r.fan.len()).map(|m| point(m, 2)).collect();
    let svg = format!(
        "<h2>Treasury value: 5–95% and 25–75% of {} paths, median line</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">{}{}<polyline fill=\"none\" stroke=\"#1c2a6e\" stroke-width=\"2\" points=\"{}\"/><text x=\"50\" y=\"{}\">month 1 … {}</text><text x=\"4\" y=\"20\">{}</text></svg>",
        spec.paths,
        w + 80.0,
        h + 40.0,
        band(0, 4, "#c9d3f5"),
        band(1, 3, "#8fa3ea"),
        median.join(" "),
        h + 30.0,
        spec.months,
        whole(max)
    );
    let (floor, below, depleted) = (spec.floor_months, pct(r.p_below_floor, 2), pct(r.p_depleted, 2));
    let summary = vec![
        format!("start {:.0} · monthly μ {:.4} σ {:.4} · seed {}", spec.value, spec.mu, spec.sigma, spec.seed),
        format!("P(below the {floor}-month floor) {below} · P(depleted) {depleted}"),
    ];
    html::page("allonet treasury runway", &summary, &svg, &[], &[])
}

/// The stress scenarios: value before and after each, the change, and the breaches it causes.
pub fn stress(results: &[StressResult]) -> String {
    let mut t = table(&["scenario", "before", "after", "change", "breaches it causes"]);
    for r in results {
        let breaches = r.violations.iter().map(|v| v.rule.clone()).collect::<Vec<_>>().join("; ");
        let change = format!("{:+.1}%", (r.after / r.before - 1.0) * 100.0);
        let breaches = if r.violations.is_empty() { "none".into() } else { breaches };
        t.add_row(vec![r.scenario.clone(), whole(r.before), whole(r.after), change, breaches]);
    }
    right(&mut t, &[1, 2, 3]);
    text([t.to_string()])
}

/// The stress scenarios as a page: a chart of the loss in each and every breach it causes.
pub fn stress_html(results: &[StressResult]) -> String {
    let bars: Vec<Bar> = results
        .iter()
        .map(|r| {
            let text = format!("−{:.1}% · {} breach(es)", (1.0 - r.after / r.before) * 100.0, r.violations.len());
            bar(r.scenario.clone(), r.before - r.after, text)
        })
        .collect();
    let rows: Vec<Vec<String>> = results
        .iter()
        .flat_map(|r| r.violations.iter().map(move |v| vec![r.scenario.clone(), v.rule.clone(), v.detail.clone()]))
        .collect();
    let header = ["scenario", "breached rule", "figures"];
    html::report("allonet treasury stress", &[], "Loss per scenario", &bars, &header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use allonet_treasury::policy::Violation;
    use allonet_treasury::rebalance::Trade;

    #[test]
    fn stress_and_rebalancing_read_as_tables_and_pages() {
        let breach = Violation { rule: "cap of ETH".into(), detail: "51% held, cap 50%".into() };
        let results = [
            StressResult { scenario: "USDC depeg".into(), before: 1_000_000.0, after: 880_000.0, violations: vec![] },
            StressResult {
                scenario: "ETH −80%".into(),
                before: 1_000_000.0,
                after: 600_000.0,
                violations: vec![breach],
            },
        ];
        let s = stress(&results);
        assert!(s.contains("│ USDC depeg ┆ 1,000,000 ┆ 880,000 ┆ -12.0% ┆ none "), "{s}");
        assert!(s.contains("┆ -40.0% ┆ cap of ETH "), "{s}");
        assert!(s.ends_with("┘\n"));
        let page = stress_html(&results);
        assert!(page.contains("−40.0% · 1 breach(es)") && page.contains("<td>51% held, cap 50%</td>"), "{page}");
        let mut plan = Plan { trades: vec![], after: Default::default(), tracking_error: Some(0.0123) };
        assert_eq!(
            rebalance(&plan),
            "every asset is inside its band: no trades\n\
             cost of not rebalancing: 1.23% annual tracking error against the targets\n"
        );
        plan.trades.push(Trade { asset: "ETH".into(), amount: -250_000.0, tranches: vec![-125_000.0; 2] });
        plan.after.insert("ETH".into(), 0.4);
        assert!(
            rebalance(&plan).contains("│ ETH   ┆ sell 250,000 ┆ 2 × 125,000 ┆       40.00% │"),
            "{}",
            rebalance(&plan)
        );
    }
}
