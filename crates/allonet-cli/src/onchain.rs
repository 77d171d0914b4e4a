//! `allonet gov … --onchain`: the deployment's Governor and Timelock, driven from the command line. Typed actions
//! become the allocator calls a proposal executes; votes go direct or as EIP-712 signatures anyone relays.

use std::path::PathBuf;

use allonet_chain::governor::Action;
use allonet_core::Token;
use allonet_engine::connect::DeploymentFile;
use allonet_engine::govern;
use alloy_signer_local::PrivateKeySigner;
use anyhow::Result;

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
    Ok(govern::proposal_actions(&req, &dep.deployment)?)
}

pub fn propose(o: &OnchainArgs, a: &ActionArgs, description: &str, key: &PrivateKeySigner) -> Result<()> {
    let (mut conn, dep) = govern::open_deployment(&o.deployment, o.rpc.clone(), Some(key))?;
    let d = &dep.deployment;
    let actions = actions(a, &dep)?;
    let tx = govern::propose_onchain(&mut conn, d, key.address(), &actions, description)?;
    let token = Token::new(d.asset_symbol.clone(), d.asset_decimals);
    println!("{}", allonet_report::gov::proposal(&tx, key.address(), d.chain_id, &actions, &token));
    Ok(())
}

pub fn vote(
    o: &OnchainArgs,
    id: &str,
    support: u8,
    voter: &PrivateKeySigner,
    relayer: Option<&PrivateKeySigner>,
) -> Result<()> {
    let id = govern::parse_proposal_id(id)?;
    let (mut conn, dep) = govern::open_deployment(&o.deployment, o.rpc.clone(), relayer.or(Some(voter)))?;
    let relayer = relayer.map(|r| r.address());
    let tx = govern::vote_onchain(&mut conn, &dep.deployment, id, support, voter, relayer)?;
    println!("{}", allonet_report::gov::vote(&tx, voter.address(), relayer));
    Ok(())
}

/// Queue, execute, or (the guardian) cancel a queued proposal's timelock operation.
pub fn step(o: &OnchainArgs, id: &str, step: govern::Step, sender: &PrivateKeySigner) -> Result<()> {
    let id = govern::parse_proposal_id(id)?;
    let (mut conn, dep) = govern::open_deployment(&o.deployment, o.rpc.clone(), Some(sender))?;
    let tx = govern::step_onchain(&mut conn, &dep.deployment, id, step, sender.address())?;
    println!("{}", allonet_report::gov::step(&format!("{step:?}").to_lowercase(), &tx));
    Ok(())
}

pub fn status(o: &OnchainArgs, json: bool) -> Result<()> {
    let (mut conn, dep) = govern::open_deployment(&o.deployment, o.rpc.clone(), None)?;
    let d = &dep.deployment;
    let rows = allonet_chain::governor::list(conn.chain(), d.governor, d.from_block)?;
    if json {
        let v: Vec<_> = rows.iter().map(|(desc, s)| serde_json::json!({"description": desc, "status": s})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let block = conn.chain().block_number()?;
    println!("{}", allonet_report::gov::onchain_status(&rows, d.governor, d.chain_id, block));
    Ok(())
}
