//! Safe Transaction Builder export: a payout plan written as the batch file that the Safe{Wallet}
//! "Transaction Builder" Safe App imports (drag and drop a JSON file), so a Safe's owners can review,
//! sign and execute the payout from the Safe.
//!
//! # The format
//!
//! Read from the app's public source: `safe-global/safe-react-apps`, files
//! `apps/tx-builder/src/typings/models.ts` (the `BatchFile` types),
//! `apps/tx-builder/src/store/transactionLibraryContext.tsx` (`generateBatchFile`,
//! `convertToBatchTransactions`, `convertToProposedTransactions`, `validateTransactionsInBatch`),
//! `apps/tx-builder/src/lib/storage.ts` (download and import) and `apps/tx-builder/src/utils.ts` (how
//! input values are parsed). The app has since moved to `safe-global/safe-wallet-monorepo` under
//! `apps/tx-builder/`, where `src/store/transactionLibraryContext.tsx` builds the same file and `src/utils.ts`
//! parses values the same way (on ethers instead of web3).
//!
//! ```text
//! { "version": "1.0",                      always this string
//!   "chainId": "10",                        decimal chain id, as a string
//!   "createdAt": 1700000000000,             Date.now(): milliseconds, a JSON number
//!   "meta": { "name", "description", "txBuilderVersion",
//!             "createdFromSafeAddress", "createdFromOwnerAddress" (the app writes ""),
//!             "checksum" },                 added last, see below
//!   "transactions": [ { "to", "value",      value: wei as a decimal string (numbers are rejected)
//!                       "data",             hex calldata, or null
//!                       "contractMethod",   {"inputs": [{"internalType","name","type"}], "name", "payable"} or null
//!                       "contractInputsValues" } ] }   {input name: string value} or null
//! ```
//!
//! The app downloads with `JSON.stringify(file, replacer)` where the replacer turns `undefined` into `null`, so
//! the unused fields of a transaction are written as `null`, not left out; this module does the same. On import
//! a transaction with a truthy `data` is sent as that calldata; otherwise the calldata is encoded from
//! `contractMethod` and `contractInputsValues`, and with neither it is a plain value transfer. Input values are
//! strings; arrays of non-string types (`address[]`, `uint256[]`) are parsed by `parseStringToArray`, which drops
//! the outer brackets, splits on top-level commas, trims and strips quotes, so they are written here as
//! `[0xAb…,0xCd…]` and `[1500000,250000]`.
//!
//! `txBuilderVersion` is the app's `package.json` version. The last `safe-react-apps` release is 1.18.2; the
//! `safe-wallet-monorepo` copy reads 2.0.0, and files exported in the wild carry 2.0.1, which is used here
//! ([`TX_BUILDER_VERSION`]). The app does not check the field.
//!
//! # The checksum
//!
//! From `apps/tx-builder/src/lib/checksum.ts` (`safe-global/safe-react-apps`; reimplemented here from the rule,
//! not copied). `meta.checksum` is keccak-256 (web3 `sha3` of a non-hex string: keccak-256 of its UTF-8) of a
//! custom serialisation of the whole file in which `meta.checksum` is absent (the app adds it afterwards, and
//! deletes it before validating) and `meta.name` is replaced by `null` (so renaming a batch keeps it valid).
//! The serialisation:
//!
//! - an object is `{`, then its keys sorted as JavaScript's default `Array.prototype.sort` sorts strings (by
//!   UTF-16 code units) and written as a JSON array (`["a","b"]`), then for each key in that order its value's
//!   serialisation followed by `,`, then `}`. So `{"b":1,"a":"x"}` gives `{["a","b"]"x",1,}` and `{}` gives `{[]}`;
//! - an array is `[`, its elements' serialisations joined by `,`, then `]`;
//! - anything else is `JSON.stringify` of it: `null`, `true`, `false`, strings with JSON escapes (only `"`, `\` and
//!   control characters are escaped; `\b \f \n \r \t` short, others as `\u00xx`), numbers as JavaScript prints them.
//!
//! The hash is written as `0x` + 64 lowercase hex digits, and the app compares it as a string. A mismatch only
//! shows a warning ("This file was modified since it was generated"); the import still goes ahead. The app's own
//! unit test (`apps/tx-builder/src/lib/checksum.test.js`) pins
//! `0x4ecbfd364aa6759983915644e73f8bd411e85a2dc306f252a387c2728c4db64c` for its sample file, and the tests below
//! reproduce it.
//!
//! # What is exported
//!
//! One chain's payments of a plan ([`SafeExport::chain`]), either paid by the Safe itself
//! ([`SafeMode::Transfer`]: one ERC-20 `transfer` or one native-currency transfer per recipient) or through the
//! `AIAllocator` the Safe owns ([`SafeMode::Allocator`]: one `approvePlan(root, total, batches)` call, the
//! Safe's approval of the chain's commitment; the agent then pays the approved pairs with `payBatch`, each
//! batch once). In transfer mode the whole selection is exported: nothing is read from the chain, so run it
//! once. The Transaction Builder sends all the file's transactions as one Safe transaction; keep the batch
//! within the chain's gas limit.

