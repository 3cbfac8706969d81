//! Opening a metadata file: envelope, header checks, canonical form, signatures.

use std::collections::HashSet;

use jiff::Timestamp;
use serde::Deserialize;

use crate::canonical::canonicalize;
use crate::error::{Error, Result};
use crate::key::KeyRing;
use crate::schema::{Common, Envelope, MetaFile, SignatureEntry};

/// Keys that may sign a role, and how many must.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authority<'k> {
    /// The delegating role (for messages).
    pub name: &'k str,
    pub keyids: &'k [String],
    pub threshold: u64,
    pub ring: &'k KeyRing,
}

/// A metadata file whose envelope and header parsed; signatures not yet checked.
pub(crate) struct Opened<'a> {
    pub role: &'a str,
    pub file: &'a str,
    signed_text: &'a str,
    canonical: Vec<u8>,
    signatures: Vec<SignatureEntry<'a>>,
    pub version: u64,
    pub expires: Timestamp,
}

/// Parses the envelope of `bytes`, expected to hold `_type` `kind`, for `role`.
pub(crate) fn open<'a>(
    bytes: &'a [u8],
    role: &'a str,
    kind: &str,
    file: &'a str,
) -> Result<Opened<'a>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::malformed(role, file, "not UTF-8"))?;
    let env: Envelope<'a> = serde_json::from_str(text)
        .map_err(|e| Error::malformed(role, file, format!("not a signed envelope: {e}")))?;
    let mut seen = HashSet::with_capacity(env.signatures.len());
    for s in &env.signatures {
        if !seen.insert(s.keyid.as_ref()) {
            return Err(Error::malformed(
                role,
                file,
                format!("two signatures by key id {}", s.keyid),
            ));
        }
    }
    let signed_text = env.signed.get();
    let common: Common<'_> = serde_json::from_str(signed_text)
        .map_err(|e| Error::malformed(role, file, format!("bad header: {e}")))?;
    if common.type_ != kind {
        return Err(Error::malformed(
            role,
            file,
            format!("_type is {:?}, expected {kind:?}", common.type_),
        ));
    }
    check_spec_version(&common.spec_version)
        .map_err(|reason| Error::malformed(role, file, reason))?;
    if common.version == 0 {
        return Err(Error::malformed(role, file, "version 0"));
    }
    let expires: Timestamp = common
        .expires
        .parse()
        .map_err(|e| Error::malformed(role, file, format!("bad expires: {e}")))?;
    let canonical = canonicalize(signed_text)
        .map_err(|e| Error::malformed(role, file, format!("no canonical form: {e}")))?;
    Ok(Opened {
        role,
        file,
        signed_text,
        canonical,
        signatures: env.signatures,
        version: common.version,
        expires,
    })
}

/// Accepts `1.x` and `1.x.y` with numeric parts (as python-tuf).
fn check_spec_version(v: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = v.split('.').collect();
    if !(2..=3).contains(&parts.len())
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("unparsable spec_version {v:?}"));
    }
    if parts[0] != "1" {
        return Err(format!("unsupported spec_version {v:?}"));
    }
    Ok(())
}

impl Opened<'_> {
    /// TUF 5.3.4 / 5.4.2 / 5.5.3 / 5.6.3: at least `threshold` distinct keys of the
    /// authority signed the canonical form of `signed`.
    pub fn verify(&self, auth: &Authority<'_>) -> Result<()> {
        let mut valid = 0usize;
        let mut counted: Vec<&str> = Vec::new();
        let mut rejected = Vec::new();
        for s in &self.signatures {
            if valid as u64 >= auth.threshold {
                break;
            }
            // A signature by a key the role does not list counts for nothing.
            if !auth.keyids.iter().any(|k| *k == s.keyid) {
                continue;
            }
            let Some(key) = auth.ring.get(&s.keyid) else {
                continue;
            };
            let ok = hex::decode(s.sig.as_bytes())
                .ok()
                .is_some_and(|sig| key.verify(&self.canonical, &sig));
            if ok {
                // One key listed under two ids still counts once.
                if !counted.contains(&key.public()) {
                    counted.push(key.public());
                    valid += 1;
                }
            } else {
                rejected.push(s.keyid.to_string());
            }
        }
        if valid as u64 >= auth.threshold {
            Ok(())
        } else {
            Err(Error::Threshold {
                role: self.role.to_owned(),
                file: self.file.to_owned(),
                delegator: auth.name.to_owned(),
                valid,
                threshold: auth.threshold,
                rejected,
            })
        }
    }

    /// The typed `signed` part.
    pub fn parse<'de, T: Deserialize<'de>>(&'de self) -> Result<T> {
        serde_json::from_str(self.signed_text)
            .map_err(|e| Error::malformed(self.role, self.file, e.to_string()))
    }
}

/// TUF 5.5.2 / 5.6.2: length and hashes of `bytes` against a `meta` entry, when listed.
pub(crate) fn check_meta_file(meta: &MetaFile, bytes: &[u8], what: &str, file: &str) -> Result<()> {
    if let Some(len) = meta.length {
        if bytes.len() as u64 != len {
            return Err(Error::Integrity {
                what: what.to_owned(),
                file: file.to_owned(),
                reason: format!("length {} differs from the listed {len}", bytes.len()),
            });
        }
    }
    if let Some(hashes) = &meta.hashes {
        for (alg, want) in &hashes.0 {
            let Some(d) = alg.digest_alg() else {
                return Err(Error::Integrity {
                    what: what.to_owned(),
                    file: file.to_owned(),
                    reason: format!("unsupported hash algorithm {}", alg.name()),
                });
            };
            if aws_lc_rs::digest::digest(d, bytes).as_ref() != want.as_slice() {
                return Err(Error::Integrity {
                    what: what.to_owned(),
                    file: file.to_owned(),
                    reason: format!("{} differs from the listed one", alg.name()),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_versions() {
        for ok in ["1.0", "1.0.31", "1.2.3"] {
            assert!(check_spec_version(ok).is_ok(), "{ok}");
        }
        for bad in ["2.0.0", "1", "1.0.0.0", "1.x", "", "1..0"] {
            assert!(check_spec_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_signature_key_ids_are_malformed() {
        let doc = br#"{"signed":{"_type":"timestamp","spec_version":"1.0.31","version":1,
            "expires":"2030-01-01T00:00:00Z","meta":{}},
            "signatures":[{"keyid":"a","sig":"00"},{"keyid":"a","sig":"00"}]}"#;
        let e = open(doc, "timestamp", "timestamp", "f").err().unwrap();
        assert!(e.to_string().contains("two signatures by key id a"), "{e}");
    }
}
