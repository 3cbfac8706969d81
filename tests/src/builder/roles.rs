//! Keys, thresholds, targets and delegations of a [`RepoBuilder`], edited in the JSON bodies.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::{
    new_signed, target_info, DelegatedPaths, Delegation, HashedBins, RepoBuilder, RoleDoc,
    SuccinctBins, TestKey, ROOT, SNAPSHOT, TARGETS, TIMESTAMP,
};

/// Where the keys and threshold of a role are listed.
enum Slot {
    /// `roles.<role>` of root.
    Root,
    /// `delegations.roles[i]` of the delegator.
    Listed(usize),
    /// `delegations.succinct_roles` of the delegator.
    Succinct,
}

/// Key ids listed for `role` in a root body.
pub(super) fn root_role_keyids(root: &Value, role: &str) -> Vec<String> {
    strings(
        root.get("roles")
            .and_then(|r| r.get(role))
            .and_then(|r| r.get("keyids")),
    )
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The succinct-bin layout a `succinct_roles` object describes, if it is well formed.
fn succinct_layout(succinct: &Value) -> Option<SuccinctBins> {
    let bit_length = succinct.get("bit_length")?.as_u64()?;
    let prefix = succinct.get("name_prefix")?.as_str()?;
    let bit_length = u32::try_from(bit_length)
        .ok()
        .filter(|b| (1..=32).contains(b))?;
    Some(SuccinctBins::new(prefix, bit_length))
}

/// Key ids used anywhere in a root body (`root == true`) or a `delegations` object.
fn referenced_keyids(container: &Value, root: bool) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    if root {
        if let Some(roles) = container.get("roles").and_then(Value::as_object) {
            for role in roles.values() {
                ids.extend(strings(role.get("keyids")));
            }
        }
    } else {
        if let Some(roles) = container.get("roles").and_then(Value::as_array) {
            for role in roles {
                ids.extend(strings(role.get("keyids")));
            }
        }
        ids.extend(strings(
            container
                .get("succinct_roles")
                .and_then(|s| s.get("keyids")),
        ));
    }
    ids
}

