//! The agent's checkpoints: one SQLite database (`agent.db`, WAL, `synchronous=FULL`) with the epochs and, per
//! epoch, each finished stage's output as canonical JSON. A stage's output is written in one transaction, so after
//! a crash a stage is either recorded whole or not at all, and the agent resumes at the first stage not recorded
//! (the checkpoint pattern of reth's staged sync).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::stages::Stage;
use crate::AgentError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS stages (
    epoch INTEGER NOT NULL REFERENCES epochs(epoch),
    stage TEXT NOT NULL,
    position INTEGER NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (epoch, stage)
);
";

/// Schema version of `agent.db` (`PRAGMA user_version`).
const VERSION: i64 = 1;

/// The checkpoint database.
pub struct Checkpoints {
    db: Connection,
}

fn err(e: rusqlite::Error) -> AgentError {
    AgentError::Checkpoint(e.to_string())
}

impl Checkpoints {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Checkpoints, AgentError> {
        let db = Connection::open(path).map_err(|e| AgentError::Checkpoint(format!("{}: {e}", path.display())))?;
        // Another process (a running loop, `agent status`) may hold the database: wait for it, do not fail.
        db.busy_timeout(std::time::Duration::from_secs(30)).map_err(err)?;
        db.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        db.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        db.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        let v: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
        if v > VERSION {
            return Err(AgentError::Checkpoint(format!(
                "{} was written by a newer allonet (schema {v}, this one reads {VERSION})",
                path.display()
            )));
        }
        // Written only when new, so that opening to read (status, reports) writes nothing.
        if v < VERSION {
            db.execute_batch(SCHEMA).map_err(err)?;
            db.pragma_update(None, "user_version", VERSION).map_err(err)?;
        }
        Ok(Checkpoints { db })
    }

    /// Every epoch, oldest first.
    pub fn epochs(&self) -> Result<Vec<u64>, AgentError> {
        let mut q = self.db.prepare("SELECT epoch FROM epochs ORDER BY epoch").map_err(err)?;
        let rows = q.query_map([], |r| r.get::<_, i64>(0)).map_err(err)?;
        rows.map(|r| r.map(|e| e as u64).map_err(err)).collect()
    }

    /// The epoch still running (with a stage left), if any.
    pub fn open_epoch(&self) -> Result<Option<u64>, AgentError> {
        let e: Option<i64> = self
            .db
            .query_row(
                "SELECT epoch FROM epochs e WHERE NOT EXISTS \
                 (SELECT 1 FROM stages s WHERE s.epoch = e.epoch AND s.stage = ?1) ORDER BY epoch LIMIT 1",
                params![Stage::Report.name()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        Ok(e.map(|e| e as u64))
    }

    /// Opens the next epoch (numbered from 1).
    pub fn new_epoch(&mut self) -> Result<u64, AgentError> {
        let last: Option<i64> = self.db.query_row("SELECT MAX(epoch) FROM epochs", [], |r| r.get(0)).map_err(err)?;
        let e = last.unwrap_or(0) + 1;
        self.db.execute("INSERT INTO epochs (epoch) VALUES (?1)", params![e]).map_err(err)?;
        Ok(e as u64)
    }

    /// The stages of `epoch` done, in pipeline order.
    pub fn done(&self, epoch: u64) -> Result<Vec<Stage>, AgentError> {
        Ok(self.outputs(epoch)?.into_keys().collect())
    }

    /// Every recorded output of `epoch`, by stage.
    pub fn outputs(&self, epoch: u64) -> Result<BTreeMap<Stage, Value>, AgentError> {
        let mut q =
            self.db.prepare("SELECT stage, output FROM stages WHERE epoch = ?1 ORDER BY position").map_err(err)?;
        let rows = q
            .query_map(params![epoch as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (stage, text) = row.map_err(err)?;
            let stage = Stage::from_name(&stage)
                .ok_or_else(|| AgentError::Checkpoint(format!("epoch {epoch}: unknown stage `{stage}`")))?;
            let v = serde_json::from_str(&text)
                .map_err(|e| AgentError::Checkpoint(format!("epoch {epoch}, stage {}: {e}", stage.name())))?;
            out.insert(stage, v);
        }
        Ok(out)
    }

    /// One stage's output of `epoch`, if recorded.
    pub fn output(&self, epoch: u64, stage: Stage) -> Result<Option<Value>, AgentError> {
        let text: Option<String> = self
            .db
            .query_row(
                "SELECT output FROM stages WHERE epoch = ?1 AND stage = ?2",
                params![epoch as i64, stage.name()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| AgentError::Checkpoint(e.to_string()))).transpose()
    }

    /// Records a stage's output (in one transaction; a stage already recorded is refused, never overwritten).
    pub fn record(&mut self, epoch: u64, stage: Stage, output: &Value) -> Result<(), AgentError> {
        let tx = self.db.transaction().map_err(err)?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM stages WHERE epoch = ?1 AND stage = ?2",
                params![epoch as i64, stage.name()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        if exists.is_some() {
            return Err(AgentError::Checkpoint(format!("epoch {epoch}: stage {} is already recorded", stage.name())));
        }
        tx.execute(
            "INSERT INTO stages (epoch, stage, position, output) VALUES (?1, ?2, ?3, ?4)",
            params![epoch as i64, stage.name(), stage.position() as i64, allonet_core::canonical_json(output)],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}
