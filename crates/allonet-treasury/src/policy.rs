//! The treasury policy token holders approve, validated with clear errors, and its breaches.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One allowed asset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetRule {
    /// Risk tier (1 = safest).
    pub tier: u8,
    /// Target weight in [0, 1].
    pub target: f64,
    /// Rebalancing band: the weight may drift within target ± band.
    pub band: f64,
    /// Most of the treasury this asset may be (default 1).
    #[serde(default = "one")]
    pub cap: f64,
    /// Counts towards the stablecoin minimum.
    #[serde(default)]
    pub stable: bool,
    /// Protocol or issuer (for per-protocol caps).
    #[serde(default)]
    pub protocol: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// The spending rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum SpendingRule {
    /// A fixed amount per period (in the treasury's unit of account).
    Fixed {
        /// per period
        amount: f64,
    },
    /// A share of the treasury's value each period.
    Percent {
        /// share per period
        rate: f64,
    },
    /// Yale's endowment rule: S_t = w·S_{t−1}·(1 + π) + (1 − w)·r·V_t.
    Endowment {
        /// smoothing weight w
        smoothing: f64,
        /// long-run spending rate r
        rate: f64,
        /// inflation π
        inflation: f64,
        /// S_0
        initial: f64,
    },
}

/// A treasury policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Allowed assets.
    pub assets: BTreeMap<String, AssetRule>,
    /// Most of the treasury one protocol may hold, by protocol.
    #[serde(default)]
    pub protocol_caps: BTreeMap<String, f64>,
    /// Minimum share in stablecoins.
    #[serde(default)]
    pub min_stable_share: f64,
    /// Months of spending the stablecoins must cover.
    #[serde(default)]
    pub runway_floor_months: f64,
    /// Spending per month.
    pub spending: SpendingRule,
    /// Largest single trade, as a share of the treasury.
    #[serde(default = "one")]
    pub max_trade_share: f64,
    /// Kill switch: when true, nothing may be traded or paid.
    #[serde(default)]
    pub paused: bool,
}

/// Why a policy is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PolicyError {
    /// file
    pub file: String,
    /// what is wrong
    pub message: String,
}

/// One breach of the policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule broken.
    pub rule: String,
    /// What is observed and what is allowed.
    pub detail: String,
}

