//! Signing: signing plans, rendering a role into the bytes served, and root versions.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{
    canonical, roles, FrozenRoot, Rendered, RepoBuilder, RoleDoc, TestKey, ROOT, SNAPSHOT, TARGETS,
    TIMESTAMP,
};

/// One entry of a signing plan (see [`RepoBuilder::set_signers`]).
#[derive(Clone, Debug)]
pub enum Sig {
    /// A valid signature by each key the role's delegator lists whose private key the builder
    /// knows (for root: those of the current and of the previous root version).
    RoleKeys,
    /// A valid signature by this key, listed or not.
    Key(TestKey),
    /// This key's signature with one bit flipped.
    Corrupt(TestKey),
    /// A valid signature by this key, under another key id.
    AsKeyId(TestKey, String),
    /// This JSON as the signature object, as is.
    Raw(Value),
}

fn signature_json(key_id: &str, sig: &[u8]) -> Value {
    json!({"keyid": key_id, "sig": hex::encode(sig)})
}

impl RepoBuilder {
    /// Replaces the signing plan of `role` (default `[Sig::RoleKeys]`). Any subset of keys,
    /// duplicates, keys the role does not list, corrupt or raw signatures; an empty plan
    /// publishes no signature.
    pub fn set_signers(&mut self, role: &str, plan: Vec<Sig>) {
        self.doc_mut(role).signers = plan;
    }

    /// Appends one entry to the signing plan of `role`.
    pub fn add_signature(&mut self, role: &str, sig: Sig) {
        self.doc_mut(role).signers.push(sig);
    }

    /// Restores the default signing plan `[Sig::RoleKeys]` of `role`.
    pub fn reset_signers(&mut self, role: &str) {
        self.doc_mut(role).signers = vec![Sig::RoleKeys];
    }

    /// Changes the `signed` body of `role` at publish time, after snapshot/timestamp `meta`
    /// is filled in and before signing (so signatures cover the change).
    pub fn patch_signed(&mut self, role: &str, patch: impl Fn(&mut Value) + Send + Sync + 'static) {
        self.doc_mut(role).before_signing.push(Arc::new(patch));
    }

    /// Changes the whole document `{"signatures": [...], "signed": {...}}` of `role` after
    /// signing (so signatures do not cover the change).
    pub fn patch_envelope(
        &mut self,
        role: &str,
        patch: impl Fn(&mut Value) + Send + Sync + 'static,
    ) {
        self.doc_mut(role).after_signing.push(Arc::new(patch));
    }

    /// Serves `signed` as the body of `role`, with the signatures made over the real body.
    pub fn replace_signed_after_signing(&mut self, role: &str, signed: Value) {
        self.patch_envelope(role, move |envelope| envelope["signed"] = signed.clone());
    }

    /// Serves exactly `bytes` for `role` (snapshot and timestamp `meta` are computed over
    /// them); `None` goes back to rendering.
    pub fn set_raw_bytes(&mut self, role: &str, bytes: Option<Vec<u8>>) {
        self.doc_mut(role).raw_bytes = bytes;
    }

    /// Drops all patches and raw bytes of `role` and restores its default signing plan.
    pub fn clear_tampering(&mut self, role: &str) {
        let doc = self.doc_mut(role);
        doc.before_signing.clear();
        doc.after_signing.clear();
        doc.raw_bytes = None;
        doc.signers = vec![Sig::RoleKeys];
    }

    fn signatures(&self, doc: &RoleDoc, message: &[u8], defaults: &[TestKey]) -> Vec<Value> {
        let mut sigs = Vec::new();
        for entry in &doc.signers {
            match entry {
                Sig::RoleKeys => {
                    for key in defaults {
                        sigs.push(signature_json(key.key_id(), &key.sign(message)));
                    }
                }
                Sig::Key(key) => sigs.push(signature_json(key.key_id(), &key.sign(message))),
                Sig::Corrupt(key) => {
                    let mut sig = key.sign(message);
                    if let Some(first) = sig.first_mut() {
                        *first ^= 1;
                    }
                    sigs.push(signature_json(key.key_id(), &sig));
                }
                Sig::AsKeyId(key, key_id) => {
                    sigs.push(signature_json(key_id, &key.sign(message)));
                }
                Sig::Raw(value) => sigs.push(value.clone()),
            }
        }
        sigs
    }

