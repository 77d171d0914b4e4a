//! `allonet agent`: the funding agent's epochs, stage by stage, with checkpoints.

use std::path::PathBuf;

use allonet_agent::{Agent, Stage, Step};
use anyhow::Result;
use clap::{Args, Subcommand};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::output::Progress;

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Make a folder the agent runs in: with --example, a runnable DAO setup from real data.
    #[command(
        after_help = "The example: the 230 Optimism RF4 projects in three pools, votes from the real RF4 ballots, the\nprojects' impact metrics, a seeded forest trained on them, a governance database in which a proposal\nactivated that model, a treasury, and one allocator per pool on two embedded chains.\n\nExamples:\n  allonet agent init agent --example\n  allonet agent init my-dao          # agent.toml to fill in"
    )]
    Init(InitArgs),
    /// Run epochs: every stage of the open epoch (or of a new one), checkpointed stage by stage.
    #[command(
        after_help = "Stages: observe → score → recommend → allocate → treasury → propose → await → execute → reconcile → report. Each is recorded in DIR/agent.db before the next starts; after a crash, `run` or `step` resumes at the first stage not recorded. While governance has the DAO paused, no stage runs. A wait for the members' decision or a veto window ends the run without error; the next run resumes there.\n\nExamples:\n  allonet agent run agent\n  allonet agent run agent --dry-run\n  allonet agent run agent --every 6h\n  allonet agent run agent --epochs 3 --json"
    )]
    Run(RunArgs),
    /// Run the next stage only.
    Step(DirArgs),
    /// Every epoch's stage, and its report's digest once written.
    Status(DirArgs),
    /// An epoch's report (the last finished one by default): Markdown, or --json.
    Report(ReportArgs),
    /// The kill switch, with the guardian's key: no stage runs from the next step on; only the members lift it.
    #[command(after_help = "Example:\n  allonet agent pause agent --key guardian.json\n  allonet agent resume agent")]
    Pause(PauseArgs),
    /// File the proposal that lifts the kill switch (signed by the agent's key unless --key); members must pass it.
    Resume(ResumeArgs),
    /// The guardian's watch: cancel any plan queued on the DAO's allocators that governance does not allow.
    #[command(
        after_help = "On chain the agent's key may queue any plan within the standing caps; the veto window is there for the guardian to cancel what the members did not allow. A queued plan stands only if it is a plan of one of the agent's recorded epochs (its digest and on-chain id recomputed), the members did not veto it, and either the members approved it or, in autonomous mode, it is the current epoch's plan routed under the standing caps. Anything else is cancelled with the guardian's key, those that may pay soonest first. With --pause-on-foreign, a plan that is no epoch's at all (the agent's key was used by someone else) also pulls the kill switch. Run it more often than the veto window (e.g. --every 10m beside `agent run --every`); a failing node does not end the loop.\n\nExamples:\n  allonet agent guard agent --key guardian.json\n  allonet agent guard agent --key guardian.json --every 10m --pause-on-foreign --json"
    )]
    Guard(GuardArgs),
}

#[derive(Args)]
pub struct GuardArgs {
    #[command(flatten)]
    pub d: DirArgs,
    /// The guardian's key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Keep watching: a pass every DURATION (`90s`, `10m`, `6h`); keep it shorter than the veto window.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Also pull the kill switch (`agent pause`) when a queued plan is no recorded epoch's plan.
    #[arg(long)]
    pub pause_on_foreign: bool,
}

