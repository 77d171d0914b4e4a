//! The funding agent: each epoch is a pipeline of stages with checkpoints, from the DAO's data to a plan and a
//! report anyone can recompute.
//!
//! ```text
//! observe → score → recommend → allocate → treasury → propose → await → execute → reconcile → report
//! ```
//! As in reth's staged sync (each stage records its progress in the database and resumes from it), every stage
//! of an epoch writes its output to the agent's checkpoint database ([`checkpoint`], SQLite, one transaction per
//! stage) before the next one starts. A stage is a function of the outputs before it: observe copies every input
//! into the checkpoint (so a resume uses the bytes observed, even if the files changed since), and the rest read
//! only those. A crash or SIGKILL anywhere re-runs at most the stage that was running, with the same result.
//!
//! What each stage does ([`stages`]):
//! - **observe**: every input file (the allocation instance with the recipients, the votes, the projects'
//!   features) with its digest, and the governance state: DAO id, log head, kill switch, active model;
//! - **score**: the quadratic tally of the votes (`allonet tally`);
//! - **recommend**: the governance-activated model's recommendation for every project (`allonet recommend`);
//!   a model file that is not the activated version is refused;
//! - **allocate**: the cross-DAO optimiser ([`allonet_allocate`]) with the two results as its signals, exact
//!   per-pool payout plans; recipients come only from the instance's `address` fields (free text never becomes
//!   an address);
//! - **treasury** ([`treasury`]): the plan against the treasury's policy; a payout may add no breach, and where
//!   the whole plan would, the drawing pools' budgets are scaled down and the allocation solved again;
//! - **propose**, **await**, **execute**, **reconcile**: governed by the mode and the mix of signals that
//!   governance set (`Action::SetAgentPolicy`; none set: `advise`, with the instance's own mix). In `advise`
//!   nothing is filed or paid. In `propose` ([`decide`]) the plans go to the DAO as one proposal signed by the
//!   agent's key, the epoch waits ([`AgentError::Waiting`]) until the members decide, then pays what passed on
//!   each pool's chain after the veto window ([`AgentError::VetoWindow`]) and reconciles. In `autonomous` a plan
//!   within the allocator's standing caps is queued by the agent without a proposal and paid after the veto
//!   window unless the guardian cancelled it; anything above the caps goes to the members as in `propose`;
//! - **report**: JSON and Markdown, digested; the digest goes into the DAO's audit log (once).
//!
//! The kill switch is governance's: while the DAO's registry is paused, no stage runs ([`AgentError::Paused`]).
//! The guardian's watch ([`guard`]) cancels, inside the veto window, any plan queued on the DAO's allocators that
//! governance does not allow: on chain the agent key may queue anything within the standing caps.

pub mod checkpoint;
mod decide;
pub mod example;
pub mod guard;
pub mod plans;
pub mod rebalance;
pub mod report;
pub mod setup;
pub mod source;
pub mod stages;
pub mod treasury;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use allonet_core::Digest;
use serde::Serialize;

pub use checkpoint::Checkpoints;
pub use guard::{Watch, Watched};
pub use report::EpochReport;
pub use setup::Setup;
pub use stages::Stage;

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The setup (agent.toml or a file it names) is wrong.
    #[error("{0}")]
    Setup(String),
    /// The checkpoint database failed.
    #[error("checkpoints: {0}")]
    Checkpoint(String),
    /// A stage failed; nothing of it was recorded.
    #[error("epoch {epoch}, stage {stage}: {message}")]
    Stage { epoch: u64, stage: &'static str, message: String },
    /// The epoch waits for the DAO's decision on the agent's proposal (propose mode); run again later.
    #[error(
        "epoch {epoch} waits for the DAO's decision on proposal {proposal} ({state}): run again once it is decided"
    )]
    Waiting { epoch: u64, proposal: alloy_primitives::B256, state: String },
    /// A queued plan is still inside its veto window on chain (the guardian or the members may cancel it until
    /// then); run again once the chain's time passes it.
    #[error("epoch {epoch}: pool {pool}'s plan is queued and pays from {payable_at} (chain time {chain_time}): the veto window is open; run again after it")]
    VetoWindow { epoch: u64, pool: String, payable_at: u64, chain_time: u64 },
    /// The kill switch is on: governance paused the DAO.
    #[error("the DAO is paused (governance's kill switch): the agent runs no stage until a proposal unpauses it")]
    Paused,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub epoch: u64,
    pub stage: Stage,
    /// Digest of the stage's output.
    pub digest: Digest,
    /// Whether this step finished the epoch.
    pub epoch_done: bool,
}

