//! Money-path steps appended to the governance audit log (the SQLite store's hash chain), so that `allonet gov
//! audit verify` covers decisions and executions alike.

use allonet_governance::governor::Event;
use allonet_store::Store;
use serde::Serialize;

use crate::EngineError;

/// Append a [`Event::ChainRecord`] with `detail` as canonical JSON, at `now` (or the log's last time, if that is
/// later). Returns the entry's sequence number.
pub fn record<T: Serialize>(store: &mut Store, kind: &str, detail: &T, now: u64) -> Result<u64, EngineError> {
    let at = now.max(store.governor().last_at);
    let e = Event::ChainRecord { kind: kind.to_string(), detail: allonet_core::canonical_json(detail), at };
    store.submit(&e).map_err(|e| EngineError::Config(format!("cannot append to the audit log: {e}")))
}
