//! `agent init`: a folder the agent can run in. With the example, a runnable DAO setup built from real data:
//! the 230 Optimism RF4 projects and their three pools (`examples/allocate`), the votes derived from the real
//! RF4 ballots, the projects' impact metrics as the model's features, a random forest trained on them (seeded),
//! a governance database on the system clock (its genesis and the proposal that activated the model dated
//! 2026-01-01, so every setup is the same bytes), one allocator per pool on two embedded chains, and the keys of
//! the agent (which holds no votes) and of the members.

use std::path::Path;

use allonet_core::Table;
use allonet_engine::offchain::{init_event, member_key, operator_key_path, pass, NewDao};
use allonet_governance::governor::{Action, GovParams};
use allonet_governance::power::{PowerConfig, Strategy};

use crate::AgentError;

const PROBLEM: &[u8] = include_bytes!("../../../examples/allocate/allocate.toml");
const VOTES: &[u8] = include_bytes!("../../../examples/allocate/votes.json");
const FEATURES: &[u8] = include_bytes!("../../../examples/op-rf4/rf4_training.csv");
const TREASURY_POLICY: &[u8] = include_bytes!("../../../examples/treasury/policy.toml");
const TREASURY_HOLDINGS: &[u8] = include_bytes!("../../../examples/treasury/holdings.csv");

/// The example's `agent.toml`.
pub const EXAMPLE_SETUP: &str = r#"# The funding agent's setup (allonet agent init --example). Paths are relative to this folder.
[agent]
name = "Example agent"
governance = "dao.db"        # the DAO's governance store: kill switch, activated model, audit log
models = "models"            # model files; the activated one is served as models/<id>.json
key_file = "keys/agent.json" # the agent's key: it signs the proposals it files (propose mode)

[inputs]
problem = "allocate.toml"    # the allocation instance: three pools, 230 RF4 projects and their payout addresses
votes = "votes.json"         # ballots derived from the real RF4 ballots, tallied quadratically
features = "features.csv"    # each project's RF4 impact metrics, the model's features

[signals]                    # the instance's signal files, served from the agent's own stages
"recommend.json" = "recommend"
"tally.json" = "score"

# The treasury the USDC and ETH pools draw on (examples/treasury): the plan may add no breach of its policy.
[treasury]
policy = "treasury/policy.toml"
holdings = "treasury/holdings.csv"
draws = { gitcoin = "USDC", octant = "ETH" }

# The treasury's tokens and a Uniswap v2 (from its npm artifacts) on the optimism chain: a rebalance the policy calls
# for becomes swaps there, fixed before the vote (amount in, least amount out), executed once the members approve.
[treasury.swaps]
amm = "chains/treasury.amm.json"
state = "chains/optimism.state.json"
executor_key = "keys/treasury.json"   # the treasury account's key; without it the swaps are only written as a Safe batch
max_slippage_bp = 100                 # least output: 1 % below what the pool would pay
reference_prices = { ETH = 3000, BTC = 60000, USDT = 1 }   # a pool further than 2 % from these is not traded

# Where each pool pays: its allocator on an embedded EVM (two chains: OP and ETH on optimism, USDC on base).
[payouts.optimism]
deployment = "chains/optimism.deployment.json"
state = "chains/optimism.state.json"

[payouts.octant]
deployment = "chains/octant.deployment.json"
state = "chains/optimism.state.json"

[payouts.gitcoin]
deployment = "chains/gitcoin.deployment.json"
state = "chains/base.state.json"
"#;

/// A template `agent.toml` for a folder set up by hand.
pub const TEMPLATE_SETUP: &str = r#"# The funding agent's setup. Put the files it names in this folder (paths are relative to it).
[agent]
name = "My agent"
governance = "dao.db"        # the DAO's governance store (allonet gov init): kill switch, activated model, audit log
models = "models"            # model files (allonet model train); the activated one is served as models/<id>.json

[inputs]
problem = "allocate.toml"    # the allocation instance (see allonet allocate --help): pools, projects, addresses
votes = "votes.json"         # ballots, tallied quadratically (as allonet tally)
features = "features.csv"    # each project's features for the model, labelled by project name

