//! # allonet-treasury
//!
//! A DAO treasury managed like an endowment inside a policy token holders approved: the [`policy::Policy`]
//! and its breaches, risk from price history ([`risk`]), spending rules and runway by Monte Carlo
//! ([`spending`]), and stress scenarios ([`stress`]). Pure functions; files are read by the caller.
pub mod optim;
pub mod policy;
pub mod rebalance;
pub mod risk;
pub mod spending;
pub mod stress;

#[cfg(test)]
mod tests {
    use crate::policy::Policy;
    use std::collections::BTreeMap;

    const POLICY: &str = r#"
        min_stable_share = 0.3
        runway_floor_months = 12
        max_trade_share = 0.05
        protocol_caps = { aave = 0.3 }
        spending = { rule = "fixed", amount = 50000 }
        [assets.USDC]
        tier = 1
        target = 0.4
        band = 0.1
        stable = true
        [assets.ETH]
        tier = 2
        target = 0.4
        band = 0.1
        cap = 0.5
        [assets.aUSDC]
        tier = 2
        target = 0.2
        band = 0.05
        stable = true
        protocol = "aave"
    "#;

    /// ETH far over its cap, stablecoins short, and an asset the policy does not allow.
    fn holdings() -> BTreeMap<String, f64> {
        [("USDC", 100_000.0), ("ETH", 800_000.0), ("aUSDC", 100_000.0), ("DOGE", 5_000.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn violations_list_every_breach_with_figures() {
        let p = Policy::from_toml("p.toml", POLICY).unwrap();
        let h = holdings();
        let v = p.violations(&h, 50_000.0);
        let rules: Vec<&str> = v.iter().map(|x| x.rule.as_str()).collect();
        for want in ["allowed assets", "cap of ETH", "band of ETH", "band of USDC", "minimum stablecoin share"] {
            assert!(rules.contains(&want), "missing {want}: {v:?}");
        }
        // 200,000 in stablecoins cover 4 months of 50,000: under the 12-month floor
        let runway = v.iter().find(|x| x.rule == "runway floor").expect("runway breach");
        assert_eq!(runway.detail, "stablecoins cover 4.0 months of spending, floor 12.0");
        let eth = v.iter().find(|x| x.rule == "cap of ETH").unwrap();
        assert_eq!(eth.detail, "79.60% held, cap 50.00%");
    }

    #[test]
    fn bad_policies_are_refused_clearly() {
        let e = Policy::from_toml("p.toml", &POLICY.replace("target = 0.2", "target = 0.3")).unwrap_err().to_string();
        assert!(e.contains("sum to 1.1"), "{e}");
        let e = Policy::from_toml("p.toml", &POLICY.replace("band = 0.05", "band = 0.25")).unwrap_err().to_string();
        assert!(e.contains("band 0.25 is wider than its target 0.2"), "{e}");
        let e = Policy::from_toml("p.toml", &POLICY.replace("protocol = \"aave\"", "protocol = \"compound\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`compound`"), "{e}");
        let e =
            Policy::from_toml("p.toml", &POLICY.replace("tier = 1", "tier = 1\ncolour = 2")).unwrap_err().to_string();
        assert!(e.starts_with("p.toml: line"), "{e}");
    }

    #[test]
    fn rebalancing_returns_to_target_in_tranches_and_nets_to_zero() {
        let p = Policy::from_toml("p.toml", POLICY).unwrap();
        let h = holdings();
        let plan = crate::rebalance::rebalance(&p, &h, 1_000.0, None);
        let net: f64 = plan.trades.iter().map(|t| t.amount).sum();
        assert!(net.abs() < 1e-6, "buys and sells net to zero: {net}");
        let total: f64 = h.values().sum();
        for t in &plan.trades {
            assert!(t.tranches.iter().all(|x| x.abs() <= 0.05 * total + 1e-6));
            assert!((t.tranches.iter().sum::<f64>() - t.amount).abs() < 1e-6);
        }
        assert!(p
            .violations(&plan.after.iter().map(|(a, w)| (a.clone(), w * total)).collect(), 0.0)
            .iter()
            .all(|v| v.rule == "minimum stablecoin share" || v.rule == "runway floor"));
        assert!(!plan.after.contains_key("DOGE"));
    }
}
