//! # allonet-governance
//!
//! Governance that gates every movement of money: OpenZeppelin Governor's proposal lifecycle (pending,
//! active, defeated or succeeded, queued in a timelock, executed or expired; canceled by the proposer
//! while pending or by a guardian until execution), token / one-person / quadratic voting power with
//! delegation checkpoints and sybil scaling, and typed actions (approve a payout plan, set the agent's caps,
//! activate or roll back a model, change parameters, pause).
//!
//! Every act is signed: an [`governor::Event`] carries its actor's EIP-712 signature over the act, the DAO id,
//! the actor's nonce and the signing time ([`acts`]). Event-sourced and pure: [`governor::Governor::apply`]
//! verifies and validates one event and changes nothing on error; replaying stored events rebuilds the
//! state and re-checks every signature. Time comes in with each event (the receiving clock's), so tests
//! drive it with any clock; the store decides whose clock that is.
pub mod acts;
pub mod governor;
pub mod power;

/// A source of time (seconds).
pub trait Clock: Send + Sync {
    /// Now, in seconds.
    fn now(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// A settable clock for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock(pub std::sync::atomic::AtomicU64);

impl ManualClock {
    /// Starts at `t`.
    pub fn at(t: u64) -> Self {
        ManualClock(std::sync::atomic::AtomicU64::new(t))
    }
    /// Moves time forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
    /// Sets the time.
    pub fn set(&self, t: u64) {
        self.0.store(t, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
