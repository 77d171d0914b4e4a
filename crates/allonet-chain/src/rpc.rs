//! Any EVM chain over JSON-RPC through `alloy`: chain-id check, local key signers, nonces and gas filled by
//! alloy's recommended fillers, receipts awaited, rate-limit retries with backoff (alloy's
//! `RetryBackoffLayer`) plus bounded retries of reads on transport errors.
//!
//! Sends are never retried blindly: a transaction may have reached the node before the connection broke. Every
//! send fixes its nonce and EIP-1559 fees itself, so re-sending it is the same transaction, and a send that is not
//! mined within [`SendPolicy::stuck_after`] is replaced: the same nonce at fees raised by
//! [`SendPolicy::bump_percent`] (nodes require at least 10 %, geth's `txpool.pricebump`), so at most one of its
//! versions can ever be mined. A sender that finds its own earlier transaction still pending (a process that
//! crashed while it waited) takes that nonce again instead of the next one, so one payment never has two
//! transactions in flight. Each version is signed here and sent raw (`eth_sendRawTransaction`), so its hash is
//! known before the node answers: a version whose first answer was lost, and that the node then calls "already
//! known", is still watched for its receipt. A re-run of a payout finds what landed from events, and the contract's plan ledger
//! refuses a second payment.

use std::time::Duration;

use alloy_network::eip2718::Encodable2718;
use alloy_network::{Ethereum, EthereumWallet, NetworkWallet, TransactionBuilder};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_client::ClientBuilder;
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use alloy_transport::layers::RetryBackoffLayer;
use alloy_transport::{RpcError, TransportErrorKind};

use crate::chain::{Chain, ChainError, LogFilter, LogRecord, Receipt, Tx};

/// Blocks per eth_getLogs request.
pub const LOG_WINDOW: u64 = 10_000;

/// How a transaction is sent and, when it is not mined, replaced.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    /// Wait this long for a receipt before replacing the transaction (same nonce, higher fees).
    pub stuck_after: Duration,
    /// Replacements before giving up (the last version may still be mined: re-run to reconcile).
    pub max_replacements: u32,
    /// Percent by which each replacement raises both fees.
    pub bump_percent: u32,
    /// Never offer more than this per gas (wei), whatever the bumps reach.
    pub max_fee_per_gas: u128,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            stuck_after: Duration::from_secs(60),
            max_replacements: 5,
            bump_percent: 25,
            max_fee_per_gas: 2_000 * 1_000_000_000, // 2,000 gwei
        }
    }
}

/// What the last send did: its nonce, and the hash and fees of each version sent (the first, then each
/// replacement); `mined` is the version that landed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendLog {
    pub nonce: u64,
    /// (hash, maxFeePerGas, maxPriorityFeePerGas) of each version, in the order sent.
    pub versions: Vec<(B256, u128, u128)>,
    pub mined: Option<B256>,
    /// Whether the nonce was taken over from a transaction of this sender that was already pending.
    pub took_over_pending: bool,
}

/// A node over HTTP JSON-RPC.
pub struct Rpc {
    url: String,
    chain_id: u64,
    provider: DynProvider,
    signers: Vec<Address>,
    /// The same keys as the provider's, to sign each version here (its hash known before it is sent).
    wallet: Option<EthereumWallet>,
    rt: tokio::runtime::Runtime,
    policy: SendPolicy,
    last_send: SendLog,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc").field("url", &self.url).field("chain_id", &self.chain_id).finish()
    }
}

/// Parse a hex private key (with or without `0x`) into a signer.
pub fn signer_from_hex(hex: &str) -> Result<PrivateKeySigner, ChainError> {
    hex.trim().parse::<PrivateKeySigner>().map_err(|_| ChainError::Config("not a 32-byte hex private key".into()))
}

/// Load a signer from a key file (hex private key) or, when `file` is `None`, from the environment variable.
pub fn load_signer(file: Option<&std::path::Path>, env: &str) -> Result<PrivateKeySigner, ChainError> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ChainError::Config(format!("key file {}: {e}", path.display())))?;
            signer_from_hex(&text).map_err(|e| ChainError::Config(format!("key file {}: {e}", path.display())))
        }
        None => {
            let hex = std::env::var(env)
                .map_err(|_| ChainError::Config(format!("no signing key: set {env} or pass --key-file")))?;
            signer_from_hex(&hex).map_err(|e| ChainError::Config(format!("{env}: {e}")))
        }
    }
}