pub fn run_guard(a: &GuardArgs) -> Result<()> {
    let agent = Agent::open(&a.d.dir)?;
    let guardian = allonet_engine::keys::load_key_file(&a.key)?;
    let period = a.every.as_deref().map(parse_duration).transpose()?;
    loop {
        let pass = agent.guard(&guardian);
        let mut failed = match &pass {
            Ok(w) => {
                print_watch(w, a.d.json)?;
                w.failed.len()
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        };
        let foreign = pass.as_ref().map_or(0, |w| w.plans.iter().filter(|p| p.digest.is_none()).count());
        if a.pause_on_foreign && foreign > 0 && !agent.paused()? {
            // Someone queued with the agent's key a plan no epoch made: stop everything until the members decide.
            match agent.pause(&guardian) {
                Ok(allocators) => eprintln!(
                    "PAUSED: {foreign} queued plan(s) are no epoch's plan (the agent's key was used by someone else); \
                     the DAO and {} allocator(s) are paused until the members pass an unpause",
                    allocators.len()
                ),
                Err(e) => {
                    eprintln!("error: pulling the kill switch: {e}");
                    failed += 1;
                }
            }
        }
        match period {
            // Watching goes on whatever one pass met: a flaky node must not end the watch.
            Some(p) => std::thread::sleep(p),
            None if failed > 0 => anyhow::bail!("{failed} allocator(s) or plan(s) could not be watched or cancelled"),
            None => return Ok(()),
        }
    }
}

fn print_watch(w: &allonet_agent::Watch, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(w)?);
        return Ok(());
    }
    if w.plans.is_empty() {
        println!("no plan is queued on the DAO's allocators");
    } else {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(["pool", "chain", "plan id", "digest", "action", "why"]);
        for p in &w.plans {
            t.add_row([
                p.pool.clone(),
                p.chain_id.to_string(),
                short(&p.plan_id.to_string()),
                p.digest.map_or_else(|| "unknown".to_string(), |d| short(&d.to_string())),
                p.action.to_uppercase(),
                p.reason.clone(),
            ]);
        }
        println!("{t}");
    }
    for f in &w.failed {
        eprintln!("not watched: {f}");
    }
    Ok(())
}

/// `0x1234…abcd`.
fn short(h: &str) -> String {
    if h.len() > 14 {
        format!("{}…{}", &h[..6], &h[h.len() - 4..])
    } else {
        h.to_string()
    }
}

#[derive(Args)]
pub struct PauseArgs {
    /// The agent's folder.
    pub dir: PathBuf,
    /// The guardian's key file.
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Args)]
pub struct ResumeArgs {
    /// The agent's folder.
    pub dir: PathBuf,
    /// Who files the proposal (default: the agent's own key).
    #[arg(long)]
    pub key: Option<PathBuf>,
}

pub fn run_pause(a: &PauseArgs) -> Result<()> {
    let agent = Agent::open(&a.dir)?;
    let guardian = allonet_engine::keys::load_key_file(&a.key)?;
    let allocators = agent.pause(&guardian)?;
    println!(
        "PAUSED: the agent runs no stage until the members pass a proposal to unpause (allonet agent resume); {} \
         allocator(s) paused on chain, so no queued payment executes (their owner unpauses them)",
        allocators.len()
    );
    Ok(())
}

pub fn run_resume(a: &ResumeArgs) -> Result<()> {
    let agent = Agent::open(&a.dir)?;
    let key = match &a.key {
        Some(k) => allonet_engine::keys::load_key_file(k)?,
        None => agent.key()?,
    };
    let id = agent.propose_resume(&key)?;
    println!("proposal {id} filed: the agent resumes once the members pass it (allonet gov vote … --proposal {id})");
    Ok(())
}

#[derive(Args)]
pub struct InitArgs {
    /// The folder (created; must not hold an agent yet).
    pub dir: PathBuf,
    /// Write the runnable example instead of a template.
    #[arg(long)]
    pub example: bool,
    /// With --example: put the base chain (the USDC pool) on this development node instead of an embedded EVM,
    /// e.g. a local `anvil --chain-id 8453`. Its allocator is then owned by its own timelock, and an on-chain
    /// proposal (voted by anvil's dev account 0) sets the agent's caps, veto delay and registry.
    #[arg(long, value_name = "URL", requires = "example")]
    pub base_rpc: Option<String>,
}