use std::fmt::Write as _;

use allonet_core::{Token, TokenAmount};
use alloy_primitives::{hex, keccak256, Address, B256, U256};
use alloy_sol_types::SolCall;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contracts::PayToken;
use crate::plan::{Pay, PayoutPlan};

/// The batch file format version the app writes.
pub const BATCH_FILE_VERSION: &str = "1.0";

/// `meta.txBuilderVersion`: the Transaction Builder release whose files this module writes (see the module
/// documentation for where the number comes from).
pub const TX_BUILDER_VERSION: &str = "2.0.1";

/// How the Safe pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeMode {
    /// The Safe pays each recipient directly: ERC-20 `transfer(to, value)` (asset = token address) or a plain
    /// native value transfer (asset = None).
    Transfer { asset: Option<Address> },
    /// The Safe (as the allocator's owner) approves the plan's commitment with `AIAllocator.approvePlan`.
    Allocator { allocator: Address },
}

/// What to export and for which Safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeExport {
    /// Chain id of the chain the Safe is on (written as `chainId`).
    pub chain_id: u64,
    /// The Safe (written as `meta.createdFromSafeAddress`).
    pub safe: Address,
    /// Creation time in milliseconds since the Unix epoch (written as `createdAt`); passed in so that the output
    /// is reproducible.
    pub created_at_ms: u64,
    pub mode: SafeMode,
    /// Which chain's payments of the plan to export; `None` = the default-chain payments.
    pub chain: Option<String>,
}

/// Why a plan cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafeError {
    /// No payment of the plan is on the chosen chain.
    #[error(
        "plan {} has no payments on {} (it has payments on: {})",
        .digest,
        chain_label(.chain),
        .available.join(", ")
    )]
    NoPayments { digest: String, chain: Option<String>, available: Vec<String> },
    /// The Safe, token or allocator address is zero.
    #[error("the {0} is the zero address")]
    ZeroAddress(&'static str),
    /// Chain id 0.
    #[error("chain id 0 is not a chain: give the id of the chain the Safe is on")]
    ZeroChainId,
}

fn chain_label(chain: &Option<String>) -> String {
    match chain {
        None => "the default chain".into(),
        Some(c) => format!("chain `{c}`"),
    }
}

/// A Transaction Builder batch file. Fields serialise in the order the app writes them.
///
/// For checking files made elsewhere use [`file_checksum`] / [`verify_checksum`] on the parsed JSON: reading
/// into this type fills in absent optional fields, which changes the checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchFile {
    pub version: String,
    pub chain_id: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    pub meta: BatchMeta,
    pub transactions: Vec<BatchTransaction>,
}

/// `meta` of a batch file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchMeta {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tx_builder_version: String,
    #[serde(default)]
    pub created_from_safe_address: String,
    #[serde(default)]
    pub created_from_owner_address: String,
    /// `0x` + 64 lowercase hex digits; see [`safe_checksum`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// One transaction of a batch file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTransaction {
    /// Target address (EIP-55).
    pub to: String,
    /// Native value in wei, decimal.
    pub value: String,
    /// Raw calldata (`0x…`); when present the app sends it as is and ignores the method fields.
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub contract_method: Option<ContractMethod>,
    #[serde(default)]
    pub contract_inputs_values: Option<InputValues>,
}

/// An ABI function fragment as the app stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractMethod {
    pub inputs: Vec<ContractInput>,
    pub name: String,
    pub payable: bool,
}

/// One ABI input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractInput {
    pub internal_type: String,
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// Tuple members (unused by allonet's calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<ContractInput>>,
}

impl ContractMethod {
    /// The canonical signature, e.g. `transfer(address,uint256)` (tuple inputs are not expanded).
    pub fn signature(&self) -> String {
        let types: Vec<&str> = self.inputs.iter().map(|i| i.ty.as_str()).collect();
        format!("{}({})", self.name, types.join(","))
    }
}

/// `contractInputsValues`: input name to value, kept in ABI order (a JSON object; the order does not affect
/// the checksum, whose serialisation sorts keys).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputValues(pub Vec<(String, String)>);

impl InputValues {
    /// The value of an input.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Serialize for InputValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for InputValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = InputValues;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of input names to string values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<InputValues, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.push((k, v));
                }
                Ok(InputValues(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

impl BatchFile {
    /// The file as pretty JSON with a final newline, fields in the app's order.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("batch file serialises") + "\n"
    }

    /// The file as a JSON value (keys sorted: `serde_json` is built without `preserve_order`; use
    /// [`BatchFile::to_json`] for the file itself).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("batch file serialises")
    }

    /// The same file with `meta.checksum` set to [`safe_checksum`].
    pub fn with_checksum(mut self) -> Self {
        self.meta.checksum = Some(hex::encode_prefixed(safe_checksum(&self)));
        self
    }
}

/// A call the Safe will make: what the Transaction Builder encodes from a [`BatchTransaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeCall {
    pub to: Address,
    pub value: U256,
    /// Calldata (empty for a native transfer).
    pub data: Vec<u8>,
}

