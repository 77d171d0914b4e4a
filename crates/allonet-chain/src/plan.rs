//! Payout plans: who gets how many token units, on which chain, in which batches, identified by a digest;
//! and each chain's part of a plan as the commitment the `AIAllocator` approves and pays against.
//!
//! A chain's part of a plan is cut into batches of `batch_size` payments in plan order. Batch `i` is the
//! leaf `keccak256(keccak256(abi.encode(i, recipients, amounts)))` of a Merkle tree with sorted-pair
//! keccak-256 nodes (OpenZeppelin `MerkleProof`'s rule; leaves hashed twice as in OpenZeppelin's
//! StandardMerkleTree, so an inner node can never pass for a leaf). Governance approves the triple
//! (root, total, batches); the contract binds it to its chain id, its own address and its asset
//! ([`Commitment::plan_id`]), so an approval pays nothing on another chain or allocator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use allonet_core::{digest, Digest, InputError, Table, TokenAmount};
use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_sol_types::SolValue;
use serde::{Deserialize, Serialize};

/// Schema tag of plan files.
pub const PLAN_SCHEMA: &str = "allonet.payout-plan/2";

/// Payments per batch when a plan does not say: ~51,000 gas a fresh recipient keeps a batch near 10M gas.
pub const DEFAULT_BATCH_SIZE: u32 = 200;

/// Most payments a batch may hold: 300 fresh recipients take ~15.3M gas, under EIP-7825's 2^24 per transaction.
pub const MAX_BATCH_SIZE: u32 = 300;

/// Most a plan's part on one chain may total: the allocator stores totals in 96 bits.
pub fn max_chain_total() -> U256 {
    (U256::from(1u8) << 96) - U256::from(1u8)
}