#[derive(Args)]
pub struct DirArgs {
    /// The agent's folder (agent.toml, agent.db).
    pub dir: PathBuf,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub d: DirArgs,
    /// Epochs to finish.
    #[arg(long, default_value_t = 1)]
    pub epochs: u64,
    /// Work the epoch out on a copy of the folder (DAO, chains, checkpoints) and print each pool's payments,
    /// allocator balance before and after, and queue calldata; nothing in DIR or on any chain changes.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep running: an epoch every DURATION (`90s`, `10m`, `6h`, `7d`), retrying a wait (a decision, a veto
    /// window) every tick of a second; the kill switch stops the loop within a tick.
    #[arg(long, value_name = "DURATION", conflicts_with = "dry_run")]
    pub every: Option<String>,
}

/// `90s`, `10m`, `6h`, `7d` (or plain seconds).
fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (n, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: u64 = n.parse().map_err(|_| anyhow::anyhow!("--every {s}: not a duration such as 90s, 10m, 6h or 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--every {s}: unit `{unit}` is not s, m, h or d"),
    };
    if secs == 0 {
        anyhow::bail!("--every {s}: must be at least a second");
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// The loop of `agent run --every`: epochs on a schedule until the kill switch is pulled.
fn run_every(a: &RunArgs, every: &str) -> Result<()> {
    use allonet_agent::AgentError;
    let period = parse_duration(every)?;
    let tick = std::time::Duration::from_secs(1);
    let mut agent = Agent::open(&a.d.dir)?;
    let mut next = std::time::Instant::now();
    loop {
        if agent.paused()? {
            println!("PAUSED: the loop stops (the kill switch is on; the members lift it: allonet agent resume)");
            return Ok(());
        }
        if std::time::Instant::now() >= next {
            match agent.run_epoch(|s| println!("{}", stage_line(s))) {
                Ok(r) => {
                    println!("epoch {} finished: report reports/epoch-{:06}.md", r.epoch, r.epoch);
                    next += period;
                }
                Err(e @ (AgentError::Waiting { .. } | AgentError::VetoWindow { .. })) => {
                    println!("{e}");
                    next = std::time::Instant::now() + tick;
                }
                Err(AgentError::Paused) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        std::thread::sleep(tick);
    }
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub d: DirArgs,
    /// The epoch (default: the last with a report).
    pub epoch: Option<u64>,
    /// Also write an HTML page (charts of each project's funding by pool and utility, the decision, every input's
    /// digest; no external resources) to FILE. The allocation is recomputed from the epoch's records first.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

pub fn run_init(a: &InitArgs) -> Result<()> {
    let progress = Progress::new(true);
    if a.example {
        progress.stage("writing the example: training the model, creating the DAO and activating the model");
    }
    let o = allonet_agent::example::ExampleOptions { base_rpc: a.base_rpc.clone(), ..Default::default() };
    allonet_agent::example::init_with(&a.dir, a.example, o)?;
    progress.finish();
    if a.example {
        println!(
            "wrote the example agent in {} (agent.toml, allocate.toml, votes.json, features.csv, models/, dao.db)\n\
             next: allonet agent run {}",
            a.dir.display(),
            a.dir.display()
        );
    } else {
        println!(
            "wrote {}; fill it in, then: allonet agent run {}",
            a.dir.join("agent.toml").display(),
            a.dir.display()
        );
    }
    Ok(())
}

fn stage_line(s: &Step) -> String {
    format!("epoch {} · {:<9} · {}", s.epoch, s.stage.name(), s.digest)
}

pub fn run_run(a: &RunArgs) -> Result<()> {
    if let Some(every) = &a.every {
        return run_every(a, every);
    }
    if a.dry_run {
        let dry = allonet_agent::dry_run(&a.d.dir)?;
        if a.d.json {
            println!("{}", serde_json::to_string_pretty(&dry)?);
            return Ok(());
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec![
            "pool",
            "chain",
            "token",
            "payments",
            "pays (base units)",
            "allocator balance before → after",
        ]);
        for p in &dry.pools {
            t.add_row(vec![
                p.pool.clone(),
                p.chain.clone().unwrap_or_default(),
                p.token.clone(),
                p.payments.len().to_string(),
                p.total.clone(),
                match (&p.balance_before, &p.balance_after) {
                    (Some(b), Some(a)) => format!("{b} → {a}"),
                    _ => "no [payouts] entry".into(),
                },
            ]);
        }
        println!("dry run of epoch {} (on a copy: nothing filed, sent or recorded)\n{t}", dry.epoch);
        let mode = dry.propose["mode"].as_str().unwrap_or("advise");
        match dry.propose["proposal"].as_str() {
            Some(id) => println!(
                "{mode} mode: would file proposal {id}: {}",
                dry.propose["description"].as_str().unwrap_or_default()
            ),
            None => println!("{mode} mode: no proposal would be filed"),
        }
        for p in dry.propose["plans"].as_array().into_iter().flatten() {
            if let Some(route) = p["route"].as_str() {
                println!("  {}: {route}", p["pool"].as_str().unwrap_or_default());
            }
        }
        for p in &dry.pools {
            println!("{} queuePlan calldata: {}", p.pool, p.queue_calldata);
        }
        if let Some(swaps) = dry.rebalance["ops"]["swaps"].as_array() {
            let mut r = Table::new();
            r.load_preset(UTF8_FULL_CONDENSED);
            r.set_header(vec!["treasury swap", "value", "amount in", "expected out", "least out", "impact (bp)"]);
            for x in swaps {
                r.add_row(vec![
                    format!("{} → {}", x["sell"].as_str().unwrap_or_default(), x["buy"].as_str().unwrap_or_default()),
                    format!("{:.0}", x["value"].as_f64().unwrap_or_default()),
                    x["amount_in"].as_str().unwrap_or_default().to_string(),
                    x["expected_out"].as_str().unwrap_or_default().to_string(),
                    x["min_out"].as_str().unwrap_or_default().to_string(),
                    format!("{:.1}", x["impact_bp"].as_f64().unwrap_or_default()),
                ]);
            }
            println!(
                "the treasury is outside its bands: the rebalance {} would be proposed\n{r}",
                dry.rebalance["digest"].as_str().unwrap_or_default()
            );
        }
        return Ok(());
    }
    let mut agent = Agent::open(&a.d.dir)?;
    let progress = Progress::new(!a.d.json);
    let mut reports = Vec::new();
    for _ in 0..a.epochs {
        let r = agent.run_epoch(|s| {
            progress.stage(format!("epoch {}: {} done", s.epoch, s.stage.name()));
            if !a.d.json {
                progress.println(stage_line(s));
            }
        });
        match r {
            Ok(r) => reports.push(r),
            // Waiting for the members' decision or a veto window is not a failure: the next run resumes there.
            Err(e @ (allonet_agent::AgentError::Waiting { .. } | allonet_agent::AgentError::VetoWindow { .. })) => {
                progress.finish();
                if a.d.json {
                    println!("{}", serde_json::to_string_pretty(&agent.status()?)?);
                } else {
                    println!("{e}");
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    progress.finish();
    if a.d.json {
        println!("{}", serde_json::to_string_pretty(&agent.status()?)?);
        return Ok(());
    }
    for r in &reports {
        let lines = r.reconciliation["plans"].as_array().cloned().unwrap_or_default();
        let paid = lines.iter().filter(|l| l["paid"].as_str().is_some_and(|p| p != "0")).count();
        let decided = match (r.decision.get("approved").and_then(|v| v.as_bool()), paid) {
            (_, n) if n > 0 => format!("{n} of {} plans paid", r.plans.len()),
            (Some(true), _) => "approved, nothing paid".to_string(),
            (Some(false), _) => "not approved: nothing paid".to_string(),
            (None, _) => "nothing filed or paid".to_string(),
        };
        println!(
            "epoch {} finished: {} plans, report reports/epoch-{:06}.md ({} mode: {decided})",
            r.epoch,
            r.plans.len(),
            r.epoch,
            serde_json::to_value(r.mode)?.as_str().unwrap_or_default()
        );
    }
    Ok(())
}

pub fn run_step(a: &DirArgs) -> Result<()> {
    let mut agent = Agent::open(&a.dir)?;
    let s = agent.step()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("{}", stage_line(&s));
    }
    Ok(())
}

pub fn run_status(a: &DirArgs) -> Result<()> {
    let agent = Agent::open(&a.dir)?;
    let st = agent.status()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    if st.is_empty() {
        println!("no epoch yet: allonet agent run {}", a.dir.display());
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["epoch", "stages done", "next", "report"]);
    for e in &st {
        t.add_row(vec![
            e.epoch.to_string(),
            format!("{}/{}", e.done.len(), Stage::ALL.len()),
            e.next.map(|s| s.name().to_string()).unwrap_or_else(|| "finished".into()),
            e.report.map(|d| d.to_string()).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    if let Some(last) = st.iter().rev().find(|e| !e.pools.is_empty()) {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec!["epoch", "pool", "chain", "token", "planned (base units)", "paid (base units)"]);
        for p in &last.pools {
            t.add_row(vec![
                last.epoch.to_string(),
                p.pool.clone(),
                p.chain.clone().unwrap_or_default(),
                p.token.clone(),
                p.planned.clone(),
                p.paid.clone(),
            ]);
        }
        println!("{t}");
    }
    Ok(())
}

pub fn run_report(a: &ReportArgs) -> Result<()> {
    let agent = Agent::open(&a.d.dir)?;
    let epoch =
        match a.epoch {
            Some(e) => e,
            None => {
                agent.status()?.iter().rev().find(|e| e.report.is_some()).map(|e| e.epoch).ok_or_else(|| {
                    anyhow::anyhow!("no epoch has a report yet: allonet agent run {}", a.d.dir.display())
                })?
            }
        };
    let r = agent.report(epoch)?;
    if let Some(path) = &a.html {
        let (p, alloc) = agent.recompute_allocation(epoch)?;
        crate::output::write_atomic(path, html(&r, &p, &alloc).as_bytes())?;
        eprintln!("wrote {} (allocation recomputed: plan {})", path.display(), alloc.plan_digest);
    }
    if a.d.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let d = allonet_core::digest(&serde_json::to_value(&r)?);
        print!("{}", allonet_agent::report::markdown(&r, d));
    }
    Ok(())
}

/// The epoch's page: what went in and what was decided, then the allocation's charts and table.
fn html(r: &allonet_agent::EpochReport, p: &allonet_allocate::Problem, a: &allonet_allocate::Allocation) -> String {
    use allonet_report::html::{esc, page};
    let h = crate::allocate::html_parts(p, a);
    let d = allonet_core::digest(&serde_json::to_value(r).unwrap_or_default());
    let mut summary = vec![
        format!(
            "report {d} · mode {}",
            serde_json::to_value(r.mode).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        ),
        format!(
            "governance: DAO {} · log of {} entries ending {} · model {}",
            r.governance.dao,
            r.governance.log_entries,
            r.governance.log_head,
            r.model.map(|m| m.to_string()).unwrap_or_else(|| "none".into())
        ),
    ];
    match &r.weights {
        Some(w) => summary.push(format!(
            "signals mixed as governance set: {}",
            w.iter().map(|(k, bp)| format!("{k} {:.2}", *bp as f64 / 10_000.0)).collect::<Vec<_>>().join(", ")
        )),
        None => summary.push("signals mixed as the instance file says (governance set no mix)".into()),
    }
    if let Some(id) = r.decision.get("proposal").and_then(|v| v.as_str()) {
        summary.push(format!(
            "proposal {id}: {}",
            match r.decision.get("approved").and_then(|v| v.as_bool()) {
                Some(true) => "approved by the members",
                Some(false) => "not approved",
                None => "awaiting the members",
            }
        ));
    }
    summary.extend(h.summary);
    let mut inputs = String::from(
        "<h2>Inputs</h2><table><thead><tr><th>input</th><th>file</th><th>keccak-256</th></tr></thead><tbody>",
    );
    for i in &r.inputs {
        inputs += &format!(
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&i.name),
            esc(&i.file),
            i.digest
        );
    }
    inputs += "</tbody></table><h2>Plans</h2><table><thead><tr><th>pool</th><th>chain</th><th>token</th><th>payments</th><th>total (base units)</th><th>plan digest</th></tr></thead><tbody>";
    for pl in &r.plans {
        inputs += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
            esc(&pl.pool),
            esc(pl.chain.as_deref().unwrap_or("-")),
            esc(&pl.token),
            pl.payments,
            pl.total,
            pl.digest
        );
    }
    inputs += "</tbody></table>";
    if let Some(swaps) = r.rebalance["ops"]["swaps"].as_array() {
        let done = r.rebalance["executed"].as_array();
        inputs += &format!(
            "<h2>Treasury rebalance</h2><p>Swaps digest <code>{}</code>: {}.</p><table><thead><tr><th>swap</th><th>value</th><th>amount in</th><th>least out</th><th>impact (bp)</th><th>paid out</th></tr></thead><tbody>",
            esc(r.rebalance["digest"].as_str().unwrap_or_default()),
            match r.rebalance["approved"].as_bool() {
                Some(true) => "approved by the members",
                Some(false) => "not approved",
                None => "drafted",
            }
        );
        for (i, x) in swaps.iter().enumerate() {
            let paid = done.and_then(|d| d.get(i)).and_then(|d| d["amount_out"].as_str()).unwrap_or("-");
            inputs += &format!(
                "<tr><td>{} → {}</td><td class=\"n\">{:.0}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td></tr>",
                esc(x["sell"].as_str().unwrap_or_default()),
                esc(x["buy"].as_str().unwrap_or_default()),
                x["value"].as_f64().unwrap_or_default(),
                esc(x["amount_in"].as_str().unwrap_or_default()),
                esc(x["min_out"].as_str().unwrap_or_default()),
                x["impact_bp"].as_f64().unwrap_or_default(),
                esc(paid)
            );
        }
        inputs += "</tbody></table>";
    }
    if !r.transactions.is_empty() {
        inputs += "<h2>Transactions</h2><table><thead><tr><th>pool</th><th>what</th><th>block</th><th>gas</th><th>transaction</th></tr></thead><tbody>";
        for t in &r.transactions {
            let what = match (t["batch"].as_u64(), t["swap"].as_str()) {
                (Some(b), _) => format!("batch {b}"),
                (None, Some(sw)) => format!("swap {sw}"),
                _ => t["kind"].as_str().unwrap_or_default().to_string(),
            };
            inputs += &format!(
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
                esc(t["pool"].as_str().unwrap_or_default()),
                esc(&what),
                t["block"],
                t["gas_used"],
                esc(t["tx_hash"].as_str().unwrap_or_default())
            );
        }
        inputs += "</tbody></table>";
    }
    let header: Vec<&str> = h.header.iter().map(String::as_str).collect();
    page(&format!("{}: epoch {}", r.agent, r.epoch), &summary, &(inputs + &h.body), &header, &h.rows)
}

/// The demo's last step: one epoch of the example agent in propose mode. Governance sets the mix (AI 0.6, votes
/// 0.4), the agent files its three pool plans, the members pass them, the agent queues them on two embedded
/// chains, the veto window passes, and it pays and reconciles. The example DAO votes for one second here.
pub fn demo() -> Result<String> {
    use allonet_agent::example::{advance_chains, init_with, members_decide, members_pass, ExampleOptions};
    use allonet_agent::AgentError;
    use allonet_governance::governor::{Action, AgentMode, AgentPolicy};
    let dir = std::env::temp_dir().join(format!("allonet-demo-agent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = || -> Result<String> {
        init_with(&dir, true, ExampleOptions { voting_period: 1, timelock_delay: 1, copies: 1, ..Default::default() })?;
        let weights = [("ai".to_string(), 6_000), ("qv".to_string(), 4_000)].into_iter().collect();
        let policy = Action::SetAgentPolicy { policy: AgentPolicy { mode: AgentMode::Propose, weights } };
        members_pass(&dir, vec![policy], "The agent proposes its plans; AI 60 %, quadratic vote 40 %")?;
        let mut agent = Agent::open(&dir)?;
        let mut stages = Vec::new();
        let proposal = match agent.run_epoch(|s| stages.push(s.stage)) {
            Err(AgentError::Waiting { proposal, .. }) => proposal,
            Err(e) => return Err(e.into()),
            Ok(_) => anyhow::bail!("the agent paid without a decision"),
        };
        members_decide(&dir, proposal, 1)?;
        match agent.run_epoch(|s| stages.push(s.stage)) {
            Err(AgentError::VetoWindow { .. }) => {}
            Err(e) => return Err(e.into()),
            Ok(_) => anyhow::bail!("the agent paid inside the veto window"),
        }
        // Inside the window, the guardian's watch checks every queued plan against governance.
        let guardian = allonet_engine::offchain::member_key(allonet_agent::example::EXAMPLE_SEED, 11);
        let watched = agent.guard(&guardian)?.plans;
        if watched.is_empty() || watched.iter().any(|w| w.action != "kept") {
            anyhow::bail!("the guardian's watch did not keep the members' plans: {watched:?}");
        }
        advance_chains(&dir, 3_601)?;
        let r = agent.run_epoch(|s| stages.push(s.stage))?;
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec!["pool", "chain", "token", "payments", "paid (base units)", "= plan"]);
        for (plan, line) in r.plans.iter().zip(r.reconciliation["plans"].as_array().into_iter().flatten()) {
            let paid = line["paid"].as_str().unwrap_or("0");
            t.add_row(vec![
                plan.pool.clone(),
                plan.chain.clone().unwrap_or_default(),
                plan.token.clone(),
                plan.payments.to_string(),
                paid.to_string(),
                if paid == plan.total { "yes".into() } else { format!("NO (plan {})", plan.total) },
            ]);
        }
        let names: Vec<&str> = allonet_agent::Stage::ALL.iter().map(|s| s.name()).collect();
        let swaps = r.rebalance["executed"].as_array().map_or(0, |x| x.len());
        let gas: u64 = r.transactions.iter().filter_map(|t| t["gas_used"].as_u64()).sum();
        Ok(format!(
            "\n10. The funding agent: one epoch of `allonet agent init --example` in propose mode, the mix set by governance\n\
             \x20   (AI recommendation 0.6, quadratic vote 0.4). Stages: {}.\n\
             \x20   The agent filed proposal {proposal}\n\
             \x20   for the three pool plans and the treasury's rebalance under its own key; eight of twelve members passed it;\n\
             \x20   the agent queued each plan under the standing caps on its chain (two embedded chains); inside the one-hour\n\
             \x20   veto window the guardian's watch (`allonet agent guard`) kept all {} (each approved by the members); then\n\
             \x20   the agent paid and reconciled:\n{t}\n\
             \x20   The treasury's ETH was above its band: {swaps} Uniswap v2 swaps, each with its approved least output, ran\n\
             \x20   from the treasury account (and were written as a Safe batch). {} transactions, {gas} gas.\n\
             \x20   report {}\n",
            names.join(" → "),
            watched.len(),
            r.transactions.len(),
            allonet_core::digest(&serde_json::to_value(&r)?)
        ))
    };
    let out = run();
    let _ = std::fs::remove_dir_all(&dir);
    out
}