/// One epoch's progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochStatus {
    pub epoch: u64,
    /// The stages done, in order.
    pub done: Vec<Stage>,
    /// The next stage (`None` when the epoch is finished).
    pub next: Option<Stage>,
    /// The report's digest, once written.
    pub report: Option<Digest>,
    /// Per pool, once allocated: what the plan pays and what was paid (base units).
    pub pools: Vec<PoolProgress>,
}

/// One pool's part of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolProgress {
    pub pool: String,
    pub chain: Option<String>,
    pub token: String,
    /// Base units the plan pays.
    pub planned: String,
    /// Base units paid so far.
    pub paid: String,
}

/// One payment a dry run shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryPayment {
    pub project: String,
    pub recipient: allonet_core::Address,
    /// Base units.
    pub amount: String,
}

/// One pool's part of a dry run: what its allocator holds, what the plan moves, the call that queues it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryPool {
    pub pool: String,
    pub chain: Option<String>,
    pub token: String,
    pub plan: Digest,
    /// Base units the plan pays.
    pub total: String,
    /// The allocator and its balance before and after paying (when the pool has a `[payouts]` entry).
    pub allocator: Option<alloy_primitives::Address>,
    pub balance_before: Option<String>,
    pub balance_after: Option<String>,
    /// `queuePlan(root, total, batches)` calldata for the allocator (what the agent sends once approved).
    pub queue_calldata: String,
    /// The copy of the chain the dry run read: `embedded copy`, or `anvil fork of URL at block N`.
    pub chain_copy: Option<String>,
    pub payments: Vec<DryPayment>,
}

