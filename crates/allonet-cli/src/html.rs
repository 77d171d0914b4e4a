//! Self-contained HTML reports: `allonet-report`'s.

pub use allonet_report::html::*;