[signals]                    # the instance's signal files, served from the agent's own stages
"recommend.json" = "recommend"
"tally.json" = "score"
"#;

/// Seed of the example's model and member keys.
pub const EXAMPLE_SEED: u64 = 2026;

/// Trees in the example's forest.
pub const EXAMPLE_TREES: usize = 60;

/// The example DAO's voting periods (seconds): long enough to vote by hand, short enough to try.
#[derive(Debug, Clone)]
pub struct ExampleOptions {
    pub voting_period: u64,
    pub timelock_delay: u64,
    /// Copies of the 230 projects (1: the example as it is; more for benchmarks, see [`scale`]).
    pub copies: usize,
    /// Put the `base` chain (the USDC pool) on this JSON-RPC development node (anvil, chain id 8453) instead of
    /// an embedded EVM: its allocator is then owned by its own on-chain Governor and timelock, which set the
    /// agent's standing caps, veto delay and registry in a passed proposal.
    pub base_rpc: Option<String>,
}

impl Default for ExampleOptions {
    fn default() -> Self {
        ExampleOptions { voting_period: 120, timelock_delay: 30, copies: 1, base_rpc: None }
    }
}

/// Writes a new agent folder at `dir` (which must not hold an agent yet): the example, or a template setup.
pub fn init(dir: &Path, example: bool) -> Result<(), AgentError> {
    init_with(dir, example, ExampleOptions::default())
}