/// What the open (or next) epoch would pay, worked out on a copy of the agent's folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRun {
    pub epoch: u64,
    /// The propose stage as it ran on the copy: the mode, each plan's route (standing caps or proposal), and the
    /// proposal that would be filed (its id, description and plans).
    pub propose: serde_json::Value,
    pub pools: Vec<DryPool>,
    /// The treasury's rebalance as it would be proposed: trades, and each swap with its amount in, expected and
    /// least output (null when the policy calls for none).
    pub rebalance: serde_json::Value,
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The dry run: the epoch's stages up to the plan run on a copy of `dir` (DAO, chains, checkpoints), and each
/// pool's payments, allocator balance before and after, and queue calldata are read from it. Nothing in `dir`
/// changes: no checkpoint, no act in the DAO's log, no transaction or nonce on any chain.
pub fn dry_run(dir: &Path) -> Result<DryRun, AgentError> {
    // Everything the epoch writes must be inside the folder, so that the copy holds it all; a chain reached over
    // JSON-RPC is replaced by an anvil fork of it.
    let setup = Setup::load(dir)?;
    let root = dir.canonicalize().map_err(|e| AgentError::Setup(format!("{}: {e}", dir.display())))?;
    let mut paths = vec![setup.governance.clone()];
    // Each chain reached over JSON-RPC (a pool's, the treasury's AMM), with its chain id.
    let mut rpc_chains: Vec<(String, u64)> = Vec::new();
    for t in setup.payouts.values() {
        paths.push(t.deployment.clone());
        paths.extend(t.state.clone());
        if let Some(url) = &t.rpc {
            let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment)
                .map_err(|e| AgentError::Setup(e.to_string()))?;
            rpc_chains.push((url.clone(), dep.deployment.chain_id));
        }
    }
    if let Some(sw) = setup.treasury.as_ref().and_then(|t| t.swaps.as_ref()) {
        paths.push(dir.join(&sw.amm));
        paths.extend(sw.state.as_ref().map(|s| dir.join(s)));
        if let Some(url) = &sw.rpc {
            let f = rebalance::AmmFile::load(&dir.join(&sw.amm)).map_err(AgentError::Setup)?;
            rpc_chains.push((url.clone(), f.chain_id));
        }
    }
    let mut forks = BTreeMap::new();
    for (url, chain_id) in rpc_chains {
        if let std::collections::btree_map::Entry::Vacant(slot) = forks.entry(url) {
            let url = slot.key();
            let bin = allonet_chain::anvil::anvil_binary()
                .map_err(|e| AgentError::Setup(e.to_string()))?
                .ok_or_else(|| AgentError::Setup(format!("a dry run forks {url} with anvil, and anvil needs npm")))?;
            let fork = allonet_chain::anvil::Anvil::fork(&bin, url, chain_id)
                .map_err(|e| AgentError::Setup(format!("forking {url} with anvil: {e}")))?;
            slot.insert(fork);
        }
    }
    for p in paths {
        let inside = p.canonicalize().map(|c| c.starts_with(&root)).unwrap_or(false);
        if !inside {
            return Err(AgentError::Setup(format!(
                "{} is outside {}: a dry run works on a copy of the folder and would touch it",
                p.display(),
                dir.display()
            )));
        }
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let scratch = std::env::temp_dir().join(format!("allonet-agent-dry-run-{}-{nanos}", std::process::id()));
    // The copy holds the folder's keys: readable by its owner only, and removed however the run ends (short of a
    // kill).
    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let scratch = Scratch(scratch);
    std::fs::create_dir_all(&scratch.0).map_err(|e| AgentError::Setup(format!("{}: {e}", scratch.0.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AgentError::Setup(format!("{}: {e}", scratch.0.display())))?;
    }
    copy_dir(dir, &scratch.0)
        .map_err(|e| AgentError::Setup(format!("copying {} for a dry run: {e}", dir.display())))?;
    let forks: BTreeMap<String, String> = forks.iter().map(|(u, f)| (u.clone(), f.url())).collect();
    dry_run_in(&scratch.0, &forks)
}

/// The dry run on the copy at `copy`, each JSON-RPC endpoint replaced by its fork (`forks`: URL → fork's URL).
fn dry_run_in(copy: &Path, forks: &BTreeMap<String, String>) -> Result<DryRun, AgentError> {
    use alloy_sol_types::SolCall;
    let mut ag = Agent::open(copy)?;
    for t in ag.setup.payouts.values_mut() {
        if let Some(url) = &t.rpc {
            t.rpc = Some(forks.get(url).cloned().ok_or_else(|| AgentError::Setup(format!("{url} was not forked")))?);
        }
    }
    if let Some(sw) = ag.setup.treasury.as_mut().and_then(|t| t.swaps.as_mut()) {
        if let Some(url) = &sw.rpc {
            sw.rpc = Some(forks.get(url).cloned().ok_or_else(|| AgentError::Setup(format!("{url} was not forked")))?);
        }
    }
    // Up to the propose stage: the plan as it would be filed (scaled down if the treasury needs it), and the
    // proposal (filed in the copy's DAO only).
    let epoch = loop {
        let open = ag.ck.open_epoch()?;
        if let Some(e) = open {
            if ag.ck.output(e, Stage::Propose)?.is_some() {
                break e;
            }
        }
        ag.step()?;
    };
    let outputs = ag.ck.outputs(epoch)?;
    let allocated = stages::final_plans(&outputs).clone();
    let mut pools = Vec::new();
    for p in allocated["plans"].as_array().into_iter().flatten() {
        let pool = p["pool"].as_str().unwrap_or_default().to_string();
        let plan: allonet_chain::plan::PayoutPlan = serde_json::from_value(p["plan"].clone())
            .map_err(|e| AgentError::Checkpoint(format!("pool {pool}'s plan: {e}")))?;
        let chain = plan.payments.first().and_then(|x| x.chain.clone());
        let c = allonet_engine::govern::commitment(&plan, chain.as_deref())
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        let calldata = allonet_chain::payout::queue_call(&c).abi_encode();
        let (mut allocator, mut before, mut after, mut copy_of) = (None, None, None, None);
        if let Some(t) = ag.setup.payouts.get(&pool) {
            let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment)
                .map_err(|e| AgentError::Setup(e.to_string()))?;
            let spec = t.connect_spec();
            let (mut conn, _) = allonet_engine::connect::connect(&spec, Some(&dep.endpoint))
                .map_err(|e| AgentError::Setup(e.to_string()))?;
            let st = allonet_engine::pay::allocator_status(&mut conn, &dep.deployment, None)
                .map_err(|e| AgentError::Setup(e.to_string()))?;
            allocator = Some(dep.deployment.allocator);
            copy_of = Some(match &t.rpc {
                None => "embedded copy".to_string(),
                Some(fork) => {
                    let block = conn.chain().block_number().map_err(|e| AgentError::Setup(e.to_string()))?;
                    let url = forks.iter().find(|(_, f)| *f == fork).map(|(u, _)| u.as_str()).unwrap_or_default();
                    format!("anvil fork of {url} at block {block}")
                }
            });
            before = Some(st.balance.to_string());
            after = Some(st.balance.saturating_sub(plan.total.units()).to_string());
        }
        pools.push(DryPool {
            pool,
            chain,
            token: plan.token.symbol.clone(),
            plan: plan.digest,
            total: plan.total.units().to_string(),
            allocator,
            balance_before: before,
            balance_after: after,
            queue_calldata: format!("0x{}", alloy_primitives::hex::encode(calldata)),
            chain_copy: copy_of,
            payments: plan
                .payments
                .iter()
                .map(|x| DryPayment {
                    project: x.label.clone().unwrap_or_default(),
                    recipient: x.recipient,
                    amount: x.amount.units().to_string(),
                })
                .collect(),
        });
    }
    let propose = outputs.get(&Stage::Propose).cloned().unwrap_or_default();
    let rebalance = outputs.get(&Stage::Treasury).map(|t| t["rebalance"].clone()).unwrap_or_default();
    Ok(DryRun { epoch, propose, pools, rebalance })
}

