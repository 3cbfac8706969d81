//! The TUF 1.0 verification engine of tuf-mirror.
//!
//! One client workflow (TUF specification 1.0, section 5) serves both sides of the
//! mirror: the daemon verifies each upstream repository with it (all delegated roles,
//! the upstream root as anchor) and clients verify the mirror with it (lazy lookups,
//! the mirror root as anchor, targets keys pinned, or the upstream's own root pinned with
//! [`UpstreamAnchor`]). What differs is passed in
//! [`UpdaterConfig`]: [`TargetsTrust`], [`ExpiryPolicy`], [`Limits`],
//! [`DelegationMode`] and the [`ValidationTime`].
//!
//! Signatures are checked over the canonical form of the JSON text as received
//! ([`canonical`]), never over a re-serialization, so fields this crate does not
//! model are still covered by the signature.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tuf_mirror_client::{DirStore, HttpTransport, Updater, UpdaterConfig};
//!
//! # fn main() -> Result<(), tuf_mirror_client::Error> {
//! let mut config = UpdaterConfig::new("http://127.0.0.1:8080/metadata/".parse().unwrap());
//! config.targets_base = Some("http://127.0.0.1:8080/targets/".parse().unwrap());
//! let store = Arc::new(DirStore::new("/var/lib/app/tuf")?);
//! let root = std::fs::read("/etc/app/root.json").unwrap();
//! let mut updater = Updater::init(config, Arc::new(HttpTransport::default()), store, &root)?;
//! updater.refresh()?;
//! if let Some(info) = updater.target_info("releases/app-1.0.tar.gz")? {
//!     updater.download_target(&info, std::path::Path::new("/tmp/app-1.0.tar.gz"))?;
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod anchor;
pub mod canonical;
mod error;
pub mod key;
pub mod names;
mod policy;
pub mod schema;
mod store;
mod target;
mod transport;
mod trusted;
mod updater;
mod verify;
mod walk;

pub use anchor::UpstreamAnchor;
pub use error::{Error, ErrorKind, Result};
pub use policy::{ExpiryPolicy, Limits, RoleClass, ValidationTime, MAX_GRACE};
pub use store::{DirStore, MemoryStore, MetadataStore};
pub use target::{copy_verified, TargetVerifier};
pub use transport::{fetch_limited, ByteStream, FileTransport, HttpTransport, Transport};
pub use trusted::{
    TrustedDelegations, TrustedRoot, TrustedSnapshot, TrustedTargets, TrustedTimestamp,
};
pub use updater::{
    dir_url, DelegationMode, PinnedKeys, RefreshStats, TargetInfo, TargetsTrust, Updater,
    UpdaterConfig,
};
