//! `allonet config check`: a DAO's `allonet.toml`, checked whole and shown resolved.

use std::path::PathBuf;

use allonet_engine::config::DaoConfig;
use anyhow::Result;

use allonet_report::{group_thousands, table};

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The DAO's configuration.
    #[arg(default_value = "allonet.toml")]
    pub file: PathBuf,
    /// Print it as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run_check(a: &CheckArgs) -> Result<()> {
    let c = DaoConfig::load(&a.file)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    let amt = |t: allonet_core::TokenAmount| format!("{} {}", group_thousands(&c.token.format(t)), c.token.symbol);
    let mut t = table(&["field", "value"]);
    for (k, v) in [
        ("dao", c.name.clone()),
        ("governance", format!("{:?}", c.governance)),
        ("database", c.database.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into())),
        ("token", format!("{} ({} decimals)", c.token.symbol, c.token.decimals)),
        ("agent", c.agent.address.to_string()),
        ("agent may queue per epoch", amt(c.agent.epoch_cap)),
        ("per recipient per epoch", amt(c.agent.recipient_cap)),
        ("veto delay", format!("{} s", c.agent.veto_delay)),
        ("guardian", c.guardian.to_string()),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    for p in &c.pools {
        t.add_row(vec![format!("pool {}", p.id), format!("{} on chain {}", amt(p.budget), p.chain)]);
    }
    for (name, ch) in &c.chains {
        t.add_row(vec![format!("chain {name}"), ch.deployment.display().to_string()]);
    }
    println!("{t}\n{} is valid", a.file.display());
    Ok(())
}
