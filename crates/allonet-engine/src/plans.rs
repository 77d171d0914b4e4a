//! From a mechanism result to a payout plan.
//!
//! A result file (written by `round`, `retro` or `tally` with `-o`) carries its result and the digest of it. A
//! plan is made only from a result whose digest recomputes: a round's lines and totals are parsed into the typed
//! [`RoundResult`] and hashed again with [`round_output_digest`]; other results are hashed from their body. A
//! hand-edited amount therefore changes nothing but the error message. Recipients come from an address book
//! (`id,address[,chain]`), never from free text in the result.

use std::collections::BTreeMap;
use std::path::Path;

use allonet_chain::plan::{read_address_book, Payment, PayoutPlan, PlanToken};
use allonet_core::{digest, Address, Digest, InputError, Table, Token, TokenAmount};
use allonet_mechanisms::round::{round_output_digest, RoundResult};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// A result with what it was computed from; the unit `allonet verify` checks and plans are made from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ResultFile {
    /// allonet version that wrote it.
    pub allonet: String,
    /// `round`, `retro` or `tally`.
    pub command: String,
    /// The command's options, input paths included.
    pub options: serde_json::Value,
    /// keccak-256 of the canonical parsed inputs and parameters.
    pub input_digest: Digest,
    /// keccak-256 of the canonical result.
    pub output_digest: Digest,
    /// The result itself.
    pub result: serde_json::Value,
}

impl ResultFile {
    /// A result file of this allonet version.
    pub fn new<O: Serialize, R: Serialize>(
        command: &str,
        options: &O,
        input_digest: Digest,
        output_digest: Digest,
        result: &R,
    ) -> Result<Self, serde_json::Error> {
        Ok(ResultFile {
            allonet: env!("CARGO_PKG_VERSION").to_string(),
            command: command.to_string(),
            options: serde_json::to_value(options)?,
            input_digest,
            output_digest,
            result: serde_json::to_value(result)?,
        })
    }

    /// Read a result file.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        Ok(allonet_core::input::read_json(path)?)
    }

    /// Recompute the output digest from the result body; refuse a file whose body does not hash to it.
    pub fn check_digest(&self, name: &str) -> Result<Digest, EngineError> {
        let fresh = match self.command.as_str() {
            "round" => {
                let r: RoundResult = serde_json::from_value(self.result.clone())
                    .map_err(|e| InputError::file(name, format!("result: not a round result ({e})")))?;
                let d = round_output_digest(&r);
                if r.output_digest != d {
                    return Err(tampered(name, r.output_digest, d));
                }
                d
            }
            _ => digest(&self.result),
        };
        if fresh != self.output_digest {
            return Err(tampered(name, self.output_digest, fresh));
        }
        Ok(fresh)
    }
}

fn tampered(name: &str, recorded: Digest, fresh: Digest) -> EngineError {
    EngineError::Input(InputError::file(
        name,
        format!(
            "the result hashes to {fresh} but records output digest {recorded}: it was edited after it was computed \
             (recompute it, or check it with `allonet verify`)"
        ),
    ))
}

/// (project, base units) lines and the token of a result, whatever command wrote it.
fn result_lines(v: &serde_json::Value) -> Option<(Vec<(String, String)>, PlanToken)> {
    fn token(v: &serde_json::Value) -> Option<PlanToken> {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(t) = m.get("token") {
                    if let (Some(s), Some(d)) =
                        (t.get("symbol").and_then(|s| s.as_str()), t.get("decimals").and_then(|d| d.as_u64()))
                    {
                        return Some(PlanToken { symbol: s.to_string(), decimals: u8::try_from(d).ok()? });
                    }
                }
                m.values().find_map(token)
            }
            _ => None,
        }
    }
    fn lines(v: &serde_json::Value) -> Option<Vec<(String, String)>> {
        match v {
            serde_json::Value::Array(a) if !a.is_empty() => a
                .iter()
                .map(|x| {
                    let id = x.get("project").or_else(|| x.get("id"))?.as_str()?;
                    let amt = x.get("matched").or_else(|| x.get("amount"))?.as_str()?;
                    Some((id.to_string(), amt.to_string()))
                })
                .collect(),
            serde_json::Value::Object(m) => m.values().find_map(lines),
            _ => None,
        }
    }
    Some((lines(v)?, token(v)?))
}