impl Policy {
    /// Parses and validates a TOML policy.
    pub fn from_toml(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let err = |message: String| PolicyError { file: file.into(), message };
        let p: Policy = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1)).unwrap_or(0);
            err(format!("line {line}: {}", e.message()))
        })?;
        p.validate().map_err(err)?;
        Ok(p)
    }

    /// Checks the policy's own consistency.
    pub fn validate(&self) -> Result<(), String> {
        if self.assets.is_empty() {
            return Err("the policy allows no assets".into());
        }
        let in01 = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        for (name, a) in &self.assets {
            if !in01(a.target) || !in01(a.band) || !in01(a.cap) {
                return Err(format!("asset `{name}`: target, band and cap must be within 0..1"));
            }
            if a.band > a.target {
                return Err(format!("asset `{name}`: band {} is wider than its target {}", a.band, a.target));
            }
            if a.target > a.cap {
                return Err(format!("asset `{name}`: target {} is above its cap {}", a.target, a.cap));
            }
            if let Some(p) = &a.protocol {
                if !self.protocol_caps.contains_key(p) {
                    return Err(format!("asset `{name}`: protocol `{p}` has no entry in protocol_caps"));
                }
            }
        }
        let total: f64 = self.assets.values().map(|a| a.target).sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(format!("target weights sum to {total}, not 1"));
        }
        if !in01(self.min_stable_share) || !in01(self.max_trade_share) {
            return Err("min_stable_share and max_trade_share must be within 0..1".into());
        }
        if !(self.runway_floor_months.is_finite() && self.runway_floor_months >= 0.0) {
            return Err("runway_floor_months must be zero or more".into());
        }
        match &self.spending {
            SpendingRule::Fixed { amount } if !(amount.is_finite() && *amount >= 0.0) => {
                Err("spending amount must be zero or more".into())
            }
            SpendingRule::Percent { rate } if !in01(*rate) => Err("spending rate must be within 0..1".into()),
            SpendingRule::Endowment { smoothing, rate, inflation, initial }
                if !(in01(*smoothing)
                    && in01(*rate)
                    && inflation.is_finite()
                    && initial.is_finite()
                    && *initial >= 0.0) =>
            {
                Err("endowment rule: smoothing and rate within 0..1, inflation finite, initial spending zero or more"
                    .into())
            }
            _ => Ok(()),
        }
    }

    /// Every breach of the policy by holdings valued in the unit of account (asset → value), given the
    /// monthly spending now due.
    pub fn violations(&self, holdings: &BTreeMap<String, f64>, monthly_spending: f64) -> Vec<Violation> {
        let mut v = Vec::new();
        let total: f64 = holdings.values().sum();
        if self.paused {
            v.push(Violation {
                rule: "kill switch".into(),
                detail: "the policy is paused: nothing may be traded or paid".into(),
            });
        }
        if total <= 0.0 {
            v.push(Violation { rule: "treasury".into(), detail: "the treasury holds nothing".into() });
            return v;
        }
        let pct = |x: f64| format!("{:.2}%", x * 100.0);
        for (name, value) in holdings {
            let w = value / total;
            match self.assets.get(name) {
                None if *value > 0.0 => v.push(Violation {
                    rule: "allowed assets".into(),
                    detail: format!("`{name}` ({}) is not an allowed asset", pct(w)),
                }),
                None => {}
                Some(a) => {
                    if w > a.cap + 1e-12 {
                        v.push(Violation {
                            rule: format!("cap of {name}"),
                            detail: format!("{} held, cap {}", pct(w), pct(a.cap)),
                        });
                    }
                    if (w - a.target).abs() > a.band + 1e-12 {
                        v.push(Violation {
                            rule: format!("band of {name}"),
                            detail: format!("{} held, target {} ± {}", pct(w), pct(a.target), pct(a.band)),
                        });
                    }
                }
            }
        }
        for (name, a) in &self.assets {
            if !holdings.contains_key(name) && a.target - a.band > 1e-12 {
                v.push(Violation {
                    rule: format!("band of {name}"),
                    detail: format!("0% held, target {} ± {}", pct(a.target), pct(a.band)),
                });
            }
        }
        let mut per_protocol: BTreeMap<&str, f64> = BTreeMap::new();
        for (name, value) in holdings {
            if let Some(p) = self.assets.get(name).and_then(|a| a.protocol.as_deref()) {
                *per_protocol.entry(p).or_insert(0.0) += value / total;
            }
        }
        for (p, w) in per_protocol {
            let cap = self.protocol_caps[p];
            if w > cap + 1e-12 {
                v.push(Violation {
                    rule: format!("protocol cap of {p}"),
                    detail: format!("{} held, cap {}", pct(w), pct(cap)),
                });
            }
        }
        let stable: f64 =
            holdings.iter().filter(|(n, _)| self.assets.get(*n).is_some_and(|a| a.stable)).map(|(_, v)| v).sum();
        if stable / total + 1e-12 < self.min_stable_share {
            v.push(Violation {
                rule: "minimum stablecoin share".into(),
                detail: format!("{} in stablecoins, minimum {}", pct(stable / total), pct(self.min_stable_share)),
            });
        }
        if monthly_spending > 0.0 {
            let months = stable / monthly_spending;
            if months + 1e-12 < self.runway_floor_months {
                v.push(Violation {
                    rule: "runway floor".into(),
                    detail: format!(
                        "stablecoins cover {months:.1} months of spending, floor {:.1}",
                        self.runway_floor_months
                    ),
                });
            }
        }
        v
    }
}
