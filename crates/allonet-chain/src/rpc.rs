//! Any EVM chain over JSON-RPC through `alloy`: chain-id check, local key signers, nonces and gas filled by
//! alloy's recommended fillers, receipts awaited, rate-limit retries with backoff (alloy's
//! `RetryBackoffLayer`) plus bounded retries of reads on transport errors.
//!
//! Sends are never retried blindly: a transaction may have reached the node before the connection broke. A
//! re-run of a payout finds what landed from events, and the contract's plan ledger refuses a second payment.

use std::time::Duration;

use alloy_network::{EthereumWallet, TransactionBuilder};
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_provider::{DynProvider, Provider, ProviderBuilder};
use alloy_rpc_client::ClientBuilder;
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, TransactionRequest};
use alloy_signer_local::PrivateKeySigner;
use alloy_transport::layers::RetryBackoffLayer;
use alloy_transport::{RpcError, TransportErrorKind};

use crate::chain::{Chain, ChainError, LogFilter, LogRecord, Receipt, Tx};

/// How long to wait for a receipt before giving up (the transaction may still land; re-run to reconcile).
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Blocks per eth_getLogs request.
pub const LOG_WINDOW: u64 = 10_000;

/// A node over HTTP JSON-RPC.
pub struct Rpc {
    url: String,
    chain_id: u64,
    provider: DynProvider,
    signers: Vec<Address>,
    rt: tokio::runtime::Runtime,
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
            match wallet {
                Some(w) => ProviderBuilder::new().wallet(w).connect_client(client).erased(),
                None => ProviderBuilder::new().connect_client(client).erased(),
            }
        });
        let mut rpc = Rpc { url: url.to_string(), chain_id: 0, provider, signers: addresses, rt };
        let id = rpc.retry(|p| async move { p.get_chain_id().await })?;
        if let Some(want) = expect_chain_id {
            if id != want {
                return Err(ChainError::Config(format!("{url} is chain {id}, but chain {want} was expected")));
            }
        }
        rpc.chain_id = id;
        Ok(rpc)
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
        let req = Self::request(&Tx { gas: Some(gas), ..tx });
        let provider = self.provider.clone();
        let receipt = self.rt.block_on(async move {
            let pending = provider.send_transaction(req).await.map_err(rpc_err)?;
            pending
                .with_timeout(Some(RECEIPT_TIMEOUT))
                .get_receipt()
                .await
                .map_err(|e| ChainError::Rpc(format!("waiting for the receipt: {e}")))
        })?;
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