/// A plan from a result whose digest recomputes, and an address book. Every project with a payout must have an
/// address; projects paid zero are left out.
pub fn plan_from_result(
    file: &ResultFile,
    name: &str,
    book: &BTreeMap<String, (Address, Option<String>)>,
    batch_size: u32,
) -> Result<PayoutPlan, EngineError> {
    let source = file.check_digest(name)?;
    // A round's digest covers its typed lines only: take the lines from the typed result, never from other
    // (undigested) fields of the file. Other results are digested whole.
    let (lines, token) = match file.command.as_str() {
        "round" => {
            let r: RoundResult = serde_json::from_value(file.result.clone())
                .map_err(|e| InputError::file(name, format!("result: not a round result ({e})")))?;
            let t = PlanToken { symbol: r.config.token.symbol.clone(), decimals: r.config.token.decimals };
            (r.lines.iter().map(|l| (l.project.clone(), l.matched.units().to_string())).collect(), t)
        }
        _ => result_lines(&file.result).ok_or_else(|| {
            InputError::file(name, "no payout lines (project + amount) and token found in the result")
        })?,
    };
    let mut payments = Vec::new();
    let mut missing = Vec::new();
    for (id, units) in lines {
        let amount = TokenAmount(
            units.parse::<U256>().map_err(|_| InputError::file(name, format!("amount {units:?} for {id}")))?,
        );
        if amount.is_zero() {
            continue;
        }
        match book.get(&id) {
            Some((addr, chain)) => {
                payments.push(Payment { recipient: *addr, amount, chain: chain.clone(), label: Some(id) })
            }
            None => missing.push(id),
        }
    }
    if !missing.is_empty() {
        return Err(EngineError::Config(format!(
            "{} projects with a payout have no address in the address book: {}",
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok(PayoutPlan::new(token, Some(source), batch_size, payments)?)
}

/// [`plan_from_result`] from files.
pub fn plan_from_result_file(result: &Path, addresses: &Path, batch_size: u32) -> Result<PayoutPlan, EngineError> {
    let file = ResultFile::load(result)?;
    let book = read_address_book(addresses)?;
    plan_from_result(&file, &result.display().to_string(), &book, batch_size)
}

/// A plan from a table `recipient,amount[,chain][,label]` with amounts in whole tokens.
pub fn plan_from_payments(t: &Table, token: &Token, batch_size: u32) -> Result<PayoutPlan, EngineError> {
    let r = t.require_one_of(&["recipient", "address"], "recipient")?;
    let amt = t.require_one_of(&["amount"], "amount")?;
    let chain = t.find_column(&["chain"]);
    let label = t.find_column(&["label", "project", "id"]);
    let mut payments = Vec::new();
    for row in t.rows() {
        let addr = Address::parse(row.get(r)).map_err(|e| t.error(row, r, e.to_string()))?;
        let amount = token.parse(row.get(amt)).map_err(|e| t.error(row, amt, e.to_string()))?;
        payments.push(Payment {
            recipient: addr,
            amount,
            chain: chain.map(|c| row.get(c).to_string()).filter(|c| !c.is_empty()),
            label: label.map(|c| row.get(c).to_string()).filter(|c| !c.is_empty()),
        });
    }
    Ok(PayoutPlan::new(
        PlanToken { symbol: token.symbol.clone(), decimals: token.decimals },
        None,
        batch_size,
        payments,
    )?)
}

/// A plan from a round result already in memory (the demo and the agent), addresses by project id.
pub fn plan_from_round(
    r: &RoundResult,
    address_of: &dyn Fn(&str) -> Option<Address>,
    batch_size: u32,
) -> Result<PayoutPlan, EngineError> {
    if round_output_digest(r) != r.output_digest {
        return Err(EngineError::Config("the round result does not hash to its output digest".into()));
    }
    let token = &r.config.token;
    let mut payments = Vec::new();
    for l in r.lines.iter().filter(|l| !l.matched.is_zero()) {
        let recipient = address_of(&l.project)
            .ok_or_else(|| EngineError::Config(format!("project {} has no payout address", l.project)))?;
        payments.push(Payment { recipient, amount: l.matched, chain: None, label: Some(l.project.clone()) });
    }
    Ok(PayoutPlan::new(
        PlanToken { symbol: token.symbol.clone(), decimals: token.decimals },
        Some(r.output_digest),
        batch_size,
        payments,
    )?)
}

/// How a Safe exports a plan: the Safe pays an ERC-20 or the native coin itself, or approves the plan on the
/// allocator it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeHow {
    /// Transfers of this ERC-20 (`None`: the deployment's asset).
    Token(Option<alloy_primitives::Address>),
    Native,
    ViaAllocator,
}

/// Resolve a Safe export: the chain id (given, or the deployment's), the mode, and the check that the plan's
/// decimals are the paying asset's. `created_at_ms` makes the file reproducible.
pub fn safe_export(
    plan: &PayoutPlan,
    deployment: Option<&allonet_chain::deploy::Deployment>,
    safe: alloy_primitives::Address,
    chain_id: Option<u64>,
    how: SafeHow,
    chain: Option<String>,
    created_at_ms: u64,
) -> Result<allonet_chain::safe::SafeExport, EngineError> {
    use allonet_chain::safe::{SafeExport, SafeMode};
    let cfg = |m: &str| EngineError::Config(m.to_string());
    let chain_id =
        chain_id.or(deployment.map(|d| d.chain_id)).ok_or_else(|| cfg("give --chain-id (or --deployment)"))?;
    let mode = match (how, deployment) {
        (SafeHow::ViaAllocator, Some(d)) => SafeMode::Allocator { allocator: d.allocator },
        (SafeHow::ViaAllocator, None) => return Err(cfg("--via-allocator needs --deployment")),
        (SafeHow::Native, _) => SafeMode::Transfer { asset: None },
        (SafeHow::Token(Some(t)), _) => SafeMode::Transfer { asset: Some(t) },
        (SafeHow::Token(None), Some(d)) if d.asset != alloy_primitives::Address::ZERO => {
            SafeMode::Transfer { asset: Some(d.asset) }
        }
        (SafeHow::Token(None), Some(_)) => return Err(cfg("the deployment pays in the native coin: use --native")),
        (SafeHow::Token(None), None) => {
            return Err(cfg("give --token ADDRESS, --native, or --via-allocator with --deployment"))
        }
    };
    let pays_deployment_asset = matches!(how, SafeHow::ViaAllocator | SafeHow::Token(None));
    if let (Some(d), true) = (deployment, pays_deployment_asset) {
        if d.asset_decimals != plan.token.decimals {
            return Err(EngineError::Config(format!(
                "the plan pays {} with {} decimals but the deployment's asset {} has {}",
                plan.token.symbol, plan.token.decimals, d.asset_symbol, d.asset_decimals
            )));
        }
    }
    Ok(SafeExport { chain_id, safe, created_at_ms, mode, chain })
}