/// The agent in a folder: its setup (`agent.toml`) and its checkpoints (`agent.db`).
pub struct Agent {
    pub dir: PathBuf,
    pub setup: Setup,
    ck: Checkpoints,
}

impl Agent {
    /// Opens the agent in `dir` (reading `agent.toml`, opening or creating `agent.db`).
    pub fn open(dir: &Path) -> Result<Agent, AgentError> {
        let setup = Setup::load(dir)?;
        let ck = Checkpoints::open(&dir.join("agent.db"))?;
        Ok(Agent { dir: dir.to_path_buf(), setup, ck })
    }

    /// Every epoch's progress, oldest first.
    pub fn status(&self) -> Result<Vec<EpochStatus>, AgentError> {
        let mut out = Vec::new();
        for epoch in self.ck.epochs()? {
            let outputs = self.ck.outputs(epoch)?;
            let done: Vec<Stage> = outputs.keys().copied().collect();
            let mut pools = Vec::new();
            let finals = outputs.contains_key(&Stage::Allocate).then(|| stages::final_plans(&outputs));
            for p in finals.and_then(|v| v["plans"].as_array()).into_iter().flatten() {
                let pool = p["pool"].as_str().unwrap_or_default().to_string();
                let plan = &p["plan"];
                let paid = outputs
                    .get(&Stage::Reconcile)
                    .and_then(|r| r["plans"].as_array())
                    .and_then(|l| l.iter().find(|x| x["pool"] == pool.as_str()))
                    .and_then(|x| x["paid"].as_str())
                    .unwrap_or("0")
                    .to_string();
                pools.push(PoolProgress {
                    chain: plan["payments"][0]["chain"].as_str().map(String::from),
                    token: plan["token"]["symbol"].as_str().unwrap_or_default().to_string(),
                    planned: plan["total"].as_str().unwrap_or_default().to_string(),
                    paid,
                    pool,
                });
            }
            let next = Stage::ALL.iter().copied().find(|s| !done.contains(s));
            let report = match self.ck.output(epoch, Stage::Report)? {
                Some(v) => Some(report::digest_of(&v)?),
                None => None,
            };
            out.push(EpochStatus { epoch, done, next, report, pools });
        }
        Ok(out)
    }

