//! The `allonet` command-line tool: parses arguments, calls the library crates, prints. No logic of its own.

mod agent;
mod allocate;
mod bench;
mod chain;
mod config;
mod demo;
mod flow;
mod gov;
mod model;
mod onchain;
mod output;
mod retro;
mod round;
mod tally;
mod treasury;
mod verify;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "allonet",
    version,
    about = "Decide and execute DAO capital allocation: quadratic funding, COCM, quadratic voting, retro funding.",
    long_about = "allonet turns contributions, ballots and votes into exact token payouts.\n\
Every result carries a keccak-256 digest of its inputs and of its outputs; `allonet verify` recomputes a\n\
result file from its inputs and checks both. Money is integer base units: payouts always sum to the budget.",
    after_help = "Examples:\n  allonet demo\n  allonet round examples/round/contributions.csv --pool 10000 --token USDC --mechanism cocm\n  allonet retro --ballots examples/op-rf4/rf4_ballots_export.csv --metrics examples/op-rf4/rf4_impact_metrics_by_project.csv --compare examples/op-rf4/rf4_results.csv\n  allonet tally examples/snapshot-quadratic/votes.json\n  allonet round examples/round/contributions.csv -o result.json && allonet verify result.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a QF round, a retro round and a quadratic vote on bundled data.
    Demo(demo::DemoArgs),
    /// Match a pool to a round's contributions (classic QF, pairwise, cluster match, COCM, blend).
    #[command(
        after_help = "Examples:\n  allonet round examples/round/contributions.csv --pool 10000 --token USDC\n  allonet round examples/round/contributions.csv --mechanism cocm --sybil-scores examples/round/passport.csv --cap 25%\n  allonet round gifts.csv --mechanism blend --pct-cocm 0.75 --json > result.json\n  allonet round gifts.csv --pool 50000 --decimals 18 --token DAI --csv matches.csv -o result.json"
    )]
    Round(round::RoundArgs),
    /// Allocate a retro round: RF4 metric ballots, RetroPGF 3 medians, or capped proportional scores.
    #[command(
        after_help = "Examples:\n  allonet retro --ballots examples/op-rf4/rf4_ballots_export.csv --metrics examples/op-rf4/rf4_impact_metrics_by_project.csv --compare examples/op-rf4/rf4_results.csv\n  allonet retro --votes votes.csv --quorum 17 --min-median 1500 --budget 30000000\n  allonet retro --scores scores.csv --cap 10% --min 500 --budget 250000 --token USDC --decimals 6"
    )]
    Retro(retro::RetroArgs),
    /// Tally quadratic votes (Snapshot's quadratic type, or QV with credits) and optionally split a budget.
    #[command(
        after_help = "Examples:\n  allonet tally examples/snapshot-quadratic/votes.json\n  allonet tally votes.json --budget 5000 --token USDC --json"
    )]
    Tally(tally::TallyArgs),
    /// One optimised plan across several DAOs' pools: AI and vote signals, each pool's rules, exact plans.
    #[command(
        after_help = "Maximises Σ w·u(value received) over every pool's budget together: eligibility, per-pool caps,\nmax share, minimum grant, cross-pool caps (no double funding), a pull toward a baseline. Each pool gets\nan exact payout plan; every amount is explained (marginal value, shadow prices, what binds).\n\nExamples:\n  allonet allocate examples/allocate/allocate.toml\n  allonet allocate examples/allocate/allocate.toml -o plans/ --html allocation.html\n  allonet allocate instance.toml --json > allocation.json"
    )]
    Allocate(allocate::AllocateArgs),
    /// The funding agent: epochs from the DAO's data to a plan and a report, stage by stage, resumable.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Recompute a result file (written with -o) from its inputs and check both digests.
    #[command(
        after_help = "Example:\n  allonet round examples/round/contributions.csv -o result.json\n  allonet verify result.json"
    )]
    Verify(verify::VerifyArgs),
    /// Train, evaluate and explain funding-recommendation models.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Recommend an amount, an interval and the top reasons for each proposal.
    #[command(
        after_help = "Example:\n  allonet model synth -o history.csv --proposals proposals.csv\n  allonet model train --data history.csv --target amount -o model.json\n  allonet recommend --model model.json --proposals proposals.csv"
    )]
    Recommend(model::RecommendArgs),
    /// Allocation networks: propagate, simulate, fit to human judgement, tune.
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// Governance: proposals, signed votes, timelock, execution, audit log (SQLite).
    #[command(subcommand)]
    Gov(gov::GovCommand),
    /// Treasury: policy breaches, risk, runway Monte Carlo, stress tests.
    #[command(subcommand)]
    Treasury(treasury::TreasuryCommand),
    /// On-chain execution: deploy the contracts (embedded EVM or any chain), plan, status, Safe export.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// Pay a plan through AIAllocator: only what governance approved (on chain, or queued under its caps after the
    /// veto window), every chain checked before any is paid, one transaction per committed batch, resumable.
    #[command(
        after_help = "Examples:\n  allonet payout plan.json --deployment deployment.json          # a plan governance approved on chain\n  allonet payout plan.json --dry-run\n  ALLONET_KEY=0x... allonet payout plan.json --deployment live.json\n  allonet payout plan.json --chains chains.toml                   # payments name their chain\n  allonet payout plan.json --queue --decision decision.json --db dao.db   # off-chain decision: queue under the caps\n  allonet payout plan.json --decision decision.json --db dao.db           # ... and pay after the veto window\n\nNothing is sent unless every chain's part is approved (or queued and matured) on its allocator, not paused,\nwithin caps and funded. Re-running a plan pays only what is missing (the allocator's bitmap says which\nbatches are paid); the contract refuses to pay a batch twice."
    )]
    Payout(chain::PayoutArgs),
    /// A DAO's configuration (`allonet.toml`: token, pools, chains, governance mode, agent, guardian, caps).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Benchmarks that print figures (and ratios against a Python peer where one exists).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check `allonet.toml` whole (every error names its line and field) and show it resolved.
    #[command(after_help = "Example:\n  allonet config check examples/dao/allonet.toml")]
    Check(config::CheckArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Classic QF and COCM on Gitcoin GR9 (69k gifts, 641 grants) vs the NumPy peer in bench/.
    Gr9(bench::BenchArgs),
    /// Random forest fit and predict timing on CSVs (used by bench/forest_bench.py against scikit-learn).
    Forest(model::ForestBenchArgs),
    /// Fund propagation (Deep Funding graph, 100k-node synthetic graph) and Monte Carlo, vs a SciPy peer.
    Flow(bench::FlowBenchArgs),
    /// Signed votes ingested per second: signature check, tally, durable storage.
    Gov(bench::GovBenchArgs),
    /// Payouts on the embedded EVM: a 10,000-recipient plan, gas per recipient, batch vs single calls.
    Payout(bench::PayoutBenchArgs),
    /// Cross-DAO allocation (`allonet allocate`) against cvxpy + Clarabel on the same random instances.
    #[command(
        after_help = "Examples:\n  allonet bench allocate\n  allonet bench allocate --sizes 3x200,10x10000 --python .venv/bin/python\n  allonet bench allocate --peer none"
    )]
    Allocate(bench::AllocateBenchArgs),
    /// One epoch of the example agent, each stage timed (`--copies 1,5`: the example's 230 projects, and five times).
    #[command(after_help = "Examples:\n  allonet bench agent\n  allonet bench agent --copies 5")]
    Agent(bench::AgentBenchArgs),
}

