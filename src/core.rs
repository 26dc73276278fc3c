//! The pure heart of Zeke: vocabulary and algorithms with no I/O.
//!
//! Invariant (checked by `tests/tidy.rs`): nothing under `core/` uses tokio, reqwest, serde derives,
//! `std::fs`, `std::net` or `std::process`. Everything here is synchronous and deterministic, so it is
//! unit-tested with plain data.

pub mod context;
pub mod edit;
pub mod llm;
pub mod patch;
pub mod policy;
pub mod prompt;
pub mod suggestion;
pub mod syntax;
pub mod testfile;
pub mod text;