impl RepoBuilder {
    /// Targets roles in delegation search order: `targets` first, then by name.
    fn targets_role_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.roles.contains_key(TARGETS) {
            names.push(TARGETS.to_owned());
        }
        names.extend(
            self.roles
                .keys()
                .filter(|n| !matches!(n.as_str(), TARGETS | TIMESTAMP | SNAPSHOT))
                .cloned(),
        );
        names
    }

    fn find_slot(&self, role: &str) -> Option<(String, Slot)> {
        if matches!(role, ROOT | TIMESTAMP | SNAPSHOT | TARGETS) {
            return Some((ROOT.to_owned(), Slot::Root));
        }
        for parent in self.targets_role_names() {
            let Some(delegations) = self.roles[&parent].signed.get("delegations") else {
                continue;
            };
            if let Some(roles) = delegations.get("roles").and_then(Value::as_array) {
                if let Some(i) = roles
                    .iter()
                    .position(|r| r.get("name").and_then(Value::as_str) == Some(role))
                {
                    return Some((parent, Slot::Listed(i)));
                }
            }
            if let Some(layout) = delegations.get("succinct_roles").and_then(succinct_layout) {
                if layout.index_of(role).is_some() {
                    return Some((parent, Slot::Succinct));
                }
            }
        }
        None
    }

    /// The role whose body lists the keys of `role`: `root` for top-level roles, the first
    /// delegating targets role (`targets` first, then by name) for delegated ones.
    pub fn delegator_of(&self, role: &str) -> Option<String> {
        self.find_slot(role).map(|(parent, _)| parent)
    }

    /// The object holding `keyids` and `threshold` of `role`.
    fn slot_entry(&self, role: &str) -> Option<&Value> {
        let (parent, slot) = self.find_slot(role)?;
        let signed = &self.doc(&parent).signed;
        match slot {
            Slot::Root => signed.get("roles")?.get(role),
            Slot::Listed(i) => signed.get("delegations")?.get("roles")?.get(i),
            Slot::Succinct => signed.get("delegations")?.get("succinct_roles"),
        }
    }

    /// Key ids listed for `role` by its delegator.
    pub fn listed_keyids(&self, role: &str) -> Vec<String> {
        strings(self.slot_entry(role).and_then(|e| e.get("keyids")))
    }

    /// Threshold listed for `role` by its delegator.
    pub fn threshold(&self, role: &str) -> Option<u64> {
        self.slot_entry(role)?.get("threshold")?.as_u64()
    }

    /// Private keys of the key ids listed for `role` (those the builder knows), which sign it
    /// by default.
    pub fn role_keys(&self, role: &str) -> Vec<TestKey> {
        self.keys_for(&self.listed_keyids(role))
    }

    /// The private key with `key_id`, if the builder knows it.
    pub fn key(&self, key_id: &str) -> Option<&TestKey> {
        self.keyring.get(key_id)
    }

    /// Makes the private key known, so that [`super::Sig::RoleKeys`] signs with it wherever its
    /// key id is listed (keys passed to other methods are added automatically).
    pub fn add_private_key(&mut self, key: &TestKey) {
        self.keyring.insert(key.key_id().to_owned(), key.clone());
    }

    /// Edits the entry listing `role` and the `keys` map next to it, then drops keys that no
    /// role of that body uses any more.
    fn edit_slot(&mut self, role: &str, edit: impl FnOnce(&mut Value, &mut Map<String, Value>)) {
        let (parent, slot) = self
            .find_slot(role)
            .unwrap_or_else(|| panic!("no role delegates to {role:?}"));
        let signed = &mut self.doc_mut(&parent).signed;
        let is_root = matches!(slot, Slot::Root);
        let container = if is_root {
            signed
        } else {
            &mut signed["delegations"]
        };
        let mut keys = match container.get_mut("keys").map(Value::take) {
            Some(Value::Object(keys)) => keys,
            _ => Map::new(),
        };
        let entry = match slot {
            Slot::Root => &mut container["roles"][role],
            Slot::Listed(i) => &mut container["roles"][i],
            Slot::Succinct => &mut container["succinct_roles"],
        };
        edit(entry, &mut keys);
        let used = referenced_keyids(container, is_root);
        keys.retain(|id, _| used.contains(id));
        container["keys"] = Value::Object(keys);
    }

    /// Lists exactly `keys` with `threshold` for `role` (in root for top-level roles, in the
    /// delegator for delegated ones; for a succinct bin, for all bins). Keys no longer used are
    /// removed from that body's `keys`.
    pub fn set_role_keys(
        &mut self,
        role: &str,
        keys: impl IntoIterator<Item = TestKey>,
        threshold: u64,
    ) {
        let keys: Vec<TestKey> = keys.into_iter().collect();
        for key in &keys {
            self.add_private_key(key);
        }
        self.edit_slot(role, |entry, map| {
            entry["keyids"] = json!(keys.iter().map(TestKey::key_id).collect::<Vec<_>>());
            entry["threshold"] = json!(threshold);
            for key in &keys {
                map.insert(key.key_id().to_owned(), key.public_json().clone());
            }
        });
    }

    /// Adds `key` to the keys listed for `role`, threshold unchanged.
    pub fn add_role_key(&mut self, role: &str, key: &TestKey) {
        self.add_private_key(key);
        self.edit_slot(role, |entry, map| {
            let id = json!(key.key_id());
            match entry.get_mut("keyids").and_then(Value::as_array_mut) {
                Some(ids) if ids.contains(&id) => {}
                Some(ids) => ids.push(id),
                None => entry["keyids"] = json!([id]),
            }
            map.insert(key.key_id().to_owned(), key.public_json().clone());
        });
    }

    /// Removes `key_id` from the keys listed for `role`, threshold unchanged.
    pub fn remove_role_key(&mut self, role: &str, key_id: &str) {
        self.edit_slot(role, |entry, _| {
            if let Some(ids) = entry.get_mut("keyids").and_then(Value::as_array_mut) {
                ids.retain(|id| id.as_str() != Some(key_id));
            }
        });
    }

    /// Sets the threshold listed for `role`.
    pub fn set_threshold(&mut self, role: &str, threshold: u64) {
        self.edit_slot(role, |entry, _| entry["threshold"] = json!(threshold));
    }

    /// `role` itself, or every existing bin when `role` is a succinct bin.
    pub(super) fn roles_sharing_keys_with(&self, role: &str) -> Vec<String> {
        match self.find_slot(role) {
            Some((parent, Slot::Succinct)) => {
                let layout = self.roles[&parent].signed["delegations"]
                    .get("succinct_roles")
                    .and_then(succinct_layout);
                self.roles
                    .keys()
                    .filter(|n| layout.as_ref().is_some_and(|l| l.index_of(n).is_some()))
                    .cloned()
                    .collect()
            }
            _ => vec![role.to_owned()],
        }
    }

    // ----- targets ------------------------------------------------------------------------

    /// Lists `path` in `role` with the length and hashes of `bytes`, and serves `bytes`.
    /// Returns the target entry.
    pub fn add_target(&mut self, role: &str, path: &str, bytes: impl Into<Vec<u8>>) -> Value {
        self.add_target_entry(role, path, bytes.into(), None)
    }

    /// [`RepoBuilder::add_target`] with a `custom` object.
    pub fn add_target_with_custom(
        &mut self,
        role: &str,
        path: &str,
        bytes: impl Into<Vec<u8>>,
        custom: Value,
    ) -> Value {
        self.add_target_entry(role, path, bytes.into(), Some(custom))
    }

    fn add_target_entry(
        &mut self,
        role: &str,
        path: &str,
        bytes: Vec<u8>,
        custom: Option<Value>,
    ) -> Value {
        let mut info = target_info(&bytes, self.target_sha512);
        if let Some(custom) = custom {
            info["custom"] = custom;
        }
        self.signed_mut(role)["targets"][path] = info.clone();
        self.target_files
            .insert((role.to_owned(), path.to_owned()), bytes);
        info
    }

    /// Removes `path` from `role` and stops serving it.
    pub fn remove_target(&mut self, role: &str, path: &str) {
        if let Some(targets) = self
            .signed_mut(role)
            .get_mut("targets")
            .and_then(Value::as_object_mut)
        {
            targets.remove(path);
        }
        self.target_files
            .remove(&(role.to_owned(), path.to_owned()));
    }

    /// Serves `bytes` for `path` of `role` without changing its entry (a tampered file).
    pub fn set_target_bytes(&mut self, role: &str, path: &str, bytes: impl Into<Vec<u8>>) {
        self.target_files
            .insert((role.to_owned(), path.to_owned()), bytes.into());
    }

    // ----- delegations --------------------------------------------------------------------

    /// Adds an empty targets role `name` (version 1, [`super::DEFAULT_EXPIRES`]) that no role
    /// delegates to yet; does nothing if it exists.
    pub fn add_targets_role(&mut self, name: &str) {
        assert!(name != ROOT, "a targets role cannot be called root");
        self.roles
            .entry(name.to_owned())
            .or_insert_with(|| RoleDoc::new(new_signed(TARGETS)));
    }

    /// Removes role `name` (its metadata and target files) without touching any delegation
    /// to it.
    pub fn remove_role(&mut self, name: &str) {
        self.roles.remove(name);
        self.target_files.retain(|(role, _), _| role != name);
    }

    /// Appends `delegation` to `delegations.roles` of `parent` (creating `delegations` if
    /// needed), lists its keys there, and creates the delegated role if it does not exist.
    ///
    /// Role names are not checked. A delegated role named like a top-level role (`targets`,
    /// `snapshot`) shares that role's document here; to serve such a collision, edit the
    /// [`PublishedRepo`](super::PublishedRepo) instead.
    pub fn add_delegation(&mut self, parent: &str, delegation: Delegation) {
        for key in &delegation.keys {
            self.add_private_key(key);
        }
        let signed = self.signed_mut(parent);
        let delegations = &mut signed["delegations"];
        if !delegations.is_object() {
            *delegations = json!({"keys": {}, "roles": []});
        }
        for key in &delegation.keys {
            delegations["keys"][key.key_id()] = key.public_json().clone();
        }
        match delegations.get_mut("roles").and_then(Value::as_array_mut) {
            Some(roles) => roles.push(delegation.role_json()),
            None => delegations["roles"] = json!([delegation.role_json()]),
        }
        self.add_targets_role(&delegation.name);
    }

    /// Removes every delegation to `name` from `parent`, the keys only it used, and the role
    /// itself unless another role still delegates to it.
    pub fn remove_delegation(&mut self, parent: &str, name: &str) {
        let signed = self.signed_mut(parent);
        let Some(delegations) = signed.get_mut("delegations") else {
            return;
        };
        if let Some(roles) = delegations.get_mut("roles").and_then(Value::as_array_mut) {
            roles.retain(|r| r.get("name").and_then(Value::as_str) != Some(name));
        }
        let used = referenced_keyids(delegations, false);
        if let Some(keys) = delegations.get_mut("keys").and_then(Value::as_object_mut) {
            keys.retain(|id, _| used.contains(id));
        }
        if self.delegator_of(name).is_none() {
            self.remove_role(name);
        }
    }

    /// Delegates from `parent` to `bins` classic hashed bins (`path_hash_prefixes`), all with
    /// the same keys and threshold; see [`HashedBins`] for names and ranges.
    pub fn add_hashed_bins(
        &mut self,
        parent: &str,
        name_prefix: &str,
        bins: u64,
        keys: impl IntoIterator<Item = TestKey>,
        threshold: u64,
    ) -> HashedBins {
        let keys: Vec<TestKey> = keys.into_iter().collect();
        let layout = HashedBins::new(name_prefix, bins);
        for i in 0..bins {
            let delegation = Delegation {
                name: layout.bin_name(i),
                keys: keys.clone(),
                threshold,
                terminating: false,
                paths: DelegatedPaths::HashPrefixes(layout.prefixes(i)),
            };
            self.add_delegation(parent, delegation);
        }
        layout
    }

    /// Delegates from `parent` to `2^bit_length` TAP 15 succinct bins (`succinct_roles`),
    /// replacing any `succinct_roles` there, and creates every bin role.
    pub fn add_succinct_bins(
        &mut self,
        parent: &str,
        name_prefix: &str,
        bit_length: u32,
        keys: impl IntoIterator<Item = TestKey>,
        threshold: u64,
    ) -> SuccinctBins {
        let keys: Vec<TestKey> = keys.into_iter().collect();
        let layout = SuccinctBins::new(name_prefix, bit_length);
        for key in &keys {
            self.add_private_key(key);
        }
        let signed = self.signed_mut(parent);
        let delegations = &mut signed["delegations"];
        if !delegations.is_object() {
            *delegations = json!({"keys": {}});
        }
        for key in &keys {
            delegations["keys"][key.key_id()] = key.public_json().clone();
        }
        delegations["succinct_roles"] = layout.succinct_roles_json(&keys, threshold);
        for name in layout.names() {
            self.add_targets_role(&name);
        }
        layout
    }
}
