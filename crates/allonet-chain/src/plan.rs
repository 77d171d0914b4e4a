//! Payout plans: who gets how many token units, on which chain, identified by a digest that the contract
//! records with every batch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use allonet_core::{digest, Digest, InputError, Table, TokenAmount};
use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};

/// Schema tag of plan files.
pub const PLAN_SCHEMA: &str = "allonet.payout-plan/1";

/// One payment of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Recipient address (EIP-55 checksummed in files).
    pub recipient: String,
    /// Token base units.
    pub amount: TokenAmount,
    /// Chain name from the chains config; absent means the default chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// What the payment is for (project id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The token a plan pays in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanToken {
    pub symbol: String,
    pub decimals: u8,
}

/// A payout plan as stored in a file. `digest` is keccak-256 of the canonical JSON of everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutPlan {
    pub schema: String,
    pub token: PlanToken,
    /// Digest of the result this plan pays out (e.g. a round's output digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Digest>,
    pub payments: Vec<Payment>,
    /// Sum of all payments.
    pub total: TokenAmount,
    pub digest: Digest,
}

#[derive(Serialize)]
struct PlanBody<'a> {
    schema: &'a str,
    token: &'a PlanToken,
    source: &'a Option<Digest>,
    payments: &'a [Payment],
    total: &'a TokenAmount,
}

/// A validated payment: parsed address and amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pay {
    pub recipient: Address,
    pub amount: U256,
}

impl PayoutPlan {
    /// Build a plan (computes total and digest), validating every payment.
    pub fn new(token: PlanToken, source: Option<Digest>, payments: Vec<Payment>) -> Result<Self, InputError> {
        let mut plan = PayoutPlan {
            schema: PLAN_SCHEMA.into(),
            token,
            source,
            payments,
            total: TokenAmount::default(),
            digest: Digest(B256::ZERO),
        };
        plan.total = plan.check_payments("plan")?;
        plan.digest = plan.body_digest();
        Ok(plan)
    }

    fn body_digest(&self) -> Digest {
        digest(&PlanBody {
            schema: &self.schema,
            token: &self.token,
            source: &self.source,
            payments: &self.payments,
            total: &self.total,
        })
    }

    /// Validate payments: addresses, positive amounts, no recipient twice on one chain. Returns the total.
    fn check_payments(&self, name: &str) -> Result<TokenAmount, InputError> {
        let mut seen = BTreeSet::new();
        let mut total = TokenAmount::default();
        for (i, p) in self.payments.iter().enumerate() {
            let at = |m: String| InputError::file(name, format!("payments[{i}]: {m}"));
            let a = allonet_core::Address::parse(&p.recipient).map_err(|e| at(format!("recipient: {e}")))?;
            if a.0 == Address::ZERO {
                return Err(at("recipient is the zero address".into()));
            }
            if p.amount.is_zero() {
                return Err(at("amount must be positive".into()));
            }
            if !seen.insert((p.chain.clone(), a.0)) {
                return Err(at(format!("{} appears twice on the same chain; merge the payments", a.to_checksum())));
            }
            total = total.checked_add(p.amount).ok_or_else(|| at("total overflows 256 bits".into()))?;
        }
        if self.payments.is_empty() {
            return Err(InputError::file(name, "the plan has no payments"));
        }
        Ok(total)
    }

    /// Load a plan file: schema, payments, total and digest are all checked.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let name = path.display().to_string();
        let plan: PayoutPlan = allonet_core::input::read_json(path)?;
        if plan.schema != PLAN_SCHEMA {
            return Err(InputError::file(&name, format!("schema is {:?}, expected {PLAN_SCHEMA:?}", plan.schema)));
        }
        let total = plan.check_payments(&name)?;
        if total != plan.total {
            return Err(InputError::file(&name, format!("total is {} but the payments sum to {}", plan.total, total)));
        }
        let d = plan.body_digest();
        if d != plan.digest {
            return Err(InputError::file(
                &name,
                format!(
                    "digest is {} but the plan's contents hash to {d}: the file was edited after it was made",
                    plan.digest
                ),
            ));
        }
        Ok(plan)
    }

    /// Write the plan as pretty JSON.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self).expect("plan serialises") + "\n")
    }

    /// The digest as the 32 bytes the contract records.
    pub fn digest_bytes(&self) -> B256 {
        self.digest.0
    }

    /// Payments grouped by chain name (`None` = default chain), in plan order.
    pub fn by_chain(&self) -> BTreeMap<Option<String>, Vec<Pay>> {
        let mut out: BTreeMap<Option<String>, Vec<Pay>> = BTreeMap::new();
        for p in &self.payments {
            let recipient = allonet_core::Address::parse(&p.recipient).expect("validated").0;
            out.entry(p.chain.clone()).or_default().push(Pay { recipient, amount: p.amount.units() });
        }
        out
    }
}

/// Read `id,address[,chain]` rows: which address (and chain) receives each project's payment.
pub fn read_address_book(path: &Path) -> Result<BTreeMap<String, (String, Option<String>)>, InputError> {
    let t = Table::read(path)?;
    let id = t.require_one_of(&["id", "project", "project_id"], "project id")?;
    let addr = t.require_one_of(&["address", "recipient", "payout_address"], "address")?;
    let chain = t.find_column(&["chain"]);
    let mut book = BTreeMap::new();
    for row in t.rows() {
        let a = allonet_core::Address::parse(row.get(addr)).map_err(|e| t.error(row, addr, e.to_string()))?;
        let c = chain.map(|c| row.get(c).to_string()).filter(|c| !c.is_empty());
        if book.insert(row.get(id).to_string(), (a.to_checksum(), c)).is_some() {
            return Err(t.error(row, id, format!("project {:?} listed twice", row.get(id))));
        }
    }
    Ok(book)
}
