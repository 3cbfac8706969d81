//! Typed views of TUF 1.0 metadata, parsed from the text as received.
//!
//! These types are read-only views used after (or for) signature checks; they are
//! never serialized back. Unknown fields are ignored here and kept in the bytes,
//! which is what the signature covers. tough's schema types cannot serve here: they
//! re-serialize to verify, lack TAP 15 `succinct_roles`, and have no place for
//! unknown fields in delegated-role entries.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::key::KeyJson;

/// One signature.
#[derive(Deserialize)]
pub(crate) struct SignatureEntry<'a> {
    #[serde(borrow)]
    pub keyid: Cow<'a, str>,
    #[serde(borrow)]
    pub sig: Cow<'a, str>,
}

/// Fields common to every role.
#[derive(Deserialize)]
pub struct Common<'a> {
    /// `_type`.
    #[serde(rename = "_type", borrow)]
    pub type_: Cow<'a, str>,
    /// `spec_version`.
    #[serde(borrow)]
    pub spec_version: Cow<'a, str>,
    /// Version.
    pub version: u64,
    /// Expiry, as written.
    #[serde(borrow)]
    pub expires: Cow<'a, str>,
}

impl crate::verify::Header for Common<'_> {
    fn header(&self) -> (&str, &str, u64, &str) {
        (&self.type_, &self.spec_version, self.version, &self.expires)
    }
}

macro_rules! header {
    ($($t:ty),*) => {$(
        impl crate::verify::Header for $t {
            fn header(&self) -> (&str, &str, u64, &str) {
                (&self.type_, &self.spec_version, self.version, &self.expires)
            }
        }
    )*};
}
header!(RootSigned, TimestampSigned, SnapshotSigned, TargetsSigned);

/// `roles` entry of root: key ids and threshold.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RoleKeys {
    /// Key ids.
    pub keyids: Vec<String>,
    /// Threshold.
    pub threshold: u64,
}

/// Root's signed part.
#[derive(Debug, Deserialize)]
pub struct RootSigned {
    /// `_type`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// `spec_version`.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry, as written.
    pub expires: String,
    /// Whether files are versioned.
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// Keys by id.
    pub keys: HashMap<String, KeyJson>,
    /// Roles.
    pub roles: HashMap<String, RoleKeys>,
}

/// A snapshot or timestamp `meta` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MetaFile {
    /// Version of the listed file.
    pub version: u64,
    /// Its length, when listed.
    #[serde(default)]
    pub length: Option<u64>,
    /// Its hashes, when listed.
    #[serde(default)]
    pub hashes: Option<Hashes>,
}

/// Timestamp's signed part.
#[derive(Debug, Deserialize)]
pub struct TimestampSigned {
    /// `_type`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// `spec_version`.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry, as written.
    pub expires: String,
    /// `snapshot.json` entry (and anything else, ignored).
    pub meta: HashMap<String, MetaFile>,
}

/// Snapshot's signed part.
#[derive(Debug, Deserialize)]
pub struct SnapshotSigned {
    /// `_type`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// `spec_version`.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry, as written.
    pub expires: String,
    /// `<role>.json` entries.
    pub meta: HashMap<String, MetaFile>,
}

/// Targets' (top-level or delegated) signed part.
#[derive(Debug, Deserialize)]
pub struct TargetsSigned {
    /// `_type`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// `spec_version`.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry, as written.
    pub expires: String,
    /// Targets by path.
    pub targets: HashMap<String, TargetDesc>,
    /// Delegations, if any.
    #[serde(default)]
    pub delegations: Option<Delegations>,
}

/// What signed metadata says about a target file.
#[derive(Debug, Clone, Deserialize)]
pub struct TargetDesc {
    /// Length in bytes.
    pub length: u64,
    /// Hashes, in the order listed.
    pub hashes: Hashes,
    /// `custom`, as written.
    #[serde(default)]
    pub custom: Option<Box<RawValue>>,
}

/// `delegations` of a targets role.
#[derive(Debug, Deserialize)]
pub struct Delegations {
    /// Keys by id.
    pub keys: HashMap<String, KeyJson>,
    /// Explicit delegated roles, in order of trust.
    #[serde(default)]
    pub roles: Option<Vec<DelegatedRole>>,
    /// TAP 15 hash-bin delegation.
    #[serde(default)]
    pub succinct_roles: Option<SuccinctRoles>,
}

/// One entry of `delegations.roles`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DelegatedRole {
    /// Role name.
    pub name: String,
    /// Key ids.
    pub keyids: Vec<String>,
    /// Threshold.
    pub threshold: u64,
    /// Whether the search stops here.
    #[serde(default)]
    pub terminating: bool,
    /// Path patterns.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of sha256(target path).
    #[serde(default)]
    pub path_hash_prefixes: Option<Vec<String>>,
}

/// TAP 15 `succinct_roles`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SuccinctRoles {
    /// Key ids, shared by all bins.
    pub keyids: Vec<String>,
    /// Threshold, shared by all bins.
    pub threshold: u64,
    /// Number of leading bits of sha256(path) that pick the bin.
    pub bit_length: u32,
    /// Bin names are `<name_prefix>-<hex>`.
    pub name_prefix: String,
}

