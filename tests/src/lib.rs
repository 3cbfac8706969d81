//! Test support for tuf-mirror, independent of the engine it tests.
//!
//! - [`builder`]: [`builder::RepoBuilder`], a deterministic in-memory TUF 1.0 repository whose
//!   metadata are `serde_json::Value`s, signed with aws-lc-rs over `olpc-cjson` canonical
//!   bytes, so tests can build well-formed repositories and every kind of hostile one.
//! - [`server`]: [`server::TestServer`], a tiny static HTTP server on loopback that records
//!   requests and misbehaves on demand.
//! - [`softhsm`] and [`kms`]: a SoftHSM2 token and a KMS-compatible server (moto) with
//!   signing keys, started by the tests that need them, on this machine only.
//! - [`fixtures`]: the committed fixture repositories under `tests/fixtures/` and the code that
//!   generates them (`cargo run -p tuf-mirror-tests --bin gen-fixtures`).
//!
//! This crate must not use the engine (`tuf-mirror-client`) to build or sign anything: its
//! output is the independent reference the engine is checked against.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// A helper that cannot do what a test asked panics with a message saying what went wrong,
// which fails that test like an assertion does; returning errors would only move the panic
// into every caller.
#![allow(clippy::panic, clippy::expect_used)]

pub mod builder;
pub mod fixtures;
pub mod kms;
pub mod peers;
pub mod server;
pub mod softhsm;