fn abi_input(name: &str, ty: &str) -> ContractInput {
    ContractInput { internal_type: ty.into(), name: name.into(), ty: ty.into(), components: None }
}

/// The ERC-20 `transfer(address to, uint256 value)` fragment, input names as in OpenZeppelin's `IERC20`.
pub fn erc20_transfer_method() -> ContractMethod {
    ContractMethod {
        inputs: vec![abi_input("to", "address"), abi_input("value", "uint256")],
        name: "transfer".into(),
        payable: false,
    }
}

/// The `AIAllocator.approvePlan(bytes32 root, uint256 total, uint256 batches)` fragment, as in the committed
/// artifact.
pub fn approve_plan_method() -> ContractMethod {
    ContractMethod {
        inputs: vec![abi_input("root", "bytes32"), abi_input("total", "uint256"), abi_input("batches", "uint256")],
        name: "approvePlan".into(),
        payable: false,
    }
}

fn check_options(opts: &SafeExport) -> Result<(), SafeError> {
    if opts.chain_id == 0 {
        return Err(SafeError::ZeroChainId);
    }
    if opts.safe == Address::ZERO {
        return Err(SafeError::ZeroAddress("Safe address"));
    }
    match opts.mode {
        SafeMode::Transfer { asset: Some(token) } if token == Address::ZERO => {
            Err(SafeError::ZeroAddress("token address (for native-currency transfers give no token)"))
        }
        SafeMode::Allocator { allocator, .. } if allocator == Address::ZERO => {
            Err(SafeError::ZeroAddress("allocator address"))
        }
        _ => Ok(()),
    }
}

/// The plan's payments on one chain, in plan order.
fn select(plan: &PayoutPlan, chain: &Option<String>) -> Result<Vec<Pay>, SafeError> {
    let mut by_chain = plan.by_chain();
    match by_chain.remove(chain) {
        Some(pays) if !pays.is_empty() => Ok(pays),
        _ => Err(SafeError::NoPayments {
            digest: plan.digest.to_string(),
            chain: chain.clone(),
            available: by_chain.keys().map(chain_label).collect(),
        }),
    }
}

type Built = (Vec<Pay>, Vec<(SafeCall, BatchTransaction)>);

/// Each call together with the file transaction that describes it, so the two cannot drift apart.
fn build(plan: &PayoutPlan, opts: &SafeExport) -> Result<Built, SafeError> {
    check_options(opts)?;
    let pays = select(plan, &opts.chain)?;
    let txs: Vec<(SafeCall, BatchTransaction)> = match opts.mode {
        SafeMode::Transfer { asset: None } => pays
            .iter()
            .map(|p| {
                let call = SafeCall { to: p.recipient, value: p.amount, data: Vec::new() };
                let tx = BatchTransaction {
                    to: p.recipient.to_checksum(None),
                    value: p.amount.to_string(),
                    data: None,
                    contract_method: None,
                    contract_inputs_values: None,
                };
                (call, tx)
            })
            .collect(),
        SafeMode::Transfer { asset: Some(token) } => pays
            .iter()
            .map(|p| {
                let data = PayToken::transferCall { to: p.recipient, value: p.amount }.abi_encode();
                let call = SafeCall { to: token, value: U256::ZERO, data };
                let tx = BatchTransaction {
                    to: token.to_checksum(None),
                    value: "0".into(),
                    data: None,
                    contract_method: Some(erc20_transfer_method()),
                    contract_inputs_values: Some(InputValues(vec![
                        ("to".into(), p.recipient.to_checksum(None)),
                        ("value".into(), p.amount.to_string()),
                    ])),
                };
                (call, tx)
            })
            .collect(),
        SafeMode::Allocator { allocator } => {
            let plan_c = crate::plan::Commitment::new(&pays, plan.batch_size as usize);
            let call = crate::payout::approve_call(&plan_c);
            let data = call.abi_encode();
            let tx = BatchTransaction {
                to: allocator.to_checksum(None),
                value: "0".into(),
                data: None,
                contract_method: Some(approve_plan_method()),
                contract_inputs_values: Some(InputValues(vec![
                    ("root".into(), hex::encode_prefixed(call.root)),
                    ("total".into(), call.total.to_string()),
                    ("batches".into(), call.batches.to_string()),
                ])),
            };
            vec![(SafeCall { to: allocator, value: U256::ZERO, data }, tx)]
        }
    };
    Ok((pays, txs))
}

/// The calls the Safe will make for this export, in order (for review or simulation).
pub fn safe_calls(plan: &PayoutPlan, opts: &SafeExport) -> Result<Vec<SafeCall>, SafeError> {
    Ok(build(plan, opts)?.1.into_iter().map(|(call, _)| call).collect())
}

