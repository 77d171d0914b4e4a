//! `allonet gov … --onchain`: the deployment's Governor and Timelock, driven from the command line. Typed actions
//! become the allocator calls a proposal executes; votes go direct or as EIP-712 signatures anyone relays.

use std::path::PathBuf;

use allonet_chain::governor::{self, Action, Proposal};
use allonet_core::Token;
use allonet_engine::connect::{connect, ConnectSpec, Connection, DeploymentFile};
use alloy_primitives::U256;
use alloy_signer_local::PrivateKeySigner;
use anyhow::{anyhow, bail, Result};

use crate::output::{right, table};

/// Where the on-chain governance lives.
#[derive(clap::Args, Clone, Debug)]
pub struct OnchainArgs {
    /// Act on the deployment's Governor + Timelock on chain instead of the SQLite database.
    #[arg(long)]
    pub onchain: bool,
    /// With --onchain: the deployment file.
    #[arg(long, value_name = "FILE", default_value = "deployment.json")]
    pub deployment: PathBuf,
    /// With --onchain: a JSON-RPC endpoint instead of the one the deployment file records.
    #[arg(long, value_name = "URL")]
    pub rpc: Option<String>,
}

/// Typed actions of an on-chain proposal (each a call on the allocator).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ActionArgs {
    /// Approve this payout plan's exact payments on the deployment's chain (its Merkle root, total, batches).
    #[arg(long, value_name = "PLAN")]
    pub approve_plan: Option<PathBuf>,
    /// With --approve-plan or --registry: the plan's chain name (default: its payments without a chain).
    #[arg(long)]
    pub chain: Option<String>,
    /// The agent's standing caps, whole tokens: per epoch and per recipient, e.g. `10000,2500`.
    #[arg(long, value_name = "EPOCH,RECIPIENT")]
    pub caps: Option<String>,
    /// Add every recipient of this plan (or of a CSV with an `address` column) to the registry queued plans may pay.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// Seconds a queued plan waits before it may pay (the veto window).
    #[arg(long, value_name = "SECONDS")]
    pub veto_delay: Option<u64>,
    /// Replace the agent.
    #[arg(long, value_name = "ADDRESS")]
    pub set_agent: Option<String>,
    /// Replace the guardian.
    #[arg(long, value_name = "ADDRESS")]
    pub set_guardian: Option<String>,
    /// Lift the guardian's pause.
    #[arg(long)]
    pub unpause: bool,
    /// Cancel an approved or queued plan (its id on the allocator).
    #[arg(long, value_name = "PLAN_ID")]
    pub cancel_plan: Option<String>,
    /// The agent's standing caps and veto delay from the DAO's `allonet.toml` (what a first proposal sets).
    #[arg(long, value_name = "ALLONET_TOML", conflicts_with_all = ["caps", "veto_delay"])]
    pub standing: Option<PathBuf>,
}

/// Connect to the deployment's chain with `key` as the sender (RPC); on the embedded EVM the key's address is
/// funded if it is not already (rehearsals have no signatures, only accounts).
pub fn open(a: &OnchainArgs, key: Option<&PrivateKeySigner>) -> Result<(Connection, DeploymentFile)> {
    let dep = DeploymentFile::load(&a.deployment)?;
    let spec =
        ConnectSpec { rpc: a.rpc.clone(), key_env: "ALLONET_KEY".into(), key: key.cloned(), ..Default::default() };
    let (mut conn, _) = connect(&spec, Some(&dep.endpoint))?;
    if let (Connection::Embedded(e, _), Some(k)) = (&mut conn, key) {
        if !allonet_chain::Chain::signers(e).contains(&k.address()) {
            e.fund(k.address(), U256::from(10u64).pow(U256::from(21)));
        }
    }
    if conn.chain().chain_id() != dep.deployment.chain_id {
        bail!(
            "the endpoint is chain {} but the deployment is on chain {}",
            conn.chain().chain_id(),
            dep.deployment.chain_id
        );
    }
    Ok((conn, dep))
}

/// The actions the flags ask for, in a fixed order.
pub fn actions(a: &ActionArgs, dep: &DeploymentFile) -> Result<Vec<Action>> {
    let req = allonet_engine::govern::ActionRequest {
        approve_plan: a.approve_plan.clone(),
        chain: a.chain.clone(),
        standing: a.standing.clone(),
        caps: a.caps.clone(),
        registry: a.registry.clone(),
        veto_delay: a.veto_delay,
        set_agent: a.set_agent.clone(),
        set_guardian: a.set_guardian.clone(),
        unpause: a.unpause,
        cancel_plan: a.cancel_plan.clone(),
    };
    Ok(allonet_engine::govern::proposal_actions(&req, &dep.deployment)?)
}