fn main() {
    // Exit quietly when stdout is closed early (`allonet demo | head`), like other Unix tools.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let r = match &cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Round(a) => round::run(a),
        Command::Retro(a) => retro::run(a),
        Command::Tally(a) => tally::run(a),
        Command::Allocate(a) => allocate::run(a),
        Command::Agent(c) => match c {
            agent::AgentCommand::Init(a) => agent::run_init(a),
            agent::AgentCommand::Run(a) => agent::run_run(a),
            agent::AgentCommand::Step(a) => agent::run_step(a),
            agent::AgentCommand::Status(a) => agent::run_status(a),
            agent::AgentCommand::Report(a) => agent::run_report(a),
            agent::AgentCommand::Pause(a) => agent::run_pause(a),
            agent::AgentCommand::Guard(a) => agent::run_guard(a),
            agent::AgentCommand::Resume(a) => agent::run_resume(a),
        },
        Command::Verify(a) => verify::run(a),
        Command::Bench(BenchCommand::Gr9(a)) => bench::run(a),
        Command::Bench(BenchCommand::Forest(a)) => model::run_forest_bench(a),
        Command::Bench(BenchCommand::Flow(a)) => bench::run_flow(a),
        Command::Bench(BenchCommand::Gov(a)) => bench::run_gov(a),
        Command::Bench(BenchCommand::Payout(a)) => bench::run_payout(a),
        Command::Bench(BenchCommand::Allocate(a)) => bench::run_allocate(a),
        Command::Bench(BenchCommand::Agent(a)) => bench::run_agent(a),
        Command::Chain(chain::ChainCommand::Deploy(a)) => chain::run_deploy(a),
        Command::Chain(chain::ChainCommand::Plan(a)) => chain::run_plan(a),
        Command::Chain(chain::ChainCommand::Status(a)) => chain::run_status(a),
        Command::Chain(chain::ChainCommand::ExportSafe(a)) => chain::run_export_safe(a),
        Command::Chain(chain::ChainCommand::Advance(a)) => chain::run_advance(a),
        Command::Payout(a) => chain::run_payout(a),
        Command::Config(ConfigCommand::Check(a)) => config::run_check(a),
        Command::Model(model::ModelCommand::Train(a)) => model::run_train(a),
        Command::Model(model::ModelCommand::Evaluate(a)) => model::run_evaluate(a),
        Command::Model(model::ModelCommand::Explain(a)) => model::run_explain(a),
        Command::Model(model::ModelCommand::Synth(a)) => model::run_synth(a),
        Command::Recommend(a) => model::run_recommend(a),
        Command::Flow(flow::FlowCommand::Run(a)) => flow::run_run(a),
        Command::Treasury(treasury::TreasuryCommand::Report(a)) => treasury::run_report(a),
        Command::Treasury(treasury::TreasuryCommand::Runway(a)) => treasury::run_runway(a),
        Command::Treasury(treasury::TreasuryCommand::Stress(a)) => treasury::run_stress(a),
        Command::Treasury(treasury::TreasuryCommand::Optimize(a)) => treasury::run_optimize(a),
        Command::Treasury(treasury::TreasuryCommand::Rebalance(a)) => treasury::run_rebalance(a),
        Command::Treasury(treasury::TreasuryCommand::Backtest(a)) => treasury::run_backtest(a),
        Command::Gov(c) => match c {
            gov::GovCommand::Init(a) => gov::run_init(a),
            gov::GovCommand::Propose(a) => gov::run_propose(a),
            gov::GovCommand::Vote(a) => gov::run_vote(a),
            gov::GovCommand::Delegate(a) => gov::run_delegate(a),
            gov::GovCommand::Queue(a) => gov::run_queue(a),
            gov::GovCommand::Execute(a) => gov::run_execute(a),
            gov::GovCommand::Cancel(a) => gov::run_cancel(a),
            gov::GovCommand::Submit(a) => gov::run_submit(a),
            gov::GovCommand::Status(a) => gov::run_status(a),
            gov::GovCommand::Pause(a) => gov::run_pause(a),
            gov::GovCommand::Audit(gov::AuditCommand::Verify(a)) => gov::run_audit_verify(a),
            gov::GovCommand::Audit(gov::AuditCommand::Anchor(a)) => gov::run_audit_anchor(a),
            gov::GovCommand::Audit(gov::AuditCommand::Export(a)) => gov::run_audit_export(a),
            gov::GovCommand::Decision(a) => gov::run_decision(a),
            gov::GovCommand::Keys(gov::KeysCommand::New { out }) => gov::run_keys_new(out),
            gov::GovCommand::Stress(a) => gov::run_stress(a),
        },
        Command::Flow(flow::FlowCommand::Simulate(a)) => flow::run_simulate(a),
        Command::Flow(flow::FlowCommand::Fit(a)) => flow::run_fit(a),
        Command::Flow(flow::FlowCommand::Score(a)) => flow::run_score(a),
        Command::Flow(flow::FlowCommand::Tune(a)) => flow::run_tune(a),
    };
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
