//! TUF key ids.

use std::fmt;
use tough::schema::key::Key;

/// A TUF key id: the lowercase hex SHA-256 of the canonical JSON of the public
/// key (TUF specification 4.2; tough's `Key::key_id`). It is public information.
///
/// The id depends on how the public key is written. tough writes an ECDSA or RSA
/// public key as PEM without a final newline, securesystemslib (python-tuf) with
/// one, so the two compute different ids for the same ECDSA or RSA key (ed25519
/// ids agree). The id here is the id of the key object the mirror root lists,
/// which is what clients look keys up by; they do not recompute it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The key id of `key`.
    ///
    /// # Errors
    ///
    /// Only if the key cannot be serialized to canonical JSON.
    pub fn of(key: &Key) -> Result<KeyId, tough::schema::Error> {
        Ok(KeyId(hex::encode(key.key_id()?)))
    }

    /// The key id as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` names this key id (hex, compared case-insensitively).
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl AsRef<str> for KeyId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> String {
        id.0
    }
}

impl PartialEq<str> for KeyId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for KeyId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for KeyId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}
