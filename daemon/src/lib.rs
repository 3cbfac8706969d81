//! The tuf-mirror daemon: verifies upstream TUF repositories with the engine of
//! `tuf-mirror-client`, republishes their targets metadata byte for byte, re-signs root,
//! snapshot and timestamp with the mirror's keys, and serves the result over HTTP.
//!
//! Modules are named after what they own; only [`state`] touches the state database and only
//! [`serve`] answers HTTP.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ceremony;
pub mod clock;
pub mod cycle;
pub mod demo;
pub mod export;
pub mod keyring;
pub mod mirror;
pub mod prune;
pub mod publish;
pub mod schedule;
pub mod serve;
pub mod service;
pub mod state;
pub mod targets;
pub mod upstream;