fn rpc_err(e: RpcError<TransportErrorKind>) -> ChainError {
    if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
        return ChainError::reverted(data);
    }
    if let Some(p) = e.as_error_resp() {
        if p.message.contains("revert") {
            return ChainError::Reverted { reason: p.message.to_string(), data: Bytes::new() };
        }
    }
    ChainError::Rpc(e.to_string())
}

fn record(l: &alloy_rpc_types_eth::Log) -> LogRecord {
    LogRecord {
        address: l.address(),
        topics: l.topics().to_vec(),
        data: l.data().data.clone(),
        block: l.block_number.unwrap_or_default(),
        tx_hash: l.transaction_hash.unwrap_or_default(),
        log_index: l.log_index.unwrap_or_default(),
    }
}

fn transient(e: &ChainError) -> bool {
    matches!(e, ChainError::Rpc(m) if m.contains("error sending request") || m.contains("connection") || m.contains("timed out") || m.contains("429") || m.contains("503"))
}

impl Rpc {
    /// Connect to `url`, check the chain id when `expect_chain_id` is given, and sign with `signers`.
    pub fn connect(
        url: &str,
        expect_chain_id: Option<u64>,
        signers: Vec<PrivateKeySigner>,
    ) -> Result<Self, ChainError> {
        let parsed: url::Url = url.parse().map_err(|e| ChainError::Config(format!("RPC URL {url:?}: {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()
            .map_err(|e| ChainError::Config(format!("tokio runtime: {e}")))?;
        let addresses: Vec<Address> = signers.iter().map(|s| s.address()).collect();
        let mut wallet: Option<EthereumWallet> = None;
        for s in signers {
            match &mut wallet {
                None => wallet = Some(EthereumWallet::from(s)),
                Some(w) => w.register_signer(s),
            }
        }
        let provider = rt.block_on(async {
            let client = ClientBuilder::default().layer(RetryBackoffLayer::new(5, 200, 10_000)).http(parsed);
            match wallet.clone() {
                Some(w) => ProviderBuilder::new().wallet(w).connect_client(client).erased(),
                None => ProviderBuilder::new().connect_client(client).erased(),
            }
        });
        let mut rpc = Rpc {
            url: url.to_string(),
            chain_id: 0,
            provider,
            signers: addresses,
            wallet,
            rt,
            policy: SendPolicy::default(),
            last_send: SendLog::default(),
        };
        let id = rpc.retry(|p| async move { p.get_chain_id().await })?;
        if let Some(want) = expect_chain_id {
            if id != want {
                return Err(ChainError::Config(format!("{url} is chain {id}, but chain {want} was expected")));
            }
        }
        rpc.chain_id = id;
        Ok(rpc)
    }

    /// Replace the send policy (how long before a stuck transaction is replaced, and how).
    pub fn with_policy(mut self, policy: SendPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The next nonce of `who` counting the transactions waiting in the node's pool (see [`Chain::nonce`] for
    /// the mined ones only).
    pub fn pending_nonce(&mut self, who: Address) -> Result<u64, ChainError> {
        self.retry(|p| async move { p.get_transaction_count(who).pending().await })
    }

    /// What the last [`Chain::send`] did: its nonce and every version sent.
    pub fn last_send(&self) -> &SendLog {
        &self.last_send
    }

    /// Send `req` (nonce, gas, fees and chain id set) as one version of a transaction: signed here, so its hash is
    /// known whatever the node answers, and sent raw, retrying transport errors with the same bytes (the same
    /// hash, so a version the node already holds is not a second transaction). Returns its hash and whether the node
    /// took it or already holds it ("already known": an earlier attempt reached it); `false` when the node refuses
    /// it as underpriced (a pending version pays more) or its nonce is used (perhaps by this very version, mined
    /// after an attempt whose answer was lost: the caller looks for its receipt).
    fn send_version(&self, req: TransactionRequest) -> Result<(B256, bool), ChainError> {
        let wallet = self.wallet.clone().ok_or_else(|| ChainError::Config("no signing key".into()))?;
        let envelope = self
            .rt
            .block_on(async move { NetworkWallet::<Ethereum>::sign_request(&wallet, req).await })
            .map_err(|e| ChainError::Config(format!("signing: {e}")))?;
        let hash = *envelope.tx_hash();
        let raw = envelope.encoded_2718();
        let mut delay = Duration::from_millis(100);
        for attempt in 0.. {
            let provider = self.provider.clone();
            let raw = raw.clone();
            match self.rt.block_on(async move { provider.send_raw_transaction(&raw).await }) {
                Ok(_) => return Ok((hash, true)),
                Err(e) => {
                    let m = e.to_string().to_lowercase();
                    if m.contains("already known") || m.contains("already imported") {
                        return Ok((hash, true));
                    }
                    if m.contains("underpriced") || m.contains("nonce too low") {
                        return Ok((hash, false));
                    }
                    let err = rpc_err(e);
                    if attempt < 4 && transient(&err) {
                        std::thread::sleep(delay);
                        delay *= 2;
                        continue;
                    }
                    return Err(match err {
                        // An earlier attempt may have reached the node: say which transaction to look for.
                        ChainError::Rpc(m) if attempt > 0 => ChainError::Rpc(format!(
                            "{m} (transaction {hash} may have reached the node: re-run to reconcile)"
                        )),
                        other => other,
                    });
                }
            }
        }
        unreachable!()
    }

    /// The receipt of whichever of `hashes` is mined, if any.
    fn mined(&self, hashes: &[B256]) -> Result<Option<alloy_rpc_types_eth::TransactionReceipt>, ChainError> {
        for &h in hashes {
            if let Some(r) = self.retry(|p| async move { p.get_transaction_receipt(h).await })? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// Send with a fixed nonce, replacing the transaction at higher fees while it is not mined (see the module's
    /// documentation). Returns the mined version's receipt.
    fn send_replacing(
        &mut self,
        req: TransactionRequest,
        from: Address,
    ) -> Result<alloy_rpc_types_eth::TransactionReceipt, ChainError> {
        let latest = self.retry(|p| async move { p.get_transaction_count(from).latest().await })?;
        let pending = self.retry(|p| async move { p.get_transaction_count(from).pending().await })?;
        // A transaction of ours still pending (a crashed run's): take its nonce rather than add a second one.
        let nonce = latest;
        let fees = self.retry(|p| async move { p.estimate_eip1559_fees().await })?;
        let (mut max_fee, mut tip) = (fees.max_fee_per_gas, fees.max_priority_fee_per_gas);
        self.last_send = SendLog { nonce, took_over_pending: pending > latest, ..Default::default() };
        let policy = self.policy.clone();
        let bump = |x: u128| (x.saturating_mul(100 + policy.bump_percent as u128) / 100).max(x + 1);
        let mut hashes: Vec<B256> = Vec::new();
        let mut replacements = 0u32;
        loop {
            if max_fee > policy.max_fee_per_gas {
                max_fee = policy.max_fee_per_gas;
                tip = tip.min(max_fee);
            }
            let version =
                req.clone().with_nonce(nonce).with_max_fee_per_gas(max_fee).with_max_priority_fee_per_gas(tip);
            let (h, taken) = self.send_version(version)?;
            if !hashes.contains(&h) {
                // A refused version is watched too: "nonce too low" may mean it was mined after an attempt whose
                // answer was lost.
                hashes.push(h);
                if taken {
                    self.last_send.versions.push((h, max_fee, tip));
                }
            }
            if !taken {
                // Underpriced against a pending version we do not know (a crashed run's), or the nonce is
                // used: if one of ours was mined we are done, else raise the fees at once.
                if let Some(r) = self.mined(&hashes)? {
                    self.last_send.mined = Some(r.transaction_hash);
                    return Ok(r);
                }
                let now = self.retry(|p| async move { p.get_transaction_count(from).latest().await })?;
                if now > nonce {
                    // Mined just now (its receipt may lag the nonce by a poll), or another transaction's.
                    std::thread::sleep(Duration::from_millis(200));
                    if let Some(r) = self.mined(&hashes)? {
                        self.last_send.mined = Some(r.transaction_hash);
                        return Ok(r);
                    }
                    return Err(ChainError::Rpc(format!(
                        "nonce {nonce} of {from} was used by another transaction (not this one): re-run to reconcile"
                    )));
                }
                // A node answering "underpriced" forever cannot push the fees past the ceiling or the count.
                if max_fee >= policy.max_fee_per_gas || replacements >= policy.max_replacements {
                    return Err(ChainError::Rpc(format!(
                        "nonce {nonce} of {from}: a pending transaction pays more than this send may offer \
                         ({replacements} raises, ceiling {} wei per gas)",
                        policy.max_fee_per_gas
                    )));
                }
                replacements += 1;
                max_fee = bump(max_fee);
                tip = bump(tip);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let deadline = std::time::Instant::now() + policy.stuck_after;
            loop {
                if let Some(r) = self.mined(&hashes)? {
                    self.last_send.mined = Some(r.transaction_hash);
                    return Ok(r);
                }
                if std::time::Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100).min(policy.stuck_after));
            }
            if replacements >= policy.max_replacements || max_fee >= policy.max_fee_per_gas {
                return Err(ChainError::Rpc(format!(
                    "transaction {} (nonce {nonce} of {from}) not mined after {replacements} replacements; it may still \
                     land: re-run to reconcile",
                    hashes.last().copied().unwrap_or_default()
                )));
            }
            replacements += 1;
            max_fee = bump(max_fee);
            tip = bump(tip);
        }
    }

    /// Run a read with up to 5 attempts on transient transport errors (exponential backoff from 100 ms).
    fn retry<T, F, Fut>(&self, f: F) -> Result<T, ChainError>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: std::future::Future<Output = Result<T, RpcError<TransportErrorKind>>>,
    {
        let mut delay = Duration::from_millis(100);
        for attempt in 0.. {
            match self.rt.block_on(f(self.provider.clone())).map_err(rpc_err) {
                Err(e) if attempt < 4 && transient(&e) => {
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                r => return r,
            }
        }
        unreachable!()
    }

    /// Advance a development node (anvil, hardhat): the clock by `seconds` (`evm_increaseTime`), then
    /// `blocks` blocks (`anvil_mine`; at least one when the clock moved, so the next block carries the time).
    /// A production node refuses these methods, and so does this call.
    pub fn advance(&mut self, blocks: u64, seconds: u64) -> Result<(), ChainError> {
        let dev = |e: ChainError| {
            ChainError::Config(format!("{} cannot advance time (not a development node?): {e}", self.url))
        };
        if seconds > 0 {
            let _: serde_json::Value = self
                .rt
                .block_on(self.provider.raw_request("evm_increaseTime".into(), (seconds,)))
                .map_err(rpc_err)
                .map_err(dev)?;
        }
        let n = if seconds > 0 { blocks.max(1) } else { blocks };
        if n > 0 {
            let _: serde_json::Value = self
                .rt
                .block_on(self.provider.raw_request("anvil_mine".into(), (U256::from(n),)))
                .map_err(rpc_err)
                .map_err(dev)?;
        }
        Ok(())
    }

    fn request(tx: &Tx) -> TransactionRequest {
        let mut req = TransactionRequest::default().with_from(tx.from).with_input(tx.data.clone()).with_value(tx.value);
        match tx.to {
            Some(to) => req = req.with_to(to),
            None => req = req.into_create(),
        }
        if let Some(g) = tx.gas {
            req = req.with_gas_limit(g);
        }
        req
    }
}

impl Chain for Rpc {
    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn describe(&self) -> String {
        format!("{} (chain {})", self.url, self.chain_id)
    }

    fn block_number(&mut self) -> Result<u64, ChainError> {
        self.retry(|p| async move { p.get_block_number().await })
    }

    fn timestamp(&mut self) -> Result<u64, ChainError> {
        let block = self.retry(|p| async move { p.get_block_by_number(BlockNumberOrTag::Latest).await })?;
        block.map(|b| b.header.timestamp).ok_or_else(|| ChainError::Rpc("no latest block".into()))
    }

    fn balance(&mut self, who: Address) -> Result<U256, ChainError> {
        self.retry(|p| async move { p.get_balance(who).await })
    }

    fn code(&mut self, who: Address) -> Result<Bytes, ChainError> {
        self.retry(|p| async move { p.get_code_at(who).await })
    }

    fn call(&mut self, from: Address, to: Address, data: Bytes) -> Result<Bytes, ChainError> {
        let req = TransactionRequest::default().with_from(from).with_to(to).with_input(data);
        self.retry(|p| {
            let req = req.clone();
            async move { p.call(req).await }
        })
    }

    fn estimate_gas(&mut self, tx: &Tx) -> Result<u64, ChainError> {
        let req = Self::request(tx);
        self.retry(|p| {
            let req = req.clone();
            async move { p.estimate_gas(req).await }
        })
    }

    fn send(&mut self, tx: Tx) -> Result<Receipt, ChainError> {
        if !self.signers.contains(&tx.from) {
            return Err(ChainError::Config(format!("no key for {} (signers: {:?})", tx.from, self.signers)));
        }
        // Preflight: a revert is reported with its reason and nothing is sent.
        let gas = match tx.gas {
            Some(g) => g,
            None => self.estimate_gas(&tx)?,
        };
        let (from, to, data, value) = (tx.from, tx.to, tx.data.clone(), tx.value);
        let req = Self::request(&Tx { gas: Some(gas), ..tx }).with_chain_id(self.chain_id);
        let receipt = self.send_replacing(req, from)?;
        let logs = receipt.inner.logs().iter().map(record).collect();
        if !receipt.status() {
            // The state moved between the preflight and inclusion: replay the call at the parent block to
            // recover the reason (best effort; some nodes prune old state).
            let block = receipt.block_number.unwrap_or_default().saturating_sub(1);
            let replay = TransactionRequest::default().with_from(from).with_input(data.clone()).with_value(value);
            let replay = match to {
                Some(t) => replay.with_to(t),
                None => replay.into_create(),
            };
            let provider = self.provider.clone();
            let why = self
                .rt
                .block_on(async move { provider.call(replay).block(block.into()).await })
                .map_err(rpc_err)
                .err()
                .and_then(|e| e.revert_reason().map(str::to_string))
                .unwrap_or_else(|| "no reason recovered".into());
            return Err(ChainError::Reverted {
                reason: format!("transaction {} reverted on chain: {why}", receipt.transaction_hash),
                data: Bytes::new(),
            });
        }
        Ok(Receipt {
            tx_hash: receipt.transaction_hash,
            block: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            contract_address: receipt.contract_address,
            logs,
        })
    }

    fn nonce(&mut self, who: Address) -> Result<u64, ChainError> {
        self.retry(|p| async move { p.get_transaction_count(who).latest().await })
    }

    fn gas_used(&mut self, tx_hash: B256) -> Result<Option<u64>, ChainError> {
        let r = self.retry(|p| async move { p.get_transaction_receipt(tx_hash).await })?;
        Ok(r.map(|r| r.gas_used))
    }

    fn logs(&mut self, filter: &LogFilter) -> Result<Vec<LogRecord>, ChainError> {
        // Public endpoints cap eth_getLogs ranges (often 10,000 blocks): query in windows up to the latest block.
        let latest = match filter.to_block {
            Some(b) => b,
            None => self.block_number()?,
        };
        let mut out = Vec::new();
        let mut from = filter.from_block;
        while from <= latest {
            let to = (from + LOG_WINDOW - 1).min(latest);
            let mut f = Filter::new().address(filter.address).from_block(from).to_block(to);
            if !filter.topic0.is_empty() {
                f = f.event_signature(filter.topic0.clone());
            }
            if let Some(t1) = filter.topic1 {
                f = f.topic1(t1);
            }
            if let Some(t2) = filter.topic2 {
                f = f.topic2(t2);
            }
            let logs = self.retry(|p| {
                let f = f.clone();
                async move { p.get_logs(&f).await }
            })?;
            out.extend(logs.iter().map(record));
            from = to + 1;
        }
        Ok(out)
    }

    fn signers(&self) -> Vec<Address> {
        self.signers.clone()
    }
}