    /// Runs the next stage: of the open epoch, or of a new one if every epoch is finished.
    pub fn step(&mut self) -> Result<Step, AgentError> {
        // One process at a time runs stages in a folder: two would both send what a stage sends. The lock is the
        // operating system's (flock on `agent.lock`), so it dies with a killed process.
        let lock_path = self.dir.join("agent.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| AgentError::Setup(format!("{}: {e}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AgentError::Setup(format!(
                    "another process is running this agent's stages ({} is locked): one at a time",
                    lock_path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(AgentError::Setup(format!("{}: {e}", lock_path.display())))
            }
        }
        let epoch = match self.ck.open_epoch()? {
            Some(e) => e,
            None => self.ck.new_epoch()?,
        };
        let done = self.ck.done(epoch)?;
        let stage = Stage::ALL.iter().copied().find(|s| !done.contains(s)).expect("an open epoch has a stage left");
        let prior = self.ck.outputs(epoch)?;
        // The setup an epoch began with is the one it finishes with (paths, signals, treasury, batch size).
        if let Some(o) = prior.get(&Stage::Observe) {
            let began = o["setup"].clone();
            if began != serde_json::to_value(self.setup.digest).unwrap_or_default() {
                return Err(AgentError::Setup(format!(
                    "agent.toml changed since epoch {epoch} began (it was {began}, it is {}): restore it to finish the \
                     epoch; the change applies from the next one",
                    self.setup.digest
                )));
            }
        }
        let output = stages::run(self, epoch, stage, &prior)?;
        let digest = allonet_core::digest(&output);
        self.ck.record(epoch, stage, &output)?;
        Ok(Step { epoch, stage, digest, epoch_done: stage == Stage::Report })
    }

    /// Runs stages until the open (or a new) epoch is finished; returns its report.
    pub fn run_epoch(&mut self, mut each: impl FnMut(&Step)) -> Result<EpochReport, AgentError> {
        loop {
            let s = self.step()?;
            each(&s);
            if s.epoch_done {
                return self.report(s.epoch);
            }
        }
    }

    /// The report of a finished epoch.
    pub fn report(&self, epoch: u64) -> Result<EpochReport, AgentError> {
        let v = self.ck.output(epoch, Stage::Report)?.ok_or_else(|| {
            AgentError::Setup(format!("epoch {epoch} has no report yet (agent status shows its stage)"))
        })?;
        serde_json::from_value(v).map_err(|e| AgentError::Checkpoint(format!("epoch {epoch}'s report: {e}")))
    }

    /// The kill switch, pulled by the guardian's key: the DAO's registry is paused, so no stage runs from the next
    /// step on (and nothing the registry serves, such as the model, is served). Only the members lift it.
    ///
    /// Every pool's allocator is paused on chain too (its guardian's `pause`), so that no queued payment can be
    /// executed by anyone while the DAO is paused; lifting that is the allocator's owner's (governance's) act.
    /// On the embedded EVM the allocator's guardian account sends it; on a JSON-RPC chain `guardian` must be it.
    /// Returns the allocators paused.
    pub fn pause(
        &self,
        guardian: &alloy_signer_local::PrivateKeySigner,
    ) -> Result<Vec<alloy_primitives::Address>, AgentError> {
        let mut store = allonet_engine::offchain::open_writable(&self.setup.governance, None)
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        let now = store.governor().rehearsal.then(|| decide::agent_time(&store));
        let act = allonet_governance::governor::Act::Pause { paused: true };
        allonet_engine::offchain::submit_act(&mut store, guardian, act, now)
            .map_err(|e| AgentError::Setup(format!("pausing: {e}")))?;
        drop(store);
        let mut paused = Vec::new();
        let mut failed = Vec::new();
        let mut done = std::collections::BTreeSet::new();
        // Every allocator is tried: one chain failing does not leave the others running.
        for (pool, t) in &self.setup.payouts {
            let mut one = || -> Result<(), String> {
                let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment).map_err(|e| e.to_string())?;
                let d = &dep.deployment;
                // Allocators are told apart by chain as well: two chains may hold one address.
                if !done.insert((t.state.clone(), t.rpc.clone(), d.allocator)) {
                    return Ok(());
                }
                let (mut conn, sender) = as_guardian(t, &dep, guardian, None)?;
                let call = allonet_chain::contracts::AIAllocator::pausedCall {};
                if !allonet_chain::read(conn.chain(), d.allocator, &call).map_err(|e| e.to_string())? {
                    let call = allonet_chain::contracts::AIAllocator::pauseCall {};
                    allonet_chain::transact(conn.chain(), sender, d.allocator, &call).map_err(|e| e.to_string())?;
                    conn.save().map_err(|e| e.to_string())?;
                }
                paused.push(d.allocator);
                Ok(())
            };
            if let Err(e) = one() {
                failed.push(format!("pool {pool}: {e}"));
            }
        }
        if !failed.is_empty() {
            return Err(AgentError::Setup(format!(
                "the DAO is paused and {} allocator(s) too, but these could not be paused on chain: {}",
                paused.len(),
                failed.join("; ")
            )));
        }
        Ok(paused)
    }