/// A hash algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// sha256.
    Sha256,
    /// sha384.
    Sha384,
    /// sha512.
    Sha512,
    /// An algorithm this engine cannot compute.
    Other(String),
}

impl HashAlg {
    fn from_name(name: &str) -> Self {
        match name {
            "sha256" => HashAlg::Sha256,
            "sha384" => HashAlg::Sha384,
            "sha512" => HashAlg::Sha512,
            other => HashAlg::Other(other.to_owned()),
        }
    }

    /// The name used in metadata.
    pub fn name(&self) -> &str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
            HashAlg::Other(n) => n,
        }
    }

    pub(crate) fn digest_alg(&self) -> Option<&'static aws_lc_rs::digest::Algorithm> {
        match self {
            HashAlg::Sha256 => Some(&aws_lc_rs::digest::SHA256),
            HashAlg::Sha384 => Some(&aws_lc_rs::digest::SHA384),
            HashAlg::Sha512 => Some(&aws_lc_rs::digest::SHA512),
            HashAlg::Other(_) => None,
        }
    }
}

/// Hashes of a file, in the order listed (the first one names consistent target files).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Hashes(pub Vec<(HashAlg, Vec<u8>)>);

impl fmt::Debug for Hashes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (alg, v) in &self.0 {
            m.entry(&alg.name(), &hex::encode(v));
        }
        m.finish()
    }
}

impl Hashes {
    /// The sha256 digest, if listed.
    pub fn sha256(&self) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(a, _)| *a == HashAlg::Sha256)
            .map(|(_, v)| v.as_slice())
    }

    /// The first listed digest, hex-encoded, as used in consistent file names.
    pub fn first_hex(&self) -> Option<String> {
        self.0.first().map(|(_, v)| hex::encode(v))
    }
}

impl<'de> Deserialize<'de> for Hashes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hashes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of hash algorithm to hex digest")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hashes, A::Error> {
                let mut out = Vec::with_capacity(1);
                while let Some((alg, value)) = map.next_entry::<Str<'de>, Str<'de>>()? {
                    let bytes = decode_hex(value.0.as_bytes()).ok_or_else(|| {
                        de::Error::custom(format_args!("{} digest is not hex", alg.0))
                    })?;
                    out.push((HashAlg::from_name(&alg.0), bytes));
                }
                if out.is_empty() {
                    return Err(de::Error::custom("empty hashes"));
                }
                Ok(Hashes(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Hex to bytes; about four times faster than the `hex` crate, which matters with
/// 100,000 targets.
fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    const fn table() -> [u8; 256] {
        let mut t = [0xffu8; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    }
    static HEX: [u8; 256] = table();
    if s.len() % 2 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 2);
    for pair in s.chunks_exact(2) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        if (hi | lo) & 0xf0 != 0 {
            return None;
        }
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// A string borrowed from the input when it has no escapes (serde's own `Cow<str>`
/// always copies outside derived structs).
struct Str<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_keep_order_and_unknown_algorithms() {
        let h: Hashes =
            serde_json::from_str(r#"{"sha512": "00ff", "blake3": "01", "sha256": "aa"}"#).unwrap();
        assert_eq!(h.first_hex().as_deref(), Some("00ff"));
        assert_eq!(h.sha256(), Some(&[0xaa][..]));
        assert_eq!(h.0[1].0, HashAlg::Other("blake3".into()));
        assert!(serde_json::from_str::<Hashes>("{}").is_err());
        assert!(serde_json::from_str::<Hashes>(r#"{"sha256":"xyz"}"#).is_err());
        assert!(serde_json::from_str::<Hashes>(r#"{"sha256":"abc"}"#).is_err());
        assert_eq!(decode_hex(b"00fFa9"), Some(vec![0, 0xff, 0xa9]));
        assert_eq!(decode_hex(b"0g"), None);
        // Escaped strings are decoded, not refused.
        let h: Hashes = serde_json::from_str(r#"{"sha\u0032\u00356": "0\u0030"}"#).unwrap();
        assert_eq!(h.sha256(), Some(&[0u8][..]));
    }

    #[test]
    fn targets_ignore_unknown_fields_and_read_succinct_roles() {
        let t: TargetsSigned = serde_json::from_str(
            r#"{"_type":"targets","spec_version":"1.0.31","version":2,"expires":"2030-01-01T00:00:00Z","x":1,
                "targets":{"a":{"length":1,"hashes":{"sha256":"00"},"custom":{"k":[1]}}},
                "delegations":{"keys":{},"succinct_roles":{"keyids":[],"threshold":1,
                "bit_length":4,"name_prefix":"bin","unknown":true}}}"#,
        )
        .unwrap();
        assert_eq!(
            t.targets["a"].custom.as_ref().unwrap().get(),
            r#"{"k":[1]}"#
        );
        let s = t.delegations.unwrap().succinct_roles.unwrap();
        assert_eq!(s.bit_length, 4);
    }
}