pub fn propose(o: &OnchainArgs, a: &ActionArgs, description: &str, key: &PrivateKeySigner) -> Result<()> {
    let (mut conn, dep) = open(o, Some(key))?;
    let d = &dep.deployment;
    let actions = actions(a, &dep)?;
    let p = Proposal::new(d.allocator, &actions, description);
    let (id, r) = governor::propose(conn.chain(), d.governor, key.address(), &p)?;
    conn.save()?;
    let s = governor::status(conn.chain(), d.governor, id)?;
    println!("proposal {id}\n  by {} on chain {} · gas {} · {}", key.address(), d.chain_id, r.gas_used, s.state);
    let token = Token::new(d.asset_symbol.clone(), d.asset_decimals);
    let mut t = table(&["#", "action on the allocator", "calldata"]);
    for (i, x) in actions.iter().enumerate() {
        let data = x.calldata().to_string();
        t.add_row(vec![i.to_string(), describe(x, &token), crate::chain::short(&data)]);
    }
    println!("{t}");
    println!(
        "  voting opens after block {} and closes at block {}; then `allonet gov queue --onchain --proposal {id}`",
        s.snapshot, s.deadline
    );
    Ok(())
}

pub fn vote(
    o: &OnchainArgs,
    id: &str,
    support: u8,
    voter: &PrivateKeySigner,
    relayer: Option<&PrivateKeySigner>,
) -> Result<()> {
    let id = parse_id(id)?;
    let (mut conn, dep) = open(o, relayer.or(Some(voter)))?;
    let g = dep.deployment.governor;
    let r = match relayer {
        None => governor::cast_vote(conn.chain(), g, voter.address(), id, support)?,
        Some(rel) => {
            let sig = governor::sign_ballot(conn.chain(), g, voter, id, support)?;
            governor::cast_vote_by_sig(conn.chain(), g, rel.address(), id, support, voter.address(), sig)?
        }
    };
    conn.save()?;
    let s = governor::status(conn.chain(), g, id)?;
    println!(
        "vote by {}{} · gas {} · for {} · against {} · abstain {} ALLO · {}",
        voter.address(),
        relayer.map(|r| format!(" (EIP-712 signature relayed by {})", r.address())).unwrap_or_default(),
        r.gas_used,
        allo(&s.votes_for),
        allo(&s.votes_against),
        allo(&s.votes_abstain),
        s.state
    );
    Ok(())
}

/// Queue, execute, or (the guardian) cancel a queued proposal's timelock operation.
pub fn step(o: &OnchainArgs, id: &str, what: &str, sender: &PrivateKeySigner) -> Result<()> {
    let id = parse_id(id)?;
    let (mut conn, dep) = open(o, Some(sender))?;
    let d = &dep.deployment;
    let p = governor::find_proposal(conn.chain(), d.governor, id, d.from_block)?;
    let r = match what {
        "queue" => governor::queue(conn.chain(), d.governor, sender.address(), &p),
        "execute" => governor::execute(conn.chain(), d.governor, sender.address(), &p),
        _ => governor::cancel_queued(conn.chain(), d.governor, d.timelock, sender.address(), &p),
    }
    .map_err(|e| anyhow!("{what} proposal {id}: {e}"))?;
    conn.save()?;
    let s = governor::status(conn.chain(), d.governor, id)?;
    println!(
        "{what}: proposal {id} · gas {} · now {}{}",
        r.gas_used,
        s.state,
        if s.eta > 0 && s.state == "Queued" { format!(" (executable from {})", s.eta) } else { String::new() }
    );
    Ok(())
}

pub fn status(o: &OnchainArgs, json: bool) -> Result<()> {
    let (mut conn, dep) = open(o, None)?;
    let d = &dep.deployment;
    let c = conn.chain();
    let rows = governor::list(c, d.governor, d.from_block)?;
    if json {
        let v: Vec<_> = rows.iter().map(|(desc, s)| serde_json::json!({"description": desc, "status": s})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut t = table(&["proposal", "description", "state", "for (ALLO)", "against", "abstain", "quorum"]);
    for (desc, s) in &rows {
        t.add_row(vec![
            crate::chain::short(&s.id),
            crate::round::truncate(desc, 40),
            s.state.to_string(),
            allo(&s.votes_for),
            allo(&s.votes_against),
            allo(&s.votes_abstain),
            s.quorum.as_deref().map(allo).unwrap_or_else(|| "-".into()),
        ]);
    }
    right(&mut t, &[3, 4, 5, 6]);
    println!(
        "{} proposals on governor {} (chain {}, block {})\n{t}",
        rows.len(),
        d.governor,
        d.chain_id,
        c.block_number()?
    );
    Ok(())
}

/// An action for people, amounts in whole tokens.
fn describe(a: &Action, token: &Token) -> String {
    let amt = |u: &U256| {
        format!("{} {}", crate::output::group_thousands(&token.format(allonet_core::TokenAmount(*u))), token.symbol)
    };
    match a {
        Action::ApprovePlan { root, total, batches } => {
            format!("approve plan {}: {} in {batches} batches", crate::chain::short(&root.to_string()), amt(total))
        }
        Action::SetCaps { epoch_cap, recipient_cap } => {
            format!("agent caps: {} per epoch, {} per recipient", amt(epoch_cap), amt(recipient_cap))
        }
        other => other.describe(),
    }
}

/// Votes (ALLO base units, 18 decimals) in whole ALLO.
fn allo(v: &str) -> String {
    let units = v.parse::<U256>().unwrap_or_default();
    crate::output::group_thousands(&Token::new("ALLO", 18).format(allonet_core::TokenAmount(units)))
}

fn parse_id(s: &str) -> Result<U256> {
    s.parse::<U256>().map_err(|_| anyhow!("--proposal {s:?} is not a proposal id (decimal or 0x hex)"))
}
