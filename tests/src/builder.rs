//! [`RepoBuilder`]: an in-memory TUF 1.0 repository for tests.
//!
//! Every role's `signed` body is a [`serde_json::Value`], so a test can put any field anywhere
//! ([`RepoBuilder::signed_mut`]) and change what is signed ([`RepoBuilder::patch_signed`]), how
//! it is signed ([`RepoBuilder::set_signers`]) and what is served after signing
//! ([`RepoBuilder::patch_envelope`], [`RepoBuilder::set_raw_bytes`]). Helpers keep the common
//! shapes right: keys and thresholds, root rotation, targets, delegations, hashed bins.
//!
//! Signing is independent of the engine under test: canonical JSON from `olpc-cjson`,
//! signatures from aws-lc-rs. Nothing is signed until [`RepoBuilder::publish`], which renders
//! every role, computes snapshot and timestamp `meta` over the exact bytes served, and returns
//! the files by URL path. Root versions before the current one are signed when
//! [`RepoBuilder::rotate_root`] freezes them.
//!
//! ```
//! use tuf_mirror_tests::builder::{RepoBuilder, Sig, TestKey, TARGETS};
//!
//! let mut repo = RepoBuilder::new();
//! repo.add_target(TARGETS, "hello.txt", b"hello".to_vec());
//! let v1 = repo.publish();
//! assert!(v1.get("metadata/1.targets.json").is_some());
//!
//! // Root v2 replaces the root key and is signed by the old key only.
//! let old = repo.role_keys("root");
//! repo.rotate_root();
//! repo.set_role_keys("root", [TestKey::ed25519_from_label("root-2")], 1);
//! repo.set_signers("root", old.into_iter().map(Sig::Key).collect());
//! assert!(repo.publish().get("metadata/2.root.json").is_some());
//! ```

mod delegation;
mod json;
mod keys;
mod publish;
mod roles;
mod sign;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{digest, SHA256, SHA512};
use serde_json::{json, Map, Value};

pub use delegation::{path_hash_hex, DelegatedPaths, Delegation, HashedBins, SuccinctBins};
pub use json::{canonical, pretty, OutputFormat};
pub use keys::{key_id_of, KeyKind, TestKey};
pub use publish::{encode_role_name, PublishedRepo};
pub use sign::Sig;

/// Name of the root role.
pub const ROOT: &str = "root";
/// Name of the timestamp role.
pub const TIMESTAMP: &str = "timestamp";
/// Name of the snapshot role.
pub const SNAPSHOT: &str = "snapshot";
/// Name of the top-level targets role.
pub const TARGETS: &str = "targets";
/// `expires` of every new role: far in the future, and fixed so output is byte-stable.
pub const DEFAULT_EXPIRES: &str = "2099-01-01T00:00:00Z";
/// An `expires` in the past, for expiry tests.
pub const EXPIRED: &str = "2000-01-01T00:00:00Z";
/// `spec_version` of every new role.
pub const SPEC_VERSION: &str = "1.0.31";

/// What a snapshot or timestamp `meta` entry holds besides `version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaOptions {
    /// Include `length` of the served file.
    pub length: bool,
    /// Include `hashes: {sha256}` of the served file.
    pub hashes: bool,
}

impl Default for MetaOptions {
    /// Both `length` and `hashes`.
    fn default() -> Self {
        MetaOptions {
            length: true,
            hashes: true,
        }
    }
}

type Patch = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// One role version that is not yet signed: body, signing plan, patches.
#[derive(Clone)]
struct RoleDoc {
    signed: Value,
    signers: Vec<Sig>,
    before_signing: Vec<Patch>,
    after_signing: Vec<Patch>,
    raw_bytes: Option<Vec<u8>>,
}

impl RoleDoc {
    fn new(signed: Value) -> RoleDoc {
        RoleDoc {
            signed,
            signers: vec![Sig::RoleKeys],
            before_signing: Vec::new(),
            after_signing: Vec::new(),
            raw_bytes: None,
        }
    }

    /// The version the builder publishes this role under (file name, snapshot meta), whatever
    /// patches do to the version inside.
    fn version(&self) -> u64 {
        self.signed
            .get("version")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// A root version signed by [`RepoBuilder::rotate_root`].
#[derive(Clone, Debug)]
struct FrozenRoot {
    version: u64,
    /// The body as signed (after patches), to find the keys that sign the next version.
    signed: Value,
    envelope: Value,
    raw_bytes: Option<Vec<u8>>,
}

/// A rendered role: signed body (after patches), envelope as served, bytes as served.
struct Rendered {
    signed: Value,
    envelope: Value,
    bytes: Vec<u8>,
}

/// An in-memory TUF repository (see the [module documentation](self)).
#[derive(Clone)]
pub struct RepoBuilder {
    root: RoleDoc,
    root_history: Vec<FrozenRoot>,
    /// timestamp, snapshot, targets and delegated targets roles.
    roles: BTreeMap<String, RoleDoc>,
    /// Private keys by key id.
    keyring: BTreeMap<String, TestKey>,
    /// Served bytes of target files by (role, target path).
    target_files: BTreeMap<(String, String), Vec<u8>>,
    format: OutputFormat,
    serve_root_json: bool,
    snapshot_meta: MetaOptions,
    timestamp_meta: MetaOptions,
    target_sha512: bool,
}

impl fmt::Debug for RepoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoBuilder")
            .field("root_versions", &(self.root_history.len() + 1))
            .field("roles", &self.roles.keys().collect::<Vec<_>>())
            .field("keys", &self.keyring.len())
            .finish_non_exhaustive()
    }
}

