//! The one key-file format and the one holders format every command reads.
//!
//! A key file is JSON `{"address": "0x…", "private_key": "…hex…"}` (what `allonet gov keys new` writes, mode
//! 0600); the address is checked against the key, so a file whose halves disagree is refused. A holders file is
//! CSV `address,amount` with amounts in whole tokens (decimals allowed up to the token's), each address once: the
//! on-chain governance token's holders (ALLO, 18 decimals) and the SQLite governor's (`gov init --decimals`,
//! default 0: whole units of voting power) are read by the same rule.

use std::path::Path;

use allonet_core::{Address, Table, Token, TokenAmount};
use alloy_signer_local::PrivateKeySigner;

use crate::EngineError;

/// A private key for signing, as written in key files.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    address: Address,
    private_key: String,
}

fn parse_hex_key(hex: &str, what: &str) -> Result<PrivateKeySigner, EngineError> {
    hex.trim()
        .parse::<PrivateKeySigner>()
        .map_err(|e| EngineError::Config(format!("{what}: not a secp256k1 private key ({e})")))
}

/// Read a key file.
pub fn load_key_file(path: &Path) -> Result<PrivateKeySigner, EngineError> {
    let name = path.display().to_string();
    let f: KeyFile = allonet_core::input::read_json(path)?;
    let key = parse_hex_key(&f.private_key, &format!("{name}: private_key"))?;
    if key.address() != f.address.0 {
        return Err(EngineError::Config(format!(
            "{name}: the private key belongs to {}, but the file says {}",
            key.address(),
            f.address
        )));
    }
    Ok(key)
}

/// A key from a key file, else from the environment variable `env` (hex).
pub fn load_key(file: Option<&Path>, env: &str) -> Result<PrivateKeySigner, EngineError> {
    match file {
        Some(p) => load_key_file(p),
        None => {
            let hex = std::env::var(env)
                .map_err(|_| EngineError::Config(format!("no signing key: pass a key file or set {env}")))?;
            parse_hex_key(&hex, env)
        }
    }
}

/// Write a new random key file (refuses to overwrite one), readable only by its owner.
pub fn new_key_file(path: &Path) -> Result<PrivateKeySigner, EngineError> {
    if path.exists() {
        return Err(EngineError::Config(format!("{} exists; refusing to overwrite a key", path.display())));
    }
    let k = PrivateKeySigner::random();
    write_key_file(path, &k)?;
    Ok(k)
}

/// Write `key` as a key file, readable only by its owner.
pub fn write_key_file(path: &Path, key: &PrivateKeySigner) -> Result<(), EngineError> {
    let body = KeyFile { address: Address(key.address()), private_key: alloy_primitives::hex::encode(key.to_bytes()) };
    let text = serde_json::to_string_pretty(&body).expect("key file serialises") + "\n";
    crate::write_atomic(path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| EngineError::Io { path: path.display().to_string(), cause: e })?;
    }
    Ok(())
}

/// Read `address,amount` rows (whole tokens of `token`), each address once, at least one.
pub fn read_holders(path: &Path, token: &Token) -> Result<Vec<(Address, TokenAmount)>, EngineError> {
    holders_from_table(&Table::read(path)?, token)
}

/// [`read_holders`] from a table already read.
pub fn holders_from_table(t: &Table, token: &Token) -> Result<Vec<(Address, TokenAmount)>, EngineError> {
    let a = t.require_one_of(&["address", "holder", "account", "member"], "address")?;
    let n = t.require_one_of(&["amount", "balance", "tokens"], "amount")?;
    let mut out: Vec<(Address, TokenAmount)> = Vec::new();
    for row in t.rows() {
        let addr = Address::parse(row.get(a)).map_err(|e| t.error(row, a, e.to_string()))?;
        let amount = token.parse(row.get(n)).map_err(|e| t.error(row, n, e.to_string()))?;
        if out.iter().any(|(x, _)| *x == addr) {
            return Err(t.error(row, a, format!("{addr} listed twice")).into());
        }
        out.push((addr, amount));
    }
    if out.is_empty() {
        return Err(EngineError::Input(allonet_core::InputError::file(t.file.clone(), "no holders")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("allonet-engine-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn key_files_round_trip_and_refuse_a_mismatched_address() {
        let d = dir("round");
        let p = d.join("k.json");
        let k = new_key_file(&p).unwrap();
        assert_eq!(load_key_file(&p).unwrap().address(), k.address());
        assert!(new_key_file(&p).unwrap_err().to_string().contains("refusing to overwrite"));
        let other = PrivateKeySigner::random();
        let forged = serde_json::json!({"address": Address(other.address()), "private_key": alloy_primitives::hex::encode(k.to_bytes())});
        std::fs::write(&p, forged.to_string()).unwrap();
        let e = load_key_file(&p).unwrap_err().to_string();
        assert!(e.contains("belongs to"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn holders_are_whole_tokens_each_address_once() {
        let t = Table::from_bytes(
            "h.csv",
            b"address,amount\n0x00000000000000000000000000000000000000a1,1.5\n0x00000000000000000000000000000000000000a2,2\n",
        )
        .unwrap();
        let h = holders_from_table(&t, &Token::new("ALLO", 18)).unwrap();
        assert_eq!(
            h[0].1 .0,
            alloy_primitives::U256::from(15u64)
                * alloy_primitives::U256::from(10u64).pow(alloy_primitives::U256::from(17))
        );
        let dup = Table::from_bytes(
            "h.csv",
            b"address,amount\n0x00000000000000000000000000000000000000a1,1\n0x00000000000000000000000000000000000000A1,2\n",
        )
        .unwrap();
        let e = holders_from_table(&dup, &Token::new("ALLO", 18)).unwrap_err().to_string();
        assert!(e.contains("h.csv:3") && e.contains("listed twice"), "{e}");
    }
}