    /// Signs and serializes `doc` as `role`, with `meta` filled in first if given.
    pub(super) fn render(&self, role: &str, doc: &RoleDoc, meta: Option<Value>) -> Rendered {
        let mut signed = doc.signed.clone();
        if let (Some(meta), Some(object)) = (meta, signed.as_object_mut()) {
            object.insert("meta".into(), meta);
        }
        for patch in &doc.before_signing {
            patch(&mut signed);
        }
        let defaults = if role == ROOT {
            self.default_root_signers(&signed)
        } else {
            self.role_keys(role)
        };
        let signatures = self.signatures(doc, &canonical(&signed), &defaults);
        let mut envelope = json!({"signatures": signatures, "signed": signed});
        for patch in &doc.after_signing {
            patch(&mut envelope);
        }
        let bytes = match &doc.raw_bytes {
            Some(bytes) => bytes.clone(),
            None => self.format.encode(&envelope),
        };
        Rendered {
            signed,
            envelope,
            bytes,
        }
    }

    // ----- root versions ------------------------------------------------------------------

    /// Signs the current root version as it stands (plan, patches, raw bytes) and starts the
    /// next one: same body with `version + 1`, default signing plan (which signs with the keys
    /// of both versions). Returns the new version.
    pub fn rotate_root(&mut self) -> u64 {
        let rendered = self.render(ROOT, &self.root, None);
        self.root_history.push(FrozenRoot {
            version: self.root.version(),
            signed: rendered.signed,
            envelope: rendered.envelope,
            raw_bytes: self.root.raw_bytes.clone(),
        });
        let next = RoleDoc::new(self.root.signed.clone());
        self.root = next;
        self.bump_version(ROOT)
    }

    /// Number of root versions so far (frozen ones plus the current one).
    pub fn root_versions(&self) -> usize {
        self.root_history.len() + 1
    }

    /// Replaces the keys of `role` with a threshold, in the way a repository rotates them:
    /// for a top-level role, in a new root version (root itself included) and, except for
    /// root, with the role's version bumped since it is re-signed; for a delegated role, in its
    /// delegator, whose version is bumped, and with the role's version (all bins' for succinct
    /// bins) bumped.
    pub fn rotate_role_keys(
        &mut self,
        role: &str,
        keys: impl IntoIterator<Item = TestKey>,
        threshold: u64,
    ) {
        match role {
            ROOT => {
                self.rotate_root();
                self.set_role_keys(ROOT, keys, threshold);
            }
            TIMESTAMP | SNAPSHOT | TARGETS => {
                self.rotate_root();
                self.set_role_keys(role, keys, threshold);
                self.bump_version(role);
            }
            _ => {
                let delegator = self.delegator_of(role);
                let affected = self.roles_sharing_keys_with(role);
                self.set_role_keys(role, keys, threshold);
                if let Some(delegator) = delegator {
                    self.bump_version(&delegator);
                }
                for name in affected {
                    self.bump_version(&name);
                }
            }
        }
    }

    fn default_root_signers(&self, signed: &Value) -> Vec<TestKey> {
        let mut ids = roles::root_role_keyids(signed, ROOT);
        if let Some(previous) = self.root_history.last() {
            ids.extend(roles::root_role_keyids(&previous.signed, ROOT));
        }
        self.keys_for(&ids)
    }

    pub(super) fn keys_for(&self, ids: &[String]) -> Vec<TestKey> {
        let mut seen = Vec::new();
        let mut keys = Vec::new();
        for id in ids {
            if seen.contains(id) {
                continue;
            }
            seen.push(id.clone());
            if let Some(key) = self.keyring.get(id) {
                keys.push(key.clone());
            }
        }
        keys
    }
}