    /// Files the proposal that lifts the kill switch (`Unpause`), signed by `key`; the agent resumes once the
    /// members pass it. Returns the proposal's id (the same proposal is not filed twice).
    pub fn propose_resume(
        &self,
        key: &alloy_signer_local::PrivateKeySigner,
    ) -> Result<alloy_primitives::B256, AgentError> {
        use allonet_governance::governor::{proposal_id, Act, Action};
        let mut store = allonet_engine::offchain::open_writable(&self.setup.governance, None)
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        if !store.governor().registry.paused {
            return Err(AgentError::Setup("the DAO is not paused: there is nothing to resume".into()));
        }
        let actions = vec![Action::Unpause];
        let description = format!("Resume {} (lift the kill switch)", self.setup.name);
        let id = proposal_id(store.governor().dao, key.address(), &actions, &description, &[]);
        if !store.governor().proposals.contains_key(&id) {
            let now = store.governor().rehearsal.then(|| decide::agent_time(&store));
            let act = Act::Propose { actions, description, options: vec![] };
            allonet_engine::offchain::submit_act(&mut store, key, act, now)
                .map_err(|e| AgentError::Setup(format!("filing the proposal: {e}")))?;
        }
        Ok(id)
    }

    /// Recomputes an epoch's allocation from what the epoch recorded (observed inputs, its signals, governance's
    /// mix) and checks that it is the allocation recorded, to the plan digest.
    pub fn recompute_allocation(
        &self,
        epoch: u64,
    ) -> Result<(allonet_allocate::Problem, allonet_allocate::Allocation), AgentError> {
        let prior = self.ck.outputs(epoch)?;
        let e = |m: String| stages::stage_err(epoch, Stage::Allocate, m);
        if !prior.contains_key(&Stage::Allocate) {
            return Err(e("the epoch has no allocation yet".into()));
        }
        let recorded = stages::final_plans(&prior)["allocation"]["plan_digest"].clone();
        let p = stages::problem(self, &prior).map_err(e)?;
        let p = treasury::scaled(p, prior.get(&Stage::Treasury)).map_err(e)?;
        let a = allonet_allocate::allocate(&p).map_err(|x| e(x.to_string()))?;
        if serde_json::to_value(a.plan_digest).ok() != Some(recorded.clone()) {
            return Err(e(format!("recomputed plan {} is not the recorded {recorded}", a.plan_digest)));
        }
        Ok((p, a))
    }

    /// Whether governance's kill switch is on (the DAO's registry is paused).
    pub fn paused(&self) -> Result<bool, AgentError> {
        let store = allonet_engine::models::open_governance(&self.setup.governance)
            .map_err(|e| AgentError::Setup(e.to_string()))?;
        Ok(store.governor().registry.paused)
    }

    /// The agent's own key (from `key_file` in agent.toml).
    pub fn key(&self) -> Result<alloy_signer_local::PrivateKeySigner, AgentError> {
        let f = self.setup.key_file.as_ref().ok_or_else(|| AgentError::Setup("agent.toml gives no key_file".into()))?;
        allonet_engine::keys::load_key_file(f).map_err(|e| AgentError::Setup(e.to_string()))
    }

    /// The checkpoints (read-only use: status, reports, tests).
    pub fn checkpoints(&self) -> &Checkpoints {
        &self.ck
    }
}

/// A connection to `t`'s chain on which the guardian acts, and the account that sends: over JSON-RPC the guardian's
/// key signs (the contract checks it); on an embedded chain (accounts, not signatures) the allocator's guardian
/// account, the caller having checked the key against the DAO's guardian. `chain_id` pins the node's chain.
pub(crate) fn as_guardian(
    t: &setup::PayoutTarget,
    dep: &allonet_engine::connect::DeploymentFile,
    guardian: &alloy_signer_local::PrivateKeySigner,
    chain_id: Option<u64>,
) -> Result<(allonet_engine::connect::Connection, alloy_primitives::Address), String> {
    let spec = allonet_engine::connect::ConnectSpec {
        key: t.rpc.is_some().then(|| guardian.clone()),
        chain_id,
        ..t.connect_spec()
    };
    let (conn, _) = allonet_engine::connect::connect(&spec, Some(&dep.endpoint)).map_err(|e| e.to_string())?;
    Ok((conn, if t.rpc.is_some() { guardian.address() } else { dep.deployment.guardian }))
}
