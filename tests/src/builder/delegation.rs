//! Delegations: what a delegating targets role lists, and the two kinds of hashed bins.
//!
//! Classic hashed bins delegate with `path_hash_prefixes` (python-tuf's example layout: the
//! prefix length is the number of hex digits of `bins - 1`, each bin gets an equal range of
//! prefixes). Succinct hashed bins follow TAP 15: `succinct_roles` with `bit_length` and
//! `name_prefix`, bin `i` named `<prefix>-<i as hex, zero padded to ceil(bit_length / 4)>`, and a
//! path belongs to the bin given by the first `bit_length` bits of SHA-256 of the path.

use aws_lc_rs::digest::{digest, SHA256};
use serde_json::{json, Value};

use super::keys::TestKey;

/// Which paths a delegated role is trusted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DelegatedPaths {
    /// `paths`: shell-style patterns (`releases/*`).
    Paths(Vec<String>),
    /// `path_hash_prefixes`: hex prefixes of SHA-256 of the target path.
    HashPrefixes(Vec<String>),
    /// Neither field (invalid per the spec; for tests of that).
    Omitted,
}

impl DelegatedPaths {
    /// `paths` from string slices.
    pub fn paths(patterns: &[&str]) -> DelegatedPaths {
        DelegatedPaths::Paths(patterns.iter().map(|p| (*p).to_owned()).collect())
    }
}

/// A delegation to add to a targets role (see `RepoBuilder::add_delegation`).
#[derive(Clone, Debug)]
pub struct Delegation {
    /// Role name (any string: hostile names welcome).
    pub name: String,
    /// Keys listed for the role; their private halves sign it by default.
    pub keys: Vec<TestKey>,
    /// Signature threshold.
    pub threshold: u64,
    /// Whether the delegation is terminating.
    pub terminating: bool,
    /// Paths the role is trusted for.
    pub paths: DelegatedPaths,
}

impl Delegation {
    /// A non-terminating delegation with threshold 1.
    pub fn new(
        name: &str,
        keys: impl IntoIterator<Item = TestKey>,
        paths: DelegatedPaths,
    ) -> Delegation {
        Delegation {
            name: name.to_owned(),
            keys: keys.into_iter().collect(),
            threshold: 1,
            terminating: false,
            paths,
        }
    }

    /// Sets the threshold.
    pub fn threshold(mut self, threshold: u64) -> Delegation {
        self.threshold = threshold;
        self
    }

    /// Sets `terminating`.
    pub fn terminating(mut self, terminating: bool) -> Delegation {
        self.terminating = terminating;
        self
    }

    /// The entry in `delegations.roles`.
    pub fn role_json(&self) -> Value {
        let mut role = json!({
            "name": self.name,
            "keyids": self.keys.iter().map(|k| k.key_id()).collect::<Vec<_>>(),
            "threshold": self.threshold,
            "terminating": self.terminating,
        });
        match &self.paths {
            DelegatedPaths::Paths(p) => role["paths"] = json!(p),
            DelegatedPaths::HashPrefixes(p) => role["path_hash_prefixes"] = json!(p),
            DelegatedPaths::Omitted => {}
        }
        role
    }
}

/// Hex SHA-256 of a target path (what `path_hash_prefixes` match against).
pub fn path_hash_hex(path: &str) -> String {
    hex::encode(digest(&SHA256, path.as_bytes()))
}

/// The classic hashed-bin layout of `bins` bins (a power of two).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashedBins {
    name_prefix: String,
    prefix_len: usize,
    bin_size: u64,
    bins: u64,
}

impl HashedBins {
    /// The layout of `bins` bins whose role names start with `name_prefix`.
    ///
    /// # Panics
    /// If `bins` is not a power of two.
    pub fn new(name_prefix: &str, bins: u64) -> HashedBins {
        assert!(
            bins.is_power_of_two(),
            "hashed bins: {bins} is not a power of two"
        );
        let prefix_len = format!("{:x}", bins - 1).len();
        let prefixes = 16u64.pow(u32::try_from(prefix_len).unwrap_or(u32::MAX));
        HashedBins {
            name_prefix: name_prefix.to_owned(),
            prefix_len,
            bin_size: prefixes / bins,
            bins,
        }
    }

    /// Number of bins.
    pub fn len(&self) -> u64 {
        self.bins
    }

    /// Always false (there is at least one bin).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn hex(&self, n: u64) -> String {
        format!("{n:0width$x}", width = self.prefix_len)
    }

    /// Role name of bin `index`: `<name_prefix><low>` when the bin holds one prefix, else
    /// `<name_prefix><low>-<high>`.
    pub fn bin_name(&self, index: u64) -> String {
        let low = index * self.bin_size;
        let high = low + self.bin_size - 1;
        if low == high {
            format!("{}{}", self.name_prefix, self.hex(low))
        } else {
            format!("{}{}-{}", self.name_prefix, self.hex(low), self.hex(high))
        }
    }

    /// The `path_hash_prefixes` of bin `index`.
    pub fn prefixes(&self, index: u64) -> Vec<String> {
        let low = index * self.bin_size;
        (low..low + self.bin_size).map(|p| self.hex(p)).collect()
    }

    /// Names of all bins, in order.
    pub fn names(&self) -> Vec<String> {
        (0..self.bins).map(|i| self.bin_name(i)).collect()
    }

    /// Index of the bin `path` belongs to.
    pub fn bin_index_for(&self, path: &str) -> u64 {
        let hash = path_hash_hex(path);
        let prefix =
            u64::from_str_radix(&hash[..self.prefix_len], 16).expect("a SHA-256 hex digest is hex");
        prefix / self.bin_size
    }

    /// Role name of the bin `path` belongs to.
    pub fn role_for(&self, path: &str) -> String {
        self.bin_name(self.bin_index_for(path))
    }
}

