//! (being moved from the CLI)
