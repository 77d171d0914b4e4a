//! # allonet-governance
//!
//! Governance that gates every movement of money: OpenZeppelin Governor's proposal lifecycle (pending,
//! active, defeated or succeeded, queued in a timelock, executed or expired; canceled by the proposer
//! while pending or by a guardian until execution), token / one-person / quadratic voting power with
//! delegation checkpoints and sybil scaling, EIP-712 signed ballots, and typed actions (approve a payout
//! plan, set the agent's caps, activate or roll back a model, change parameters, pause).
//!
//! Event-sourced and pure: [`governor::Governor::apply`] validates one [`governor::Event`] and changes
//! nothing on error; replaying stored events rebuilds the state. Time comes in with each event, so tests
//! drive it with any clock.
pub mod ballot;
pub mod governor;
pub mod power;

/// A source of time (seconds), so that lifecycle rules are testable.
pub trait Clock {
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
pub struct ManualClock(pub std::cell::Cell<u64>);

impl ManualClock {
    /// Starts at `t`.
    pub fn at(t: u64) -> Self {
        ManualClock(std::cell::Cell::new(t))
    }
    /// Moves time forward.
    pub fn advance(&self, secs: u64) {
        self.0.set(self.0.get() + secs);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
}