/// Export one chain's payments of a plan as a Transaction Builder batch file, checksum included. Write it with
/// [`BatchFile::to_json`].
pub fn export_safe_batch(plan: &PayoutPlan, opts: &SafeExport) -> Result<BatchFile, SafeError> {
    let (pays, txs) = build(plan, opts)?;
    let token = Token::new(plan.token.symbol.clone(), plan.token.decimals);
    let total: TokenAmount = pays.iter().map(|p| TokenAmount(p.amount)).sum();
    let digest_hex = hex::encode(plan.digest.0);

    let mut name = format!("allonet payout {}", &digest_hex[..10]);
    if let Some(c) = &opts.chain {
        let _ = write!(name, " ({c})");
    }
    let how = match opts.mode {
        SafeMode::Transfer { asset: None } => format!("{} native-currency transfers from the Safe", txs.len()),
        SafeMode::Transfer { asset: Some(t) } => {
            format!("{} ERC-20 transfer(to, value) calls on token {} from the Safe", txs.len(), t.to_checksum(None))
        }
        SafeMode::Allocator { allocator } => format!(
            "AIAllocator.approvePlan on {}: the Safe approves these exact payments in {} batches of at most {}; \
             the agent then pays them, each batch once",
            allocator.to_checksum(None),
            pays.len().div_ceil(plan.batch_size as usize),
            plan.batch_size
        ),
    };
    let mut description = format!(
        "allonet payout plan {}: {} payment{} totalling {} {} ({} base units) on {}; {}.",
        plan.digest,
        pays.len(),
        if pays.len() == 1 { "" } else { "s" },
        token.format(total),
        token.symbol,
        total,
        chain_label(&opts.chain),
        how
    );
    if total != plan.total {
        let whole = token.format(plan.total);
        let _ = write!(description, " The whole plan pays {whole} {} across all its chains.", token.symbol);
    }

    let file = BatchFile {
        version: BATCH_FILE_VERSION.into(),
        chain_id: opts.chain_id.to_string(),
        created_at: opts.created_at_ms,
        meta: BatchMeta {
            name,
            description,
            tx_builder_version: TX_BUILDER_VERSION.into(),
            created_from_safe_address: opts.safe.to_checksum(None),
            created_from_owner_address: String::new(),
            checksum: None,
        },
        transactions: txs.into_iter().map(|(_, tx)| tx).collect(),
    };
    Ok(file.with_checksum())
}

// ------------------------------------------------------------------------------------------------ checksum

/// The Transaction Builder's checksum of a batch file: [`file_checksum`] of its JSON (any `meta.checksum` it
/// holds is ignored).
pub fn safe_checksum(batch: &BatchFile) -> B256 {
    file_checksum(&batch.to_value())
}

/// The checksum of a batch file given as JSON, by the app's rule: drop `meta.checksum`, set `meta.name` to
/// `null`, serialise with [`checksum_serialization`], keccak-256 the UTF-8. A `meta` that is missing or not an
/// object is taken as an empty object.
pub fn file_checksum(file: &Value) -> B256 {
    let mut v = file.clone();
    if let Value::Object(top) = &mut v {
        let meta = top.entry("meta").or_insert_with(|| Value::Object(Default::default()));
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
        }
        if let Value::Object(m) = meta {
            m.remove("checksum");
            m.insert("name".into(), Value::Null);
        }
    }
    keccak256(checksum_serialization(&v).as_bytes())
}

/// Whether a batch file's `meta.checksum` is what the app computes (compared as the app does: the exact
/// string `0x` + 64 lowercase hex digits).
pub fn verify_checksum(file: &Value) -> bool {
    file.get("meta")
        .and_then(|m| m.get("checksum"))
        .and_then(Value::as_str)
        .is_some_and(|c| c == hex::encode_prefixed(file_checksum(file)))
}

/// The app's serialisation of a JSON value for its checksum (see the module documentation).
pub fn checksum_serialization(v: &Value) -> String {
    let mut out = String::new();
    serialise(v, &mut out);
    out
}

