//! Opening a metadata file: envelope, header checks, canonical form, signatures.

use std::collections::HashSet;

use jiff::Timestamp;
use serde::Deserialize;

use crate::canonical::canonicalize_object;
use crate::error::{Error, Result};
use crate::key::KeyRing;
use crate::schema::{Common, MetaFile, SignatureEntry};

/// Keys that may sign a role, and how many must.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authority<'k> {
    /// The delegating role (for messages).
    pub name: &'k str,
    pub keyids: &'k [String],
    pub threshold: u64,
    pub ring: &'k KeyRing,
}

/// The header fields every role has.
pub(crate) trait Header {
    /// `_type`, `spec_version`, `version`, `expires`.
    fn header(&self) -> (&str, &str, u64, &str);
}

/// A metadata file whose envelope, header and body parsed; signatures not yet checked.
pub(crate) struct Opened<'a, T> {
    pub role: &'a str,
    pub file: &'a str,
    pub body: T,
    /// The canonical document; `signed` is `canonical[signed]`.
    canonical: Vec<u8>,
    signed: std::ops::Range<usize>,
    signatures: Vec<SignatureEntry<'a>>,
    pub version: u64,
    pub expires: Timestamp,
}

/// Parses `bytes`, expected to hold `_type` `kind`, for `role`: envelope, typed body
/// (which checks the header), and the canonical form of `signed`.
pub(crate) fn open<'a, T>(
    bytes: &'a [u8],
    role: &'a str,
    kind: &str,
    file: &'a str,
) -> Result<Opened<'a, T>>
where
    T: Deserialize<'a> + Header,
{
    let text = std::str::from_utf8(bytes).map_err(|_| Error::malformed(role, file, "not UTF-8"))?;
    // One pass: the canonical form (what signatures cover) and where `signed` and
    // `signatures` are in the text.
    let (canonical, top) = canonicalize_object(text).map_err(|e| {
        Error::malformed(
            role,
            file,
            format!("not a canonicalizable JSON object: {e}"),
        )
    })?;
    let member = |key: &str| {
        top.iter()
            .find(|m| m.key == key)
            .ok_or_else(|| Error::malformed(role, file, format!("no {key:?} member")))
    };
    let (signed_m, sigs_m) = (member("signed")?, member("signatures")?);
    let signed_text: &'a str = &text[signed_m.input.clone()];
    let signatures: Vec<SignatureEntry<'a>> = serde_json::from_str(&text[sigs_m.input.clone()])
        .map_err(|e| Error::malformed(role, file, format!("bad signatures: {e}")))?;
    let mut seen = HashSet::with_capacity(signatures.len());
    for s in &signatures {
        if !seen.insert(s.keyid.as_ref()) {
            return Err(Error::malformed(
                role,
                file,
                format!("two signatures by key id {}", s.keyid),
            ));
        }
    }
    let body: T = match serde_json::from_str(signed_text) {
        Ok(b) => b,
        Err(e) => {
            // Say what is wrong with the header if that is the problem.
            let common: Common<'_> = serde_json::from_str(signed_text)
                .map_err(|e| Error::malformed(role, file, format!("bad header: {e}")))?;
            check_header(&common, kind).map_err(|r| Error::malformed(role, file, r))?;
            return Err(Error::malformed(role, file, e.to_string()));
        }
    };
    check_header(&body, kind).map_err(|reason| Error::malformed(role, file, reason))?;
    let (_, _, version, expires) = body.header();
    let expires: Timestamp = expires
        .parse()
        .map_err(|e| Error::malformed(role, file, format!("bad expires: {e}")))?;
    Ok(Opened {
        role,
        file,
        body,
        canonical,
        signed: signed_m.output.clone(),
        signatures,
        version,
        expires,
    })
}

fn check_header(h: &impl Header, kind: &str) -> std::result::Result<(), String> {
    let (type_, spec_version, version, _) = h.header();
    if type_ != kind {
        return Err(format!("_type is {type_:?}, expected {kind:?}"));
    }
    check_spec_version(spec_version)?;
    if version == 0 {
        return Err("version 0".into());
    }
    Ok(())
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

impl<'a, T> Opened<'a, T> {
    /// Separates the body from what signature checks need.
    pub fn split(self) -> (T, Opened<'a, ()>) {
        let Opened {
            role,
            file,
            body,
            canonical,
            signed,
            signatures,
            version,
            expires,
        } = self;
        (
            body,
            Opened {
                role,
                file,
                body: (),
                canonical,
                signed,
                signatures,
                version,
                expires,
            },
        )
    }

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
                .is_some_and(|sig| key.verify(&self.canonical[self.signed.clone()], &sig));
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
        let e = open::<Common<'_>>(doc, "timestamp", "timestamp", "f")
            .err()
            .unwrap();
        assert!(e.to_string().contains("two signatures by key id a"), "{e}");
    }
}