impl Default for RepoBuilder {
    fn default() -> Self {
        RepoBuilder::new()
    }
}

/// The target entry `{length, hashes: {sha256[, sha512]}}` for `bytes`.
pub fn target_info(bytes: &[u8], sha512: bool) -> Value {
    let mut hashes = Map::new();
    hashes.insert("sha256".into(), json!(hex::encode(digest(&SHA256, bytes))));
    if sha512 {
        hashes.insert("sha512".into(), json!(hex::encode(digest(&SHA512, bytes))));
    }
    json!({"length": bytes.len(), "hashes": hashes})
}

fn new_signed(role_type: &str) -> Value {
    let mut signed = json!({
        "_type": role_type,
        "spec_version": SPEC_VERSION,
        "version": 1,
        "expires": DEFAULT_EXPIRES,
    });
    match role_type {
        "root" => {
            signed["consistent_snapshot"] = json!(true);
            signed["keys"] = json!({});
            signed["roles"] = json!({});
        }
        "targets" => signed["targets"] = json!({}),
        _ => signed["meta"] = json!({}),
    }
    signed
}

impl RepoBuilder {
    /// A repository with consistent snapshots, every role at version 1 expiring
    /// [`DEFAULT_EXPIRES`], one ed25519 key per top-level role (labels `root`, `timestamp`,
    /// `snapshot`, `targets`; see [`TestKey::ed25519_from_label`]), threshold 1, no targets.
    pub fn new() -> RepoBuilder {
        let mut repo = RepoBuilder {
            root: RoleDoc::new(new_signed(ROOT)),
            root_history: Vec::new(),
            roles: BTreeMap::new(),
            keyring: BTreeMap::new(),
            target_files: BTreeMap::new(),
            format: OutputFormat::Pretty,
            serve_root_json: false,
            snapshot_meta: MetaOptions::default(),
            timestamp_meta: MetaOptions::default(),
            target_sha512: false,
        };
        for role in [ROOT, TIMESTAMP, SNAPSHOT, TARGETS] {
            repo.set_role_keys(role, [TestKey::ed25519_from_label(role)], 1);
        }
        for role in [TIMESTAMP, SNAPSHOT, TARGETS] {
            repo.roles
                .insert(role.to_owned(), RoleDoc::new(new_signed(role)));
        }
        repo
    }

    fn doc(&self, role: &str) -> &RoleDoc {
        if role == ROOT {
            return &self.root;
        }
        self.roles
            .get(role)
            .unwrap_or_else(|| panic!("the repository has no role {role:?}"))
    }

    fn doc_mut(&mut self, role: &str) -> &mut RoleDoc {
        if role == ROOT {
            return &mut self.root;
        }
        self.roles
            .get_mut(role)
            .unwrap_or_else(|| panic!("the repository has no role {role:?}"))
    }

    // ----- bodies, versions, expiry -------------------------------------------------------

    /// The `signed` body of `role` (for root: the current, not yet frozen version).
    ///
    /// # Panics
    /// If there is no such role (true of every accessor taking a role name).
    pub fn signed(&self, role: &str) -> &Value {
        &self.doc(role).signed
    }

    /// The `signed` body of `role`, to change anything in it.
    pub fn signed_mut(&mut self, role: &str) -> &mut Value {
        &mut self.doc_mut(role).signed
    }

    /// Names of all roles except root, sorted.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// Whether the repository has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        role == ROOT || self.roles.contains_key(role)
    }

    /// The version of `role` (0 if the field is not a number).
    pub fn version(&self, role: &str) -> u64 {
        self.doc(role).version()
    }

    /// Sets `version` of `role`.
    pub fn set_version(&mut self, role: &str, version: u64) {
        self.signed_mut(role)["version"] = json!(version);
    }

    /// Increments `version` of `role`, returning the new version.
    pub fn bump_version(&mut self, role: &str) -> u64 {
        let version = self.version(role) + 1;
        self.set_version(role, version);
        version
    }

    /// Sets `expires` of `role` (any string, e.g. [`EXPIRED`]).
    pub fn set_expires(&mut self, role: &str, expires: &str) {
        self.signed_mut(role)["expires"] = json!(expires);
    }

    /// Sets `consistent_snapshot` in the current root. The newest root decides file names.
    pub fn set_consistent_snapshot(&mut self, consistent: bool) {
        self.root.signed["consistent_snapshot"] = json!(consistent);
    }

    /// `consistent_snapshot` of the current root (false unless it is `true`).
    pub fn consistent_snapshot(&self) -> bool {
        self.root.signed.get("consistent_snapshot") == Some(&Value::Bool(true))
    }

    // ----- output options -----------------------------------------------------------------

    /// Serialization of published metadata ([`OutputFormat::Pretty`] by default).
    pub fn set_format(&mut self, format: OutputFormat) {
        self.format = format;
    }

    /// Also publish the newest root as `metadata/root.json` (off by default: TUF clients
    /// fetch only versioned roots).
    pub fn set_serve_root_json(&mut self, serve: bool) {
        self.serve_root_json = serve;
    }

    /// What snapshot `meta` entries hold (length and hashes by default).
    pub fn set_snapshot_meta(&mut self, options: MetaOptions) {
        self.snapshot_meta = options;
    }

    /// What the timestamp `meta` entry holds (length and hashes by default).
    pub fn set_timestamp_meta(&mut self, options: MetaOptions) {
        self.timestamp_meta = options;
    }

    /// Whether targets added from now on also list a `sha512` hash (off by default).
    pub fn set_target_sha512(&mut self, sha512: bool) {
        self.target_sha512 = sha512;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