fn serialise(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&js_number(n)),
        Value::String(s) => js_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                serialise(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // JavaScript's default sort compares strings by UTF-16 code units, which differs from Rust's
            // (code point) order for characters above U+FFFF.
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push_str("{[");
            for (i, (k, _)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                js_string(k, out);
            }
            out.push(']');
            for (_, value) in &entries {
                serialise(value, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

/// `JSON.stringify` of a string (ES2019: only `"`, `\` and control characters are escaped).
fn js_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `JSON.stringify` of a number. JavaScript reads every JSON number as a double, so integers beyond 2^53
/// print as their nearest double does.
fn js_number(n: &serde_json::Number) -> String {
    const EXACT: u64 = 1 << 53;
    if let Some(u) = n.as_u64() {
        return if u <= EXACT { u.to_string() } else { js_double(u as f64) };
    }
    if let Some(i) = n.as_i64() {
        return if i.unsigned_abs() <= EXACT { i.to_string() } else { js_double(i as f64) };
    }
    js_double(n.as_f64().unwrap_or(f64::NAN))
}

/// JavaScript's Number::toString (ECMA-262 §6.1.6.1.20) from the shortest round-trip digits, which Rust's
/// `{:e}` gives.
fn js_double(x: f64) -> String {
    if !x.is_finite() {
        return "null".into(); // JSON.stringify(NaN) and of ±Infinity
    }
    if x == 0.0 {
        return "0".into(); // also -0
    }
    if x < 0.0 {
        return format!("-{}", js_double(-x));
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let n = exp + 1; // x = 0.digits × 10^n
    if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        if k == 1 {
            format!("{digits}e{sign}{}", e.abs())
        } else {
            format!("{}.{}e{sign}{}", &digits[..1], &digits[1..], e.abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::AIAllocator;
    use crate::plan::{Payment, PlanToken};
    use std::collections::BTreeSet;

    fn addr(i: u8) -> Address {
        Address::with_last_byte(i)
    }
    fn token() -> Address {
        addr(0x77)
    }
    fn allocator() -> Address {
        addr(0x88)
    }

    /// Five default-chain payments (8.750045 USDC) and one on `optimism`.
    fn plan() -> PayoutPlan {
        let pay = |i: u8, amount: u128, chain: Option<&str>| Payment {
            recipient: allonet_core::Address(addr(i)),
            amount: TokenAmount::from_base_units(amount),
            chain: chain.map(String::from),
            label: None,
        };
        PayoutPlan::new(
            PlanToken { symbol: "USDC".into(), decimals: 6 },
            None,
            2,
            vec![
                pay(1, 1_500_000, None),
                pay(2, 250_000, None),
                pay(3, 3, None),
                pay(4, 7_000_000, None),
                pay(5, 42, None),
                pay(1, 9, Some("optimism")),
            ],
        )
        .expect("valid plan")
    }

    fn default_pays(p: &PayoutPlan) -> Vec<Pay> {
        p.by_chain().remove(&None::<String>).expect("default-chain payments")
    }

    fn opts(mode: SafeMode) -> SafeExport {
        SafeExport { chain_id: 10, safe: addr(0xAA), created_at_ms: 1_700_000_000_000, mode, chain: None }
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().expect("object").keys().cloned().collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn units(s: &str) -> U256 {
        U256::from_str_radix(s, 10).expect("decimal")
    }

    /// The sample file of the app's own test, `apps/tx-builder/src/lib/checksum.test.js` in
    /// `safe-global/safe-react-apps`.
    const APP_SAMPLE: &str = r#"{
      "version": "1.0",
      "chainId": "4",
      "createdAt": 1646321521061,
      "meta": {
        "name": "test batch file",
        "txBuilderVersion": "1.4.0",
        "checksum": "",
        "createdFromSafeAddress": "0xDF8a1Ce35c9a6ACE153B4e0767942f1E2291a1Aa",
        "createdFromOwnerAddress": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6"
      },
      "transactions": [
        {
          "to": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",
          "value": "0",
          "contractMethod": {
            "inputs": [{ "internalType": "address", "name": "paramAddress", "type": "address" }],
            "name": "testAddress",
            "payable": false
          },
          "contractInputsValues": { "paramAddress": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6" }
        },
        {
          "to": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",
          "value": "0",
          "contractMethod": {
            "inputs": [{ "internalType": "bool", "name": "paramBool", "type": "bool" }],
            "name": "testBool",
            "payable": false
          },
          "contractInputsValues": { "paramAddress": "", "paramBool": "false" }
        },
        {
          "to": "0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",
          "value": "2000000000000000000",
          "data": "0x42f4579000000000000000000000000049d4450977e2c95362c13d3a31a09311e0ea26a6"
        }
      ]
    }"#;

    #[test]
    fn reproduces_the_apps_own_checksum_vector() {
        // The app's test calls addChecksum on the sample, which still holds `checksum: ""`: only the name
        // becomes null.
        let mut v: Value = serde_json::from_str(APP_SAMPLE).unwrap();
        v["meta"]["name"] = Value::Null;
        let s = checksum_serialization(&v);
        assert_eq!(
            s,
            concat!(
                r#"{["chainId","createdAt","meta","transactions","version"]"4",1646321521061,"#,
                r#"{["checksum","createdFromOwnerAddress","createdFromSafeAddress","name","txBuilderVersion"]"","#,
                r#""0x49d4450977E2c95362C13D3a31a09311E0Ea26A6","0xDF8a1Ce35c9a6ACE153B4e0767942f1E2291a1Aa",null,"#,
                r#""1.4.0",},[{["contractInputsValues","contractMethod","to","value"]{["paramAddress"]"#,
                r#""0x49d4450977E2c95362C13D3a31a09311E0Ea26A6",},{["inputs","name","payable"][{["internalType","#,
                r#""name","type"]"address","paramAddress","address",}],"testAddress",false,},"#,
                r#""0x49d4450977E2c95362C13D3a31a09311E0Ea26A6","0",},{["contractInputsValues","contractMethod","#,
                r#""to","value"]{["paramAddress","paramBool"]"","false",},{["inputs","name","payable"]"#,
                r#"[{["internalType","name","type"]"bool","paramBool","bool",}],"testBool",false,},"#,
                r#""0x49d4450977E2c95362C13D3a31a09311E0Ea26A6","0",},{["data","to","value"]"#,
                r#""0x42f4579000000000000000000000000049d4450977e2c95362c13d3a31a09311e0ea26a6","#,
                r#""0x49d4450977E2c95362C13D3a31a09311E0Ea26A6","2000000000000000000",}],"1.0",}"#
            )
        );
        assert_eq!(
            hex::encode_prefixed(keccak256(s.as_bytes())),
            "0x4ecbfd364aa6759983915644e73f8bd411e85a2dc306f252a387c2728c4db64c"
        );
    }

    /// A hand-built file with escapes, non-ASCII, nulls and all three kinds of transaction.
    fn hand_batch() -> BatchFile {
        BatchFile {
            version: "1.0".into(),
            chain_id: "10".into(),
            created_at: 1_700_000_000_123,
            meta: BatchMeta {
                name: "hand built batch".into(),
                description: "quote \" backslash \\ newline \n tab \t ctrl \u{1} del \u{7f} é ✓ 😀".into(),
                tx_builder_version: "2.0.1".into(),
                created_from_safe_address: "0x000000000000000000000000000000000000dEaD".into(),
                created_from_owner_address: String::new(),
                checksum: None,
            },
            transactions: vec![
                BatchTransaction {
                    to: "0x000000000000000000000000000000000000dEaD".into(),
                    value: "5".into(),
                    data: None,
                    contract_method: None,
                    contract_inputs_values: None,
                },
                BatchTransaction {
                    to: "0x1111111111111111111111111111111111111111".into(),
                    value: "0".into(),
                    data: None,
                    contract_method: Some(erc20_transfer_method()),
                    contract_inputs_values: Some(InputValues(vec![
                        ("to".into(), "0x000000000000000000000000000000000000dEaD".into()),
                        ("value".into(), "1000".into()),
                    ])),
                },
                BatchTransaction {
                    to: "0x2222222222222222222222222222222222222222".into(),
                    value: "0".into(),
                    data: Some("0xa9059cbb".into()),
                    contract_method: None,
                    contract_inputs_values: None,
                },
            ],
        }
    }

    #[test]
    fn checksum_of_a_hand_built_file_matches_an_independent_reference() {
        // Reference: the same file in JSON, serialised by a separate Node script and a separate Python script
        // written from the rule (both agree), hashed with pycryptodome's keccak-256.
        let file = hand_batch();
        assert_eq!(
            hex::encode_prefixed(safe_checksum(&file)),
            "0x27ad96803f31655588d0b51541e0beac94774b9d63b3e1aac17f17c7ae1f7aca"
        );
        // A stored checksum and the name do not enter it.
        let mut renamed = file.clone().with_checksum();
        renamed.meta.name = "renamed".into();
        assert_eq!(safe_checksum(&renamed), safe_checksum(&file));
        assert!(verify_checksum(&renamed.to_value()));
    }

    #[test]
    fn serialisation_rule_details() {
        let v = serde_json::json!({"b": [1, null, true, "x"], "a": {"y": 1.5, "é": "q\"\n"}, "B": {}});
        assert_eq!(checksum_serialization(&v), r#"{["B","a","b"]{[]},{["y","é"]1.5,"q\"\n",},[1,null,true,"x"],}"#);
        // UTF-16 order: U+1F600 (surrogates D83D DE00) sorts before U+FF61, unlike code point order.
        let v = serde_json::json!({"\u{FF61}": 1, "\u{1F600}": 2});
        assert_eq!(checksum_serialization(&v), "{[\"\u{1F600}\",\"\u{FF61}\"]2,1,}");
        // Numbers as JavaScript prints them (reference: node's JSON.stringify).
        for (x, js) in [
            (1e21, "1e+21"),
            (123.456, "123.456"),
            (100.0, "100"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e300, "1.5e+300"),
            (1.2345e-7, "1.2345e-7"),
            (0.1, "0.1"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123456789012345680000.0, "123456789012345680000"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(js_double(x), js, "{x}");
        }
        assert_eq!(js_number(&serde_json::Number::from(u64::MAX)), "18446744073709552000");
        assert_eq!(js_number(&serde_json::Number::from((1u64 << 53) + 2)), "9007199254740994");
        assert_eq!(js_number(&serde_json::Number::from(1_646_321_521_061u64)), "1646321521061");
        let mut s = String::new();
        js_string("\u{0}\u{1f}\u{8}\u{c}\r/<>\u{2028}", &mut s);
        assert_eq!(s, "\"\\u0000\\u001f\\b\\f\\r/<>\u{2028}\"");
    }

    #[test]
    fn file_has_the_apps_keys_in_the_apps_order() {
        let p = plan();
        for mode in [
            SafeMode::Transfer { asset: Some(token()) },
            SafeMode::Transfer { asset: None },
            SafeMode::Allocator { allocator: allocator() },
        ] {
            let file = export_safe_batch(&p, &opts(mode)).unwrap();
            let text = file.to_json();
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(keys(&v), set(&["version", "chainId", "createdAt", "meta", "transactions"]));
            assert_eq!(v["version"], "1.0");
            assert_eq!(v["chainId"], "10");
            assert_eq!(v["createdAt"].as_u64(), Some(1_700_000_000_000));
            assert_eq!(
                keys(&v["meta"]),
                set(&[
                    "name",
                    "description",
                    "txBuilderVersion",
                    "createdFromSafeAddress",
                    "createdFromOwnerAddress",
                    "checksum"
                ])
            );
            assert_eq!(v["meta"]["txBuilderVersion"], TX_BUILDER_VERSION);
            assert_eq!(v["meta"]["createdFromSafeAddress"], addr(0xAA).to_checksum(None));
            assert_eq!(v["meta"]["createdFromOwnerAddress"], "");
            for tx in v["transactions"].as_array().unwrap() {
                assert_eq!(keys(tx), set(&["to", "value", "data", "contractMethod", "contractInputsValues"]));
                assert!(tx["value"].is_string());
            }
            // Written in the app's order.
            let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} missing"));
            for pair in ["version", "chainId", "createdAt", "meta", "transactions"].windows(2) {
                assert!(at(pair[0]) < at(pair[1]), "{pair:?}");
            }
            let meta_order = [
                "name",
                "description",
                "txBuilderVersion",
                "createdFromSafeAddress",
                "createdFromOwnerAddress",
                "checksum",
            ];
            for pair in meta_order.windows(2) {
                assert!(at(pair[0]) < at(pair[1]), "{pair:?}");
            }
            for pair in ["to", "value", "data", "contractMethod", "contractInputsValues"].windows(2) {
                assert!(at(pair[0]) < at(pair[1]), "{pair:?}");
            }
            // The checksum the file carries is the app's, through a text round trip, and catches edits.
            assert!(verify_checksum(&v));
            assert_eq!(v["meta"]["checksum"], hex::encode_prefixed(safe_checksum(&file)));
            let mut renamed = v.clone();
            renamed["meta"]["name"] = "another name".into();
            assert!(verify_checksum(&renamed));
            let mut edited = v.clone();
            edited["transactions"][0]["to"] = addr(0xEE).to_checksum(None).into();
            assert!(!verify_checksum(&edited));
            // Reading it back gives the same file.
            let back: BatchFile = serde_json::from_str(&text).unwrap();
            assert_eq!(back, file);
        }
    }

    #[test]
    fn erc20_transfers_pay_the_selection_exactly() {
        let p = plan();
        let o = opts(SafeMode::Transfer { asset: Some(token()) });
        let file = export_safe_batch(&p, &o).unwrap();
        let calls = safe_calls(&p, &o).unwrap();
        let pays = default_pays(&p);
        assert_eq!(file.transactions.len(), pays.len());
        assert_eq!(calls.len(), pays.len());
        let mut sum = U256::ZERO;
        for ((tx, call), pay) in file.transactions.iter().zip(&calls).zip(&pays) {
            assert_eq!(tx.to, token().to_checksum(None));
            assert_eq!(tx.value, "0");
            assert_eq!(tx.data, None);
            assert_eq!(tx.contract_method.as_ref(), Some(&erc20_transfer_method()));
            let vals = tx.contract_inputs_values.as_ref().unwrap();
            assert_eq!(vals.get("to"), Some(pay.recipient.to_checksum(None).as_str()));
            assert_eq!(vals.get("value"), Some(pay.amount.to_string().as_str()));
            assert_eq!((call.to, call.value), (token(), U256::ZERO));
            let decoded = PayToken::transferCall::abi_decode(&call.data).unwrap();
            assert_eq!((decoded.to, decoded.value), (pay.recipient, pay.amount));
            // What the Transaction Builder encodes from contractMethod + contractInputsValues is that calldata.
            let from_file = PayToken::transferCall {
                to: vals.get("to").unwrap().parse().unwrap(),
                value: units(vals.get("value").unwrap()),
            };
            assert_eq!(from_file.abi_encode(), call.data);
            sum += decoded.value;
        }
        assert_eq!(sum, U256::from(8_750_045u64));
        assert_eq!(sum, pays.iter().fold(U256::ZERO, |a, p| a + p.amount));
        assert_eq!(file.meta.name, format!("allonet payout {}", &hex::encode(p.digest.0)[..10]));
        let d = &file.meta.description;
        assert!(d.contains(&p.digest.to_string()), "{d}");
        assert!(d.contains("5 payments totalling 8.750045 USDC (8750045 base units)"), "{d}");
        assert!(d.contains("8.750054 USDC across all its chains"), "{d}");
    }

    #[test]
    fn native_transfers_carry_the_value_and_nothing_else() {
        let p = plan();
        let o = opts(SafeMode::Transfer { asset: None });
        let v = export_safe_batch(&p, &o).unwrap().to_value();
        let calls = safe_calls(&p, &o).unwrap();
        let pays = default_pays(&p);
        let txs = v["transactions"].as_array().unwrap();
        assert_eq!(txs.len(), pays.len());
        let mut sum = U256::ZERO;
        for ((tx, call), pay) in txs.iter().zip(&calls).zip(&pays) {
            assert_eq!(tx["to"], pay.recipient.to_checksum(None));
            assert_eq!(tx["value"], pay.amount.to_string());
            assert!(tx["data"].is_null() && tx["contractMethod"].is_null() && tx["contractInputsValues"].is_null());
            assert_eq!(*call, SafeCall { to: pay.recipient, value: pay.amount, data: Vec::new() });
            sum += units(tx["value"].as_str().unwrap());
        }
        assert_eq!(sum, U256::from(8_750_045u64));
    }

    #[test]
    fn the_safe_approves_the_plans_commitment_on_its_allocator() {
        let p = plan();
        let o = opts(SafeMode::Allocator { allocator: allocator() });
        let file = export_safe_batch(&p, &o).unwrap();
        let calls = safe_calls(&p, &o).unwrap();
        let c = crate::plan::Commitment::new(&default_pays(&p), 2);
        assert_eq!(c.batches.len(), 3); // 2 + 2 + 1
        assert_eq!(file.transactions.len(), 1);
        let (tx, call) = (&file.transactions[0], &calls[0]);
        assert_eq!(
            (tx.to.as_str(), tx.value.as_str(), tx.data.as_ref()),
            (allocator().to_checksum(None).as_str(), "0", None)
        );
        assert_eq!(tx.contract_method.as_ref(), Some(&approve_plan_method()));
        let vals = tx.contract_inputs_values.as_ref().unwrap();
        assert_eq!(vals.get("root"), Some(hex::encode_prefixed(c.root()).as_str()));
        assert_eq!(vals.get("total"), Some("8750045"));
        assert_eq!(vals.get("batches"), Some("3"));
        let decoded = AIAllocator::approvePlanCall::abi_decode(&call.data).unwrap();
        assert_eq!((decoded.root, decoded.total, decoded.batches), (c.root(), U256::from(8_750_045u64), U256::from(3)));
        assert_eq!((call.to, call.value), (allocator(), U256::ZERO));
        // What the Transaction Builder encodes from the file is that calldata.
        let from_file = AIAllocator::approvePlanCall {
            root: vals.get("root").unwrap().parse().unwrap(),
            total: units(vals.get("total").unwrap()),
            batches: units(vals.get("batches").unwrap()),
        };
        assert_eq!(from_file.abi_encode(), call.data);
        assert!(
            file.meta.description.contains("approvePlan") && file.meta.description.contains("3 batches"),
            "{}",
            file.meta.description
        );
    }

    #[test]
    fn fragments_match_the_artifacts_and_selectors() {
        fn abi_inputs(contract: &str, function: &str) -> Vec<ContractInput> {
            let (_, text) = crate::contracts::ARTIFACTS.iter().find(|(n, _)| *n == contract).unwrap();
            let artifact: Value = serde_json::from_str(text).unwrap();
            let f = artifact["abi"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["type"] == "function" && f["name"] == function)
                .unwrap();
            assert_eq!(f["stateMutability"], "nonpayable");
            serde_json::from_value(f["inputs"].clone()).unwrap()
        }
        assert_eq!(abi_inputs("AIAllocator", "approvePlan"), approve_plan_method().inputs);
        assert_eq!(abi_inputs("PayToken", "transfer"), erc20_transfer_method().inputs);
        let selector = |m: &ContractMethod| keccak256(m.signature().as_bytes())[..4].to_vec();
        assert_eq!(erc20_transfer_method().signature(), "transfer(address,uint256)");
        assert_eq!(selector(&erc20_transfer_method()), PayToken::transferCall::SELECTOR.to_vec());
        assert_eq!(selector(&approve_plan_method()), AIAllocator::approvePlanCall::SELECTOR.to_vec());
    }

    #[test]
    fn chain_selection_and_errors() {
        let p = plan();
        let mut o = opts(SafeMode::Transfer { asset: None });
        o.chain = Some("optimism".into());
        let file = export_safe_batch(&p, &o).unwrap();
        assert_eq!(file.transactions.len(), 1);
        assert_eq!(file.transactions[0].value, "9");
        assert!(file.meta.name.ends_with(" (optimism)"), "{}", file.meta.name);

        o.chain = Some("base".into());
        let err = export_safe_batch(&p, &o).unwrap_err();
        assert!(matches!(err, SafeError::NoPayments { .. }));
        let msg = err.to_string();
        assert!(msg.contains("chain `base`") && msg.contains("the default chain") && msg.contains("chain `optimism`"));
        assert!(msg.contains(&p.digest.to_string()), "{msg}");

        let zero_token = opts(SafeMode::Transfer { asset: Some(Address::ZERO) });
        assert!(matches!(export_safe_batch(&p, &zero_token), Err(SafeError::ZeroAddress(_))));
        let mut no_chain = opts(SafeMode::Transfer { asset: None });
        no_chain.chain_id = 0;
        assert_eq!(export_safe_batch(&p, &no_chain).unwrap_err(), SafeError::ZeroChainId);
        let mut no_safe = opts(SafeMode::Transfer { asset: None });
        no_safe.safe = Address::ZERO;
        assert!(matches!(export_safe_batch(&p, &no_safe), Err(SafeError::ZeroAddress(_))));
    }
}