/// The TAP 15 succinct hashed-bin layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuccinctBins {
    name_prefix: String,
    bit_length: u32,
}

impl SuccinctBins {
    /// The layout with `2^bit_length` bins named `<name_prefix>-<hex>`.
    ///
    /// # Panics
    /// If `bit_length` is not in 1..=32 (TAP 15's range).
    pub fn new(name_prefix: &str, bit_length: u32) -> SuccinctBins {
        assert!(
            (1..=32).contains(&bit_length),
            "succinct bins: bit_length {bit_length} is not in 1..=32"
        );
        SuccinctBins {
            name_prefix: name_prefix.to_owned(),
            bit_length,
        }
    }

    /// `name_prefix`.
    pub fn name_prefix(&self) -> &str {
        &self.name_prefix
    }

    /// `bit_length`.
    pub fn bit_length(&self) -> u32 {
        self.bit_length
    }

    /// Number of bins, `2^bit_length`.
    pub fn len(&self) -> u64 {
        1u64 << self.bit_length
    }

    /// Always false (there is at least one bin).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Role name of bin `index`.
    pub fn bin_name(&self, index: u64) -> String {
        let width = self.bit_length.div_ceil(4) as usize;
        format!("{}-{index:0width$x}", self.name_prefix)
    }

    /// Names of all bins, in order.
    pub fn names(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.bin_name(i)).collect()
    }

    /// Index of the bin `path` belongs to: the first `bit_length` bits of SHA-256(path).
    pub fn bin_index_for(&self, path: &str) -> u64 {
        let hash = digest(&SHA256, path.as_bytes());
        let mut first = [0u8; 4];
        first.copy_from_slice(&hash.as_ref()[..4]);
        u64::from(u32::from_be_bytes(first) >> (32 - self.bit_length))
    }

    /// Role name of the bin `path` belongs to.
    pub fn role_for(&self, path: &str) -> String {
        self.bin_name(self.bin_index_for(path))
    }

    /// The bin index named by `role`, if `role` is one of these bins.
    pub fn index_of(&self, role: &str) -> Option<u64> {
        let suffix = role.strip_prefix(&self.name_prefix)?.strip_prefix('-')?;
        let width = self.bit_length.div_ceil(4) as usize;
        if suffix.len() != width || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let index = u64::from_str_radix(suffix, 16).ok()?;
        (index < self.len() && self.bin_name(index) == role).then_some(index)
    }

    /// The `succinct_roles` object listing `keys` with `threshold`.
    pub fn succinct_roles_json(&self, keys: &[TestKey], threshold: u64) -> Value {
        json!({
            "keyids": keys.iter().map(|k| k.key_id()).collect::<Vec<_>>(),
            "threshold": threshold,
            "bit_length": self.bit_length,
            "name_prefix": self.name_prefix,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classic_bins_follow_the_hash_prefix() {
        let bins = HashedBins::new("bin-", 16);
        assert_eq!(bins.names().len(), 16);
        assert_eq!(bins.bin_name(0), "bin-0");
        assert_eq!(bins.bin_name(15), "bin-f");
        for path in ["a.txt", "dir/b.bin", "..", "ünïcode"] {
            let first = &path_hash_hex(path)[..1];
            assert_eq!(bins.role_for(path), format!("bin-{first}"));
            assert_eq!(
                bins.prefixes(bins.bin_index_for(path)),
                vec![first.to_owned()]
            );
        }
        let wide = HashedBins::new("", 32);
        assert_eq!(wide.bin_name(0), "00-07");
        assert_eq!(wide.bin_name(31), "f8-ff");
        assert_eq!(wide.prefixes(1).len(), 8);
        let hash = path_hash_hex("x");
        let prefix = u64::from_str_radix(&hash[..2], 16).unwrap();
        assert_eq!(wide.bin_index_for("x"), prefix / 8);
        assert_eq!(HashedBins::new("", 1).names(), vec!["0-f".to_owned()]);
    }

    #[test]
    fn succinct_bins_take_the_first_bits() {
        let bins = SuccinctBins::new("bin", 4);
        assert_eq!(bins.bin_name(0), "bin-0");
        assert_eq!(bins.bin_name(15), "bin-f");
        let path = "releases/app-1.0.tar.gz";
        let first_nibble = u64::from_str_radix(&path_hash_hex(path)[..1], 16).unwrap();
        assert_eq!(bins.bin_index_for(path), first_nibble);

        let odd = SuccinctBins::new("p", 9);
        assert_eq!(odd.bin_name(0), "p-000");
        assert_eq!(odd.bin_name(511), "p-1ff");
        let first_bits = u64::from_str_radix(&path_hash_hex(path)[..3], 16).unwrap() >> 3;
        assert_eq!(odd.bin_index_for(path), first_bits);
        assert_eq!(odd.index_of("p-1ff"), Some(511));
        assert_eq!(odd.index_of("p-200"), None);
        assert_eq!(odd.index_of("p-01"), None);
        assert_eq!(odd.index_of("q-001"), None);

        let full = SuccinctBins::new("x", 32);
        assert_eq!(full.bin_name(1), "x-00000001");
        assert_eq!(
            full.bin_index_for(path),
            u64::from_str_radix(&path_hash_hex(path)[..8], 16).unwrap()
        );
    }
}