/// [`init`] with the example DAO's voting periods.
pub fn init_with(dir: &Path, example: bool, o: ExampleOptions) -> Result<(), AgentError> {
    let io = |p: &Path, e: std::io::Error| AgentError::Setup(format!("{}: {e}", p.display()));
    let setup = |e: allonet_engine::EngineError| AgentError::Setup(e.to_string());
    if dir.join("agent.toml").exists() {
        return Err(AgentError::Setup(format!("{} already holds an agent; refusing to overwrite it", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    if !example {
        let p = dir.join("agent.toml");
        return std::fs::write(&p, TEMPLATE_SETUP).map_err(|e| io(&p, e));
    }
    // Three pools on two chains: the ETH pool pays on optimism here.
    let problem = String::from_utf8_lossy(PROBLEM).replace("chain = \"mainnet\"", "chain = \"optimism\"");
    std::fs::create_dir_all(dir.join("treasury")).map_err(|e| io(dir, e))?;
    for (name, bytes) in [
        ("allocate.toml", problem.as_bytes()),
        ("votes.json", VOTES),
        ("features.csv", FEATURES),
        ("treasury/policy.toml", TREASURY_POLICY),
        ("treasury/holdings.csv", TREASURY_HOLDINGS),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
    }
    // The model: a seeded forest on the RF4 impact metrics, predicting each project's RF4 award.
    let table = Table::from_bytes("features.csv", FEATURES).map_err(|e| AgentError::Setup(e.to_string()))?;
    let spec = allonet_ml::data::ReadSpec { target: Some("rf4_allocation".into()), features: None };
    let data = allonet_ml::data::dataset_from_table(&table, &spec).map_err(|e| AgentError::Setup(e.to_string()))?;
    let mut opts = allonet_ml::model::TrainOptions::default();
    opts.forest.n_trees = EXAMPLE_TREES;
    opts.forest.seed = EXAMPLE_SEED;
    let mf = allonet_engine::models::train(&data, &opts, None).map_err(setup)?;
    let id = mf.id();
    let models = dir.join("models");
    std::fs::create_dir_all(&models).map_err(|e| io(&models, e))?;
    let mpath = models.join(format!("{id}.json"));
    std::fs::write(&mpath, mf.to_bytes()).map_err(|e| io(&mpath, e))?;
    // The DAO: twelve members and a guardian, on the system clock (decisions from it can pay). Its genesis and the
    // proposal that activated the model are dated 2026-01-01 (a fixed past), so every setup is the same bytes.
    let members: Vec<_> = (0..12).map(|i| member_key(EXAMPLE_SEED, i)).collect();
    let operator = member_key(EXAMPLE_SEED, u64::MAX);
    let e18 = 1_000_000_000_000_000_000u128;
    let dao = NewDao {
        params: GovParams {
            voting_delay: 0,
            voting_period: o.voting_period,
            proposal_threshold: 0,
            quorum_percent: 20,
            timelock_delay: o.timelock_delay,
            grace_period: 14 * 86_400,
        },
        power: PowerConfig { strategy: Strategy::QuadraticSqrt, sybil: None },
        guardian: members[11].address(),
        holders: members.iter().enumerate().map(|(i, k)| (k.address(), (1 + i as u128 * 10) * e18)).collect(),
        chain_id: 1,
        rehearsal: false,
        salt: Some(alloy_primitives::B256::with_last_byte(21)),
    };
    let db = dir.join("dao.db");
    let genesis = 1_767_225_600; // 2026-01-01
    let clock = std::sync::Arc::new(allonet_governance::ManualClock::at(genesis));
    let mut store =
        allonet_store::Store::open_with_clock(&db, clock.clone()).map_err(|e| AgentError::Setup(e.to_string()))?;
    store.set_operator(operator.clone()).map_err(|e| AgentError::Setup(e.to_string()))?;
    store.submit(&init_event(dao, &operator, genesis).map_err(setup)?).map_err(|e| AgentError::Setup(e.to_string()))?;
    allonet_engine::keys::write_key_file(&operator_key_path(&db), &operator).map_err(setup)?;
    let activate = vec![Action::ActivateModel { model_id: id.0 }];
    pass(&mut store, Some(&clock), &members[0], &members[..8], activate, "Activate the RF4 impact model for the agent")
        .map_err(setup)?;
    drop(store);
    // The agent's own key (it holds no votes and signs only the proposals it files), and the members' keys so that
    // the example's proposals can be voted on by hand (`allonet gov vote --key keys/member-0.json`).
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).map_err(|e| io(&keys, e))?;
    allonet_engine::keys::write_key_file(&keys.join("agent.json"), &agent_key()).map_err(setup)?;
    for (i, m) in members.iter().enumerate() {
        allonet_engine::keys::write_key_file(&keys.join(format!("member-{i}.json")), m).map_err(setup)?;
    }
    if o.copies > 1 {
        scale(dir, o.copies)?;
    }
    let problem = std::fs::read_to_string(dir.join("allocate.toml")).map_err(|e| io(dir, e))?;
    deploy_pools(dir, &problem, o.base_rpc.as_deref())?;
    deploy_treasury(dir, o.base_rpc.as_deref())
        .map_err(|e| AgentError::Setup(format!("deploying the example's treasury and AMM: {e}")))?;
    let p = dir.join("agent.toml");
    let text = match &o.base_rpc {
        None => EXAMPLE_SETUP.to_string(),
        Some(url) => EXAMPLE_SETUP
            .replace(
                "on an embedded EVM (two chains: OP and ETH on optimism, USDC on base)",
                "(two chains: OP and ETH on optimism, an embedded EVM; USDC on base, over JSON-RPC)",
            )
            .replace(
                "state = \"chains/base.state.json\"",
                &format!(
                    "rpc = {}\nmax_fee_gwei = 100        # the most a transaction offers per gas",
                    toml_string(url)
                ),
            )
            .replace(
                "amm = \"chains/treasury.amm.json\"\nstate = \"chains/optimism.state.json\"",
                &format!("amm = \"chains/treasury.amm.json\"\nrpc = {}", toml_string(url)),
            )
            .replace(
                "Uniswap v2 (from its npm artifacts) on the optimism chain",
                "Uniswap v2 (from its npm artifacts) on the base chain",
            ),
    };
    std::fs::write(&p, text).map_err(|e| io(&p, e))
}

/// A TOML basic string (JSON's escapes are TOML's).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// One allocator per pool (optimism: chain 10; base: 8453), funded with the pool's budget, with standing caps of
/// the whole budget, a one-hour veto window and every project's address in its registry. On the embedded EVM the
/// deployer keeps the allocator and sets these itself; on a JSON-RPC node (`base_rpc`) the allocator belongs to
/// its timelock from the start, as in production, and the deployer (anvil's dev account 0, which holds the
/// governance token) passes one on-chain proposal that sets them; the agent, the DAO's guardian and its
/// operator (who anchors the log) are given gas money there.
fn deploy_pools(dir: &Path, problem: &str, base_rpc: Option<&str>) -> Result<(), AgentError> {
    use allonet_chain::deploy::Asset;
    use allonet_engine::connect::{connect, ConnectSpec};
    use allonet_engine::deploy::{deploy, DeploySpec};
    use alloy_primitives::U256;
    #[derive(serde::Deserialize)]
    struct Pools {
        pools: Vec<PoolSpec>,
        projects: Vec<ProjectSpec>,
    }
    #[derive(serde::Deserialize)]
    struct PoolSpec {
        id: String,
        token: String,
        decimals: u8,
        budget: String,
        chain: String,
    }
    #[derive(serde::Deserialize)]
    struct ProjectSpec {
        address: String,
    }
    let setup = |e: String| AgentError::Setup(format!("deploying the example's allocators: {e}"));
    let f: Pools = toml::from_str(problem).map_err(|e| setup(e.to_string()))?;
    let recipients: Vec<alloy_primitives::Address> =
        f.projects.iter().map(|p| p.address.parse()).collect::<Result<_, _>>().map_err(|e| setup(format!("{e}")))?;
    let chains = dir.join("chains");
    std::fs::create_dir_all(&chains).map_err(|e| setup(e.to_string()))?;
    for pool in &f.pools {
        let token = allonet_core::Token::new(&pool.token, pool.decimals);
        let budget = token.parse(&pool.budget).map_err(|e| setup(e.to_string()))?.units();
        let out = chains.join(format!("{}.deployment.json", pool.id));
        let asset =
            Asset::NewToken { symbol: pool.token.clone(), decimals: pool.decimals, supply: budget * U256::from(10u64) };
        if let (Some(url), "base") = (base_rpc, pool.chain.as_str()) {
            deploy_governed(url, asset, budget, &recipients, &out).map_err(setup)?;
            continue;
        }
        let state = chains.join(format!("{}.state.json", pool.chain));
        if !state.exists() {
            let id = if pool.chain == "base" { 8453 } else { 10 };
            allonet_chain::embedded::Embedded::open_with_chain_id(&state, id)
                .and_then(|e| e.save())
                .map_err(|e| setup(e.to_string()))?;
        }
        let spec = ConnectSpec { embedded: true, state: state.clone(), ..Default::default() };
        let (mut conn, endpoint) = connect(&spec, None).map_err(|e| setup(e.to_string()))?;
        let ds = DeploySpec {
            asset,
            agent: None,
            guardian: None,
            holders: None,
            epoch_length: 30 * 86_400,
            fund: budget,
            voting_delay: 1,
            voting_period: 50,
            quorum_percent: 4,
            timelock_delay: 2 * 86_400,
            keep_owner: true,
        };
        let (file, _) = deploy(&mut conn, endpoint, &ds, &out).map_err(|e| setup(e.to_string()))?;
        let d = file.deployment;
        let c = conn.chain();
        let send = |c: &mut dyn allonet_chain::Chain, a: &allonet_chain::governor::Action| {
            c.send(allonet_chain::Tx {
                from: d.deployer,
                to: Some(d.allocator),
                data: a.calldata(),
                ..Default::default()
            })
            .map(|_| ())
            .map_err(|e| setup(e.to_string()))
        };
        for a in allonet_engine::govern::standing_actions(budget, budget, vec![], 3_600) {
            send(c, &a)?;
        }
        // The registry, 200 addresses a transaction.
        for chunk in recipients.chunks(200) {
            send(c, &allonet_chain::governor::Action::SetRecipients { recipients: chunk.to_vec(), allowed: true })?;
        }
        conn.save().map_err(|e| setup(e.to_string()))?;
    }
    Ok(())
}

/// The USDC pool's allocator on a JSON-RPC development node, owned by its timelock: deployed by anvil's dev
/// account 0 (the only holder of the governance token), which funds the agent, the guardian and the operator with
/// gas money, then proposes the standing caps, veto delay and registry on the Governor, votes, queues and executes
/// them, moving the node's blocks and clock past each period (`anvil_mine`, `evm_increaseTime`).
fn deploy_governed(
    url: &str,
    asset: allonet_chain::deploy::Asset,
    budget: alloy_primitives::U256,
    recipients: &[alloy_primitives::Address],
    out: &Path,
) -> Result<(), String> {
    use allonet_engine::connect::{connect, ConnectSpec};
    use allonet_engine::deploy::{deploy, DeploySpec};
    use allonet_engine::govern::{propose_onchain, step_onchain, vote_onchain, Step};
    use alloy_primitives::U256;
    let s = |e: allonet_engine::EngineError| e.to_string();
    let deployer = allonet_chain::rpc::signer_from_hex(allonet_chain::anvil::DEV_KEYS[0]).map_err(|e| e.to_string())?;
    let spec = ConnectSpec {
        rpc: Some(url.to_string()),
        chain_id: Some(8453),
        key: Some(deployer.clone()),
        ..Default::default()
    };
    let (mut conn, endpoint) = connect(&spec, None).map_err(s)?;
    let guardian = member_key(EXAMPLE_SEED, 11).address();
    let operator = member_key(EXAMPLE_SEED, u64::MAX).address();
    let e18 = U256::from(10u64).pow(U256::from(18));
    let ds = DeploySpec {
        asset,
        agent: Some(allonet_core::Address(agent_key().address())),
        guardian: Some(allonet_core::Address(guardian)),
        holders: Some(vec![(
            allonet_core::Address(deployer.address()),
            allonet_core::TokenAmount(U256::from(1_000_000u64) * e18),
        )]),
        epoch_length: 30 * 86_400,
        fund: budget,
        voting_delay: 1,
        voting_period: 5,
        quorum_percent: 4,
        timelock_delay: 60,
        keep_owner: false,
    };
    let (file, _) = deploy(&mut conn, endpoint, &ds, out).map_err(s)?;
    let d = file.deployment;
    for who in [agent_key().address(), guardian, operator] {
        let tx =
            allonet_chain::Tx { from: d.deployer, to: Some(who), value: U256::from(10u64) * e18, ..Default::default() };
        conn.chain().send(tx).map_err(|e| format!("funding {who}: {e}"))?;
    }
    let actions = allonet_engine::govern::standing_actions(budget, budget, recipients.to_vec(), 3_600);
    let p =
        propose_onchain(&mut conn, &d, d.deployer, &actions, "Standing caps, veto delay and registry of the USDC pool")
            .map_err(s)?;
    conn.advance(ds.voting_delay + 1, 0).map_err(s)?;
    vote_onchain(&mut conn, &d, p.proposal, 1, &deployer, None).map_err(s)?;
    conn.advance(ds.voting_period + 1, 0).map_err(s)?;
    step_onchain(&mut conn, &d, p.proposal, Step::Queue, d.deployer).map_err(s)?;
    conn.advance(1, ds.timelock_delay + 1).map_err(s)?;
    let done = step_onchain(&mut conn, &d, p.proposal, Step::Execute, d.deployer).map_err(s)?;
    if done.status.state != "Executed" {
        return Err(format!("the standing-caps proposal ended {}", done.status.state));
    }
    Ok(())
}

/// The example treasury's prices (unit of account per whole token) and decimals, as its AMM pools open.
const TREASURY_TOKENS: [(&str, u8, f64); 4] =
    [("USDC", 6, 1.0), ("USDT", 6, 1.0), ("ETH", 18, 3_000.0), ("BTC", 8, 60_000.0)];

/// Depth of each AMM pool (unit of account on each side): a tranche of 5 % of the treasury moves a price by about
/// 0.3 %.
const POOL_DEPTH: u64 = 200_000_000;

/// The treasury on the optimism chain (or, with `rpc`, on the base chain's node): its four tokens, held by the
/// treasury account (`keys/treasury.json`) in the amounts `treasury/holdings.csv` values at [`TREASURY_TOKENS`]'
/// prices, and Uniswap v2 (factory, Router02, WETH9 from `contracts/node_modules`) with a pool of each token
/// against USDC, [`POOL_DEPTH`] deep, provided by anvil's dev account 0. Writes `chains/treasury.amm.json`.
fn deploy_treasury(dir: &Path, rpc: Option<&str>) -> Result<(), String> {
    use allonet_engine::connect::{connect, dev_address, ConnectSpec, Connection};
    use alloy_primitives::U256;
    let lp = dev_address(0);
    let treasury = treasury_key().address();
    let spec = match rpc {
        None => ConnectSpec { embedded: true, state: dir.join("chains/optimism.state.json"), ..Default::default() },
        Some(url) => ConnectSpec {
            rpc: Some(url.to_string()),
            chain_id: Some(8453),
            key: Some(
                allonet_chain::rpc::signer_from_hex(allonet_chain::anvil::DEV_KEYS[0]).map_err(|e| e.to_string())?,
            ),
            ..Default::default()
        },
    };
    let (mut conn, _) = connect(&spec, None).map_err(|e| e.to_string())?;
    match &mut conn {
        Connection::Embedded(e, _) => e.fund(treasury, U256::from(10u64).pow(U256::from(21))),
        Connection::Rpc(r) => {
            let gas_money = allonet_chain::Tx {
                from: lp,
                to: Some(treasury),
                value: U256::from(10u64).pow(U256::from(19)),
                ..Default::default()
            };
            allonet_chain::Chain::send(r, gas_money).map_err(|e| format!("funding the treasury account: {e}"))?;
        }
    }
    let c = conn.chain();
    let amm = allonet_chain::amm::deploy(c, lp).map_err(|e| e.to_string())?;
    let holdings = allonet_engine::treasury::holdings_from_table(
        &Table::from_bytes("holdings.csv", TREASURY_HOLDINGS).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let whole = |x: f64, d: u8| {
        U256::from((x * 1e6).round() as u128) * U256::from(10u64).pow(U256::from(d)) / U256::from(1_000_000u64)
    };
    let mut tokens = std::collections::BTreeMap::new();
    for (sym, d, price) in TREASURY_TOKENS {
        let held = whole(holdings.get(sym).copied().unwrap_or(0.0) / price, d);
        let depth = whole(POOL_DEPTH as f64 / price, d);
        // USDC is the other side of every pool.
        let supply = held + depth * U256::from(TREASURY_TOKENS.len() as u64);
        let t = allonet_chain::amm::new_token(c, lp, sym, d, lp, supply).map_err(|e| e.to_string())?;
        let call = allonet_chain::contracts::PayToken::transferCall { to: treasury, value: held };
        c.send(allonet_chain::Tx::call(lp, t, &call)).map_err(|e| e.to_string())?;
        tokens.insert(sym.to_string(), crate::rebalance::TokenAt { address: t, decimals: d });
    }
    let usdc = tokens["USDC"];
    for (sym, d, price) in TREASURY_TOKENS.iter().skip(1) {
        let t = tokens[*sym];
        let side = (t.address, whole(POOL_DEPTH as f64 / price, *d));
        allonet_chain::amm::add_liquidity(c, &amm, lp, side, (usdc.address, whole(POOL_DEPTH as f64, 6)))
            .map_err(|e| e.to_string())?;
    }
    let f = crate::rebalance::AmmFile {
        schema: crate::rebalance::AMM_SCHEMA.into(),
        chain_id: c.chain_id(),
        amm,
        treasury,
        quote: "USDC".into(),
        tokens,
    };
    conn.save().map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&f).map_err(|e| e.to_string())? + "\n";
    std::fs::write(dir.join("chains/treasury.amm.json"), text).map_err(|e| e.to_string())?;
    allonet_engine::keys::write_key_file(&dir.join("keys/treasury.json"), &treasury_key()).map_err(|e| e.to_string())
}

/// The example treasury account's key (seeded, like the agent's; never use it for real funds).
pub fn treasury_key() -> alloy_signer_local::PrivateKeySigner {
    member_key(EXAMPLE_SEED, 2_000)
}

/// The example agent's key (seeded, so the example is the same everywhere; never use it for real funds).
pub fn agent_key() -> alloy_signer_local::PrivateKeySigner {
    member_key(EXAMPLE_SEED, 1_000)
}

/// Grows the example in `dir` to `copies` times its projects (for benchmarks): each copy of a project gets its
/// own id (`ID-cK`), name (`NAME (K)`), payout address (from the keccak-256 of its id) and a row of the same
/// features; the votes stay those of the originals. Returns the number of projects.
pub fn scale(dir: &Path, copies: usize) -> Result<usize, AgentError> {
    let io = |p: &Path, e: std::io::Error| AgentError::Setup(format!("{}: {e}", p.display()));
    let tp = dir.join("allocate.toml");
    let text = std::fs::read_to_string(&tp).map_err(|e| io(&tp, e))?;
    let mut blocks = text.split("\n[[projects]]");
    let head = blocks.next().unwrap_or_default().to_string();
    let projects: Vec<&str> = blocks.collect();
    let mut out = head.clone();
    for k in 0..copies.max(1) {
        for b in &projects {
            let mut lines = Vec::new();
            let mut id = String::new();
            for line in b.lines() {
                let l = if k == 0 {
                    line.to_string()
                } else if let Some(v) = line.strip_prefix("id = ") {
                    id = format!("{}-c{k}", v.trim_matches('"'));
                    format!("id = \"{id}\"")
                } else if let Some(v) = line.strip_prefix("name = ") {
                    format!("name = \"{} ({k})\"", v.trim_matches('"'))
                } else if line.starts_with("address = ") {
                    let h = alloy_primitives::keccak256(format!("allonet example copy {k} {b}").as_bytes());
                    format!("address = \"{}\"", alloy_primitives::Address::from_slice(&h[12..]).to_checksum(None))
                } else {
                    line.to_string()
                };
                lines.push(l);
            }
            let _ = id;
            out += "\n[[projects]]";
            out += &lines.join("\n");
        }
    }
    std::fs::write(&tp, &out).map_err(|e| io(&tp, e))?;
    let fp = dir.join("features.csv");
    let csv = std::fs::read_to_string(&fp).map_err(|e| io(&fp, e))?;
    let mut rows = csv.lines();
    let header = rows.next().unwrap_or_default();
    let name_col = header.split(',').position(|h| h == "project_name").unwrap_or(1);
    let data: Vec<&str> = rows.collect();
    let mut out = String::from(header) + "\n";
    for k in 0..copies.max(1) {
        for r in &data {
            if k == 0 {
                out += r;
            } else {
                let mut cells: Vec<String> = r.split(',').map(String::from).collect();
                cells[0] = format!("{}-c{k}", cells[0]);
                cells[name_col] = format!("{} ({k})", cells[name_col]);
                out += &cells.join(",");
            }
            out += "\n";
        }
    }
    std::fs::write(&fp, out).map_err(|e| io(&fp, e))?;
    Ok(projects.len() * copies.max(1))
}

/// Sleeps until the system clock is past `t` (the example DAO runs on it).
fn wait_past(t: u64) {
    while crate::decide::unix_now() <= t {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// In the example DAO in `dir`: members 0 to 7 vote on `proposal` (`support` 1 for, 0 against) once it is open;
/// a passing proposal is then queued and executed once its timelock ends, a failing one left past its deadline.
/// Waits on the system clock as the periods require (seconds with short [`ExampleOptions`]). For demos and tests.
pub fn members_decide(dir: &Path, proposal: alloy_primitives::B256, support: u8) -> Result<(), AgentError> {
    members_vote(dir, proposal, support)?;
    if support == 1 {
        members_enact(dir, proposal)
    } else {
        let db = dir.join("dao.db");
        let store = allonet_engine::offchain::open_writable(&db, None)
            .map_err(|e| AgentError::Setup(format!("the example's members: {e}")))?;
        wait_past(store.governor().proposals[&proposal].deadline);
        Ok(())
    }
}

/// The first half of [`members_decide`]: members 0 to 7 cast their votes once `proposal` is open, and return (the
/// vote is still running).
pub fn members_vote(dir: &Path, proposal: alloy_primitives::B256, support: u8) -> Result<(), AgentError> {
    use allonet_engine::offchain::{open_writable, signed_vote};
    let db = dir.join("dao.db");
    let err = |e: String| AgentError::Setup(format!("the example's members: {e}"));
    let members: Vec<_> = (0..12).map(|i| member_key(EXAMPLE_SEED, i)).collect();
    let open = || open_writable(&db, None).map_err(|e| err(e.to_string()));
    let p =
        open()?.governor().proposals.get(&proposal).cloned().ok_or_else(|| err(format!("no proposal {proposal}")))?;
    wait_past(p.snapshot);
    let mut store = open()?;
    for m in &members[..8] {
        let e = signed_vote(store.governor(), m, proposal, support, 0, store.now()).map_err(|e| err(e.to_string()))?;
        store.submit(&e).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// The second half of [`members_decide`] for a proposal the members voted for: once its vote ends, queued, and
/// executed once its timelock ends.
pub fn members_enact(dir: &Path, proposal: alloy_primitives::B256) -> Result<(), AgentError> {
    use allonet_engine::offchain::{open_writable, submit_act};
    use allonet_governance::governor::Act;
    let db = dir.join("dao.db");
    let err = |e: String| AgentError::Setup(format!("the example's members: {e}"));
    let member = member_key(EXAMPLE_SEED, 0);
    let open = || open_writable(&db, None).map_err(|e| err(e.to_string()));
    let deadline = open()?.governor().proposals.get(&proposal).map(|p| p.deadline);
    wait_past(deadline.ok_or_else(|| err(format!("no proposal {proposal}")))?);
    let mut store = open()?;
    submit_act(&mut store, &member, Act::Queue { proposal }, None).map_err(|e| err(e.to_string()))?;
    let eta = store.governor().proposals[&proposal].eta.unwrap_or(0);
    drop(store);
    wait_past(eta.saturating_sub(1));
    let mut store = open()?;
    submit_act(&mut store, &member, Act::Execute { proposal }, None).map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// In the example DAO in `dir`: member 1 proposes `actions` and the members pass them ([`members_decide`]).
pub fn members_pass(dir: &Path, actions: Vec<Action>, description: &str) -> Result<alloy_primitives::B256, AgentError> {
    use allonet_engine::offchain::{open_writable, submit_act};
    use allonet_governance::governor::{proposal_id, Act};
    let err = |e: String| AgentError::Setup(format!("the example's members: {e}"));
    let proposer = member_key(EXAMPLE_SEED, 1);
    let mut store = open_writable(&dir.join("dao.db"), None).map_err(|e| err(e.to_string()))?;
    let id = proposal_id(store.governor().dao, proposer.address(), &actions, description, &[]);
    let act = Act::Propose { actions, description: description.into(), options: vec![] };
    submit_act(&mut store, &proposer, act, None).map_err(|e| err(e.to_string()))?;
    drop(store);
    members_decide(dir, id, 1)?;
    Ok(id)
}

/// Moves each chain the agent in `dir` pays on forward by `seconds` (as `allonet chain advance` does), e.g. past a
/// veto window: the embedded EVMs, and development nodes over JSON-RPC (`evm_increaseTime`; others refuse).
pub fn advance_chains(dir: &Path, seconds: u64) -> Result<(), AgentError> {
    let setup = crate::Setup::load(dir)?;
    let mut done = std::collections::BTreeSet::new();
    for t in setup.payouts.values() {
        if !done.insert((t.state.clone(), t.rpc.clone())) {
            continue;
        }
        let err = |e: allonet_engine::EngineError| AgentError::Setup(e.to_string());
        let dep = allonet_engine::connect::DeploymentFile::load(&t.deployment).map_err(err)?;
        let (mut conn, _) = allonet_engine::connect::connect(&t.connect_spec(), Some(&dep.endpoint)).map_err(err)?;
        conn.advance(1, seconds).map_err(err)?;
        conn.save().map_err(err)?;
    }
    Ok(())
}
