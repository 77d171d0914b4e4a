//! Uniswap v2 (a constant-product AMM) on any chain: the factory, the Router02 and WETH9 deployed from the npm
//! packages `@uniswap/v2-core` 1.0.1 and `@uniswap/v2-periphery` 1.1.0-beta.0 pinned in `contracts/package.json`.
//! They are GPL-3.0, so their compiled artifacts are read from `contracts/node_modules` at run time and are never
//! committed or embedded in allonet.
//!
//! The interfaces below are written from the published Uniswap v2 ABI (docs.uniswap.org/contracts/v2/reference),
//! and [`amount_out`] follows the whitepaper's pricing rule (Adams, Zinsmeister, Robinson: "Uniswap v2 Core",
//! 2020, §3.2.1): `out = in·997·R_out / (R_in·1000 + in·997)`, rounded down, the router's `getAmountOut`.

#![allow(missing_docs, clippy::too_many_arguments)]

use std::path::PathBuf;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;
use serde::{Deserialize, Serialize};

use crate::chain::{read, transact, Chain, ChainError, Tx};
use crate::contracts::{deploy_code, PayToken};

alloy_sol_types::sol! {
    #[sol(all_derives)]
    interface IUniswapV2Factory {
        constructor(address feeToSetter);
        function createPair(address tokenA, address tokenB) external returns (address pair);
        function getPair(address tokenA, address tokenB) external view returns (address pair);
    }

    #[sol(all_derives)]
    interface IUniswapV2Router02 {
        constructor(address factory, address weth);
        function factory() external view returns (address);
        function addLiquidity(
            address tokenA,
            address tokenB,
            uint256 amountADesired,
            uint256 amountBDesired,
            uint256 amountAMin,
            uint256 amountBMin,
            address to,
            uint256 deadline
        ) external returns (uint256 amountA, uint256 amountB, uint256 liquidity);
        function swapExactTokensForTokens(
            uint256 amountIn,
            uint256 amountOutMin,
            address[] path,
            address to,
            uint256 deadline
        ) external returns (uint256[] amounts);
        function getAmountsOut(uint256 amountIn, address[] path) external view returns (uint256[] amounts);
    }

    #[sol(all_derives)]
    interface IUniswapV2Pair {
        function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
        function token0() external view returns (address);
        event Swap(
            address indexed sender,
            uint256 amount0In,
            uint256 amount1In,
            uint256 amount0Out,
            uint256 amount1Out,
            address indexed to
        );
    }
}

/// Where the artifacts are, under `contracts/`.
const FACTORY: &str = "node_modules/@uniswap/v2-core/build/UniswapV2Factory.json";
const ROUTER: &str = "node_modules/@uniswap/v2-periphery/build/UniswapV2Router02.json";
const WETH: &str = "node_modules/@uniswap/v2-periphery/build/WETH9.json";

/// The creation bytecode of the three contracts, read from `node_modules`.
pub struct Artifacts {
    pub factory: Bytes,
    pub router: Bytes,
    pub weth: Bytes,
}

