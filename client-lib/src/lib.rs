//! The TUF 1.0 verification engine of tuf-mirror.
//!
//! ## Applications: [`client::MirrorClient`] and the key bundle
//!
//! A site's security team hands every client one file, the key bundle
//! ([`bundle::Bundle`], format in `docs/bundle.md`): per repository, the mirror URLs, the
//! mirror's root (the trust anchor), the pinned upstream targets keys and the client
//! policy. A [`client::MirrorClient`] built from it refreshes, looks targets up,
//! downloads them and reports how stale each role is; targets metadata is accepted only
//! when signed by the pinned upstream keys, whatever the mirror's root says.
//!
//! ```
//! # use std::path::Path;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let mirror = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/basic");
//! # let bundle_path = dir.path().join("bundle.json");
//! # write_bundle(&mirror.canonicalize()?, &bundle_path)?;
//! use tuf_mirror_client::bundle::Bundle;
//! use tuf_mirror_client::client::MirrorClient;
//!
//! let bundle = Bundle::load(&bundle_path)?;
//! let mut client = MirrorClient::builder(&bundle, "demo")?
//!     .cache_dir(dir.path().join("cache"))
//!     .build()?;
//! client.refresh()?;
//!
//! let mut bytes = Vec::new();
//! let info = client.download("releases/app-1.0.tar.gz", &mut bytes)?;
//! assert_eq!(bytes.len() as u64, info.length);
//! client.download_to_file("hello.txt", &dir.path().join("hello.txt"))?;
//!
//! let report = client.staleness();
//! assert!(report.role("targets").is_some());
//! print!("{report}");
//! # Ok(())
//! # }
//! # // A bundle for a repository whose root lists its own targets keys: what
//! # // `tuf-mirror bundle export` writes for a mirror.
//! # fn write_bundle(mirror: &Path, out: &Path) -> Result<(), Box<dyn std::error::Error>> {
//! #     use tuf_mirror_client::bundle::{pins_from_root, render, ClientPolicy, RepositoryExport};
//! #     let root = std::fs::read(mirror.join("root.json"))?;
//! #     let (keys, threshold) = pins_from_root(&root)?;
//! #     let mirrors = [url::Url::from_directory_path(mirror).map_err(|()| "not absolute")?];
//! #     let repo = RepositoryExport {
//! #         name: "demo", mirrors: &mirrors, mirror_root: &root, targets_keys: keys,
//! #         threshold, next_targets_keys: None, upstream_root: None,
//! #         policy: ClientPolicy::default(),
//! #     };
//! #     std::fs::write(out, render(None, &[repo], out)?)?;
//! #     Ok(())
//! # }
//! ```
//!
//! ## The engine
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
pub mod bundle;
pub mod canonical;
pub mod client;
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