/// One payment of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Recipient address (EIP-55 checksummed in files).
    pub recipient: allonet_core::Address,
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
    /// Payments per batch on each chain (the last batch may be shorter); part of the commitment.
    pub batch_size: u32,
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
    batch_size: u32,
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
    pub fn new(
        token: PlanToken,
        source: Option<Digest>,
        batch_size: u32,
        payments: Vec<Payment>,
    ) -> Result<Self, InputError> {
        let mut plan = PayoutPlan {
            schema: PLAN_SCHEMA.into(),
            token,
            source,
            batch_size,
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
            batch_size: self.batch_size,
            payments: &self.payments,
            total: &self.total,
        })
    }

    /// Validate payments: addresses, positive amounts, no recipient twice on one chain, a batch size the
    /// contract takes, each chain's total within 96 bits. Returns the total.
    fn check_payments(&self, name: &str) -> Result<TokenAmount, InputError> {
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(InputError::file(
                name,
                format!(
                    "batch_size is {}, expected 1 to {MAX_BATCH_SIZE} (a batch of fresh recipients costs ~51,000 gas each; \
                     more would not fit EIP-7825's 16.7M gas per transaction)",
                    self.batch_size
                ),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut total = TokenAmount::default();
        let mut per_chain: BTreeMap<&Option<String>, (U256, usize)> = BTreeMap::new();
        for (i, p) in self.payments.iter().enumerate() {
            let at = |m: String| InputError::file(name, format!("payments[{i}]: {m}"));
            let a = p.recipient;
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
            let c = per_chain.entry(&p.chain).or_default();
            c.0 = c.0.saturating_add(p.amount.units());
            c.1 += 1;
            if c.0 > max_chain_total() {
                return Err(at(format!(
                    "the payments on this chain total more than {} units (2^96 - 1)",
                    max_chain_total()
                )));
            }
        }
        for (chain, &(_, n)) in &per_chain {
            if n.div_ceil(self.batch_size as usize) > u16::MAX as usize {
                return Err(InputError::file(
                    name,
                    format!("chain {chain:?} needs more than 65535 batches of {}: raise batch_size", self.batch_size),
                ));
            }
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

    /// Payments grouped by chain name (`None` = default chain), in plan order.
    pub fn by_chain(&self) -> BTreeMap<Option<String>, Vec<Pay>> {
        let mut out: BTreeMap<Option<String>, Vec<Pay>> = BTreeMap::new();
        for p in &self.payments {
            out.entry(p.chain.clone()).or_default().push(Pay { recipient: p.recipient.0, amount: p.amount.units() });
        }
        out
    }

    /// One chain's part of the plan (`None` = the default chain) as its commitment, if the plan pays there.
    pub fn commitment(&self, chain: Option<&str>) -> Option<Commitment> {
        let pays = self.by_chain().remove(&chain.map(str::to_string))?;
        Some(Commitment::new(&pays, self.batch_size as usize))
    }

    /// Each chain's part of the plan as the commitment its allocator approves and pays against.
    pub fn commitments(&self) -> BTreeMap<Option<String>, Commitment> {
        self.by_chain().into_iter().map(|(c, pays)| (c, Commitment::new(&pays, self.batch_size as usize))).collect()
    }
}

/// One chain's part of a plan, cut into batches and committed to by a Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// The batches, in plan order.
    pub batches: Vec<Vec<Pay>>,
    /// Merkle tree levels, leaves first, root last.
    levels: Vec<Vec<B256>>,
    /// Sum of every payment.
    pub total: U256,
}

/// Sorted-pair keccak-256, OpenZeppelin `MerkleProof`'s node rule (`Hashes.commutativeKeccak256`).
fn node(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// The leaf of batch `index`: `keccak256(keccak256(abi.encode(index, recipients, amounts)))`.
pub fn batch_leaf(index: u64, pays: &[Pay]) -> B256 {
    let recipients: Vec<Address> = pays.iter().map(|p| p.recipient).collect();
    let amounts: Vec<U256> = pays.iter().map(|p| p.amount).collect();
    let inner = keccak256((U256::from(index), recipients, amounts).abi_encode_params());
    keccak256(inner)
}

impl Commitment {
    /// Cut `pays` into batches of `batch_size` and build the tree. `pays` must not be empty.
    pub fn new(pays: &[Pay], batch_size: usize) -> Self {
        let batches: Vec<Vec<Pay>> = pays.chunks(batch_size.max(1)).map(<[Pay]>::to_vec).collect();
        let leaves: Vec<B256> = batches.iter().enumerate().map(|(i, b)| batch_leaf(i as u64, b)).collect();
        let mut levels = vec![leaves];
        while levels.last().map_or(0, Vec::len) > 1 {
            let up = levels
                .last()
                .expect("a level")
                .chunks(2)
                .map(|p| if p.len() == 2 { node(p[0], p[1]) } else { p[0] })
                .collect();
            levels.push(up);
        }
        let total = pays.iter().map(|p| p.amount).sum();
        Commitment { batches, levels, total }
    }

    /// The Merkle root governance approves.
    pub fn root(&self) -> B256 {
        self.levels.last().and_then(|l| l.first()).copied().unwrap_or(B256::ZERO)
    }

    /// The proof of batch `index`: its sibling at each level (none where the level's last node has none).
    pub fn proof(&self, index: usize) -> Vec<B256> {
        let mut out = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                out.push(level[sibling]);
            }
            i /= 2;
        }
        out
    }

    /// The plan's id on one allocator: `keccak256(abi.encode(chainId, allocator, asset, root, total,
    /// batches))`, as `AIAllocator.planId` computes it.
    pub fn plan_id(&self, chain_id: u64, allocator: Address, asset: Address) -> B256 {
        keccak256(
            (U256::from(chain_id), allocator, asset, self.root(), self.total, U256::from(self.batches.len()))
                .abi_encode_params(),
        )
    }
}

/// Read `id,address[,chain]` rows: which address (and chain) receives each project's payment.
pub fn read_address_book(path: &Path) -> Result<BTreeMap<String, (allonet_core::Address, Option<String>)>, InputError> {
    let t = Table::read(path)?;
    let id = t.require_one_of(&["id", "project", "project_id"], "project id")?;
    let addr = t.require_one_of(&["address", "recipient", "payout_address"], "address")?;
    let chain = t.find_column(&["chain"]);
    let mut book = BTreeMap::new();
    for row in t.rows() {
        let a = allonet_core::Address::parse(row.get(addr)).map_err(|e| t.error(row, addr, e.to_string()))?;
        let c = chain.map(|c| row.get(c).to_string()).filter(|c| !c.is_empty());
        if book.insert(row.get(id).to_string(), (a, c)).is_some() {
            return Err(t.error(row, id, format!("project {:?} listed twice", row.get(id))));
        }
    }
    Ok(book)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pays(n: u64) -> Vec<Pay> {
        (0..n)
            .map(|i| Pay { recipient: Address::from_word(keccak256(i.to_be_bytes())), amount: U256::from(i + 1) })
            .collect()
    }

    /// OpenZeppelin `MerkleProof.processProof`: fold the proof with sorted-pair hashing.
    fn process(proof: &[B256], leaf: B256) -> B256 {
        proof.iter().fold(leaf, |acc, p| node(acc, *p))
    }

    #[test]
    fn every_batch_proves_against_the_root_and_no_other_leaf_does() {
        for n in 1..=40u64 {
            for size in [1usize, 2, 3, 7] {
                let list = pays(n);
                let c = Commitment::new(&list, size);
                assert_eq!(c.batches.len(), (n as usize).div_ceil(size));
                assert_eq!(c.total, list.iter().map(|p| p.amount).sum::<U256>());
                for (i, b) in c.batches.iter().enumerate() {
                    assert_eq!(process(&c.proof(i), batch_leaf(i as u64, b)), c.root(), "n {n} size {size} batch {i}");
                    // The same batch under another index, or with one unit more, does not prove.
                    assert_ne!(process(&c.proof(i), batch_leaf(i as u64 + 1, b)), c.root());
                    let mut edited = b.clone();
                    edited[0].amount += U256::from(1);
                    assert_ne!(process(&c.proof(i), batch_leaf(i as u64, &edited)), c.root());
                }
            }
        }
    }

    #[test]
    fn the_plan_id_binds_chain_allocator_and_asset() {
        let c = Commitment::new(&pays(5), 2);
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let id = c.plan_id(1, a, Address::ZERO);
        assert_ne!(id, c.plan_id(10, a, Address::ZERO));
        assert_ne!(id, c.plan_id(1, b, Address::ZERO));
        assert_ne!(id, c.plan_id(1, a, b));
        assert_ne!(id, Commitment::new(&pays(5), 3).plan_id(1, a, Address::ZERO), "the batch layout is committed");
    }

    #[test]
    fn plans_refuse_bad_batch_sizes_and_totals_beyond_96_bits() {
        let token = PlanToken { symbol: "X".into(), decimals: 0 };
        let one = |amount: U256| Payment {
            recipient: allonet_core::Address(Address::repeat_byte(9)),
            amount: TokenAmount(amount),
            chain: None,
            label: None,
        };
        let e = PayoutPlan::new(token.clone(), None, 0, vec![one(U256::from(1))]).unwrap_err().to_string();
        assert!(e.contains("batch_size is 0"), "{e}");
        let e = PayoutPlan::new(token.clone(), None, 10, vec![one(U256::from(1) << 96)]).unwrap_err().to_string();
        assert!(e.contains("2^96"), "{e}");
        let p = PayoutPlan::new(token, None, 10, vec![one(max_chain_total())]).unwrap();
        assert_eq!(p.commitments()[&None].total, max_chain_total());
    }
}