fn bytecode(path: PathBuf) -> Result<Bytes, ChainError> {
    let text = std::fs::read_to_string(&path).map_err(|e| ChainError::Config(format!("{}: {e}", path.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ChainError::Config(format!("{}: not a compiled artifact: {e}", path.display())))?;
    let hex = v["bytecode"]
        .as_str()
        .or_else(|| v["evm"]["bytecode"]["object"].as_str())
        .ok_or_else(|| ChainError::Config(format!("{}: no bytecode", path.display())))?;
    alloy_primitives::hex::decode(hex.trim_start_matches("0x"))
        .map(Bytes::from)
        .map_err(|e| ChainError::Config(format!("{}: bytecode is not hex: {e}", path.display())))
}

/// Reads the Uniswap v2 artifacts, installing `contracts/`'s npm packages first when they are missing.
pub fn artifacts() -> Result<Artifacts, ChainError> {
    if !crate::anvil::npm_install(ROUTER)? {
        return Err(ChainError::Config(
            "Uniswap v2 is read from the npm packages in contracts/, and npm is not installed".into(),
        ));
    }
    let dir = crate::anvil::contracts_dir();
    Ok(Artifacts {
        factory: bytecode(dir.join(FACTORY))?,
        router: bytecode(dir.join(ROUTER))?,
        weth: bytecode(dir.join(WETH))?,
    })
}

/// A deployed Uniswap v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amm {
    pub factory: Address,
    pub router: Address,
    pub weth: Address,
}

fn create(chain: &mut dyn Chain, from: Address, what: &str, code: Vec<u8>) -> Result<Address, ChainError> {
    let r = chain.send(Tx { from, to: None, data: code.into(), ..Default::default() })?;
    r.contract_address.ok_or_else(|| ChainError::Config(format!("deploying {what}: no contract address")))
}

/// Deploys WETH9, the factory (`from` sets its fee recipient) and Router02 on `chain`.
pub fn deploy(chain: &mut dyn Chain, from: Address) -> Result<Amm, ChainError> {
    let a = artifacts()?;
    let weth = create(chain, from, "WETH9", a.weth.to_vec())?;
    let code = deploy_code(&a.factory, &IUniswapV2Factory::constructorCall { feeToSetter: from });
    let factory = create(chain, from, "UniswapV2Factory", code.to_vec())?;
    let code = deploy_code(&a.router, &IUniswapV2Router02::constructorCall { factory, weth });
    let router = create(chain, from, "UniswapV2Router02", code.to_vec())?;
    Ok(Amm { factory, router, weth })
}

/// The calldata of ERC-20 `approve(spender, amount)`.
pub fn approve_calldata(spender: Address, amount: U256) -> Bytes {
    PayToken::approveCall { spender, value: amount }.abi_encode().into()
}

/// The calldata of `swapExactTokensForTokens(amount_in, min_out, [sell, buy], to, deadline)`.
pub fn swap_calldata(amount_in: U256, min_out: U256, sell: Address, buy: Address, to: Address, deadline: u64) -> Bytes {
    IUniswapV2Router02::swapExactTokensForTokensCall {
        amountIn: amount_in,
        amountOutMin: min_out,
        path: vec![sell, buy],
        to,
        deadline: U256::from(deadline),
    }
    .abi_encode()
    .into()
}

/// Creates the `a`/`b` pair with `amount_a` and `amount_b` from `from` (which approves the router for both).
pub fn add_liquidity(
    chain: &mut dyn Chain,
    amm: &Amm,
    from: Address,
    (a, amount_a): (Address, U256),
    (b, amount_b): (Address, U256),
) -> Result<(), ChainError> {
    for (t, n) in [(a, amount_a), (b, amount_b)] {
        chain.send(Tx { from, to: Some(t), data: approve_calldata(amm.router, n), ..Default::default() })?;
    }
    let deadline = U256::from(chain.timestamp()? + 3_600);
    let call = IUniswapV2Router02::addLiquidityCall {
        tokenA: a,
        tokenB: b,
        amountADesired: amount_a,
        amountBDesired: amount_b,
        amountAMin: amount_a,
        amountBMin: amount_b,
        to: from,
        deadline,
    };
    transact(chain, from, amm.router, &call)?;
    Ok(())
}

/// The pair of `a` and `b` (`Address::ZERO` when none).
pub fn pair(chain: &mut dyn Chain, amm: &Amm, a: Address, b: Address) -> Result<Address, ChainError> {
    read(chain, amm.factory, &IUniswapV2Factory::getPairCall { tokenA: a, tokenB: b })
}

/// The reserves of `a` and `b` in their pair, in that order.
pub fn reserves(chain: &mut dyn Chain, amm: &Amm, a: Address, b: Address) -> Result<(U256, U256), ChainError> {
    let p = pair(chain, amm, a, b)?;
    if p == Address::ZERO {
        return Err(ChainError::Config(format!("no Uniswap v2 pair of {a} and {b}")));
    }
    let r = read(chain, p, &IUniswapV2Pair::getReservesCall {})?;
    let token0 = read(chain, p, &IUniswapV2Pair::token0Call {})?;
    let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
    Ok(if token0 == a { (r0, r1) } else { (r1, r0) })
}

/// What the router pays for `amount_in` against reserves `r_in`, `r_out` (0.3 % fee, rounded down).
pub fn amount_out(amount_in: U256, r_in: U256, r_out: U256) -> U256 {
    let with_fee = amount_in * U256::from(997u64);
    let den = r_in * U256::from(1_000u64) + with_fee;
    if den.is_zero() {
        return U256::ZERO;
    }
    with_fee * r_out / den
}

/// The router's own quote for selling `amount_in` of `sell` for `buy` (`getAmountsOut`).
pub fn quote(
    chain: &mut dyn Chain,
    amm: &Amm,
    amount_in: U256,
    sell: Address,
    buy: Address,
) -> Result<U256, ChainError> {
    let out =
        read(chain, amm.router, &IUniswapV2Router02::getAmountsOutCall { amountIn: amount_in, path: vec![sell, buy] })?;
    out.last().copied().ok_or_else(|| ChainError::Rpc("getAmountsOut returned nothing".into()))
}

/// Deploys a [`PayToken`] (`symbol`, `decimals`) whose whole `supply` goes to `holder` (sent by `from`).
pub fn new_token(
    chain: &mut dyn Chain,
    from: Address,
    symbol: &str,
    decimals: u8,
    holder: Address,
    supply: U256,
) -> Result<Address, ChainError> {
    let args = PayToken::constructorCall {
        name_: format!("{symbol} (allonet test token)"),
        symbol_: symbol.to_string(),
        decimals_: decimals,
        holder,
        supply,
    };
    create(chain, from, symbol, deploy_code(&PayToken::BYTECODE, &args).to_vec())
}
