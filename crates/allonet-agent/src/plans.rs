//! An allocation's per-pool payments as payout plans (`allonet payout` and governance proposals take them).

use allonet_allocate::{Allocation, Problem};
use allonet_chain::plan::{Payment, PayoutPlan, PlanToken};

/// Each pool's payments as a payout plan: the pool's chain on every line, the allocation's plan digest as its
/// source. Pools that pay nothing have no plan.
pub fn from_allocation(p: &Problem, a: &Allocation, batch_size: u32) -> Result<Vec<(String, PayoutPlan)>, String> {
    let mut out = Vec::new();
    for (pool, res) in p.pools.iter().zip(&a.pools) {
        if res.payments.is_empty() {
            continue;
        }
        let payments = res
            .payments
            .iter()
            .map(|l| Payment {
                recipient: l.address,
                amount: l.amount,
                chain: pool.chain.clone(),
                label: Some(l.project.clone()),
            })
            .collect();
        let token = PlanToken { symbol: pool.token.symbol.clone(), decimals: pool.token.decimals };
        let plan = PayoutPlan::new(token, Some(a.plan_digest), batch_size, payments)
            .map_err(|e| format!("pool `{}`: its plan is not payable: {e}", pool.id))?;
        out.push((pool.id.clone(), plan));
    }
    Ok(out)
}
