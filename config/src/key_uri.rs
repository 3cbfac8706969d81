//! Key locations, parsed in one place: `file:`, `awskms:` and `pkcs11:` URIs.
//!
//! The config only parses and validates them; the `keys` crate opens them. No form
//! carries a secret: a PKCS#11 PIN is read from a file named by `pin-source`, and
//! KMS credentials come from the AWS environment or profile, never from the URI.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{ConfigError, Reason};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

pub use crate::kms::AwsKmsKey;
pub use crate::pkcs11::Pkcs11Key;

/// Where a signing key is, as written in `root_keys`, `snapshot_keys` and
/// `timestamp_keys`.
///
/// Grammar (see `docs/configuration.md` for the full reference):
///
/// - `file:/abs/key.pem` or `file:///abs/key.pem`: a PEM private key file.
/// - `awskms:///<key-id | alias/NAME | key or alias ARN>[?region=R][&endpoint=URL][&profile=P]`.
/// - `pkcs11:token=T;object=O;id=%01?module-path=/abs/module.so&pin-source=/abs/pin` (RFC 7512).
///
/// `Display` prints the normalised URI; neither `Display` nor `Debug` can print a
/// PIN because a URI holding one (`pin-value`) is refused when parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyUri {
    /// A private key file (absolute, normalised path).
    File(PathBuf),
    /// A key held by AWS KMS or a KMS-compatible service.
    AwsKms(AwsKmsKey),
    /// A key held by a PKCS#11 token (an HSM, SoftHSM2, a smart card).
    Pkcs11(Pkcs11Key),
}

impl KeyUri {
    /// The URI without what does not change which key it names (the PKCS#11
    /// `pin-source`): two key URIs with the same identity name the same key.
    pub fn identity(&self) -> String {
        match self {
            KeyUri::Pkcs11(key) => key.to_uri(false),
            other => other.to_string(),
        }
    }
}

impl FromStr for KeyUri {
    type Err = ConfigError;

    /// Parses a key URI; the error names no file or key (the caller knows them).
    fn from_str(text: &str) -> Result<KeyUri, ConfigError> {
        KeyUri::parse(text).map_err(|reason| ConfigError::bare(Reason::Invalid(reason)))
    }
}

impl KeyUri {
    /// Parses a key URI; the error is a reason that never repeats attribute values,
    /// so a mistyped secret does not end up in a log.
    pub(crate) fn parse(text: &str) -> Result<KeyUri, String> {
        if text.starts_with('/') {
            return Err(format!("a key location is a URI: write file:{text}"));
        }
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(
                "not a key URI; write file:/path/key.pem, awskms:///KEY or pkcs11:...".into(),
            );
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => file(rest).map(KeyUri::File),
            "awskms" => AwsKmsKey::parse(rest).map(KeyUri::AwsKms),
            "pkcs11" => Pkcs11Key::parse(rest).map(KeyUri::Pkcs11),
            "aws-kms" => Err(
                "unsupported key URI scheme \"aws-kms\"; this config spells it awskms:///KEY"
                    .into(),
            ),
            _ => Err("unsupported key URI scheme; use file:, awskms: or pkcs11:".into()),
        }
    }
}

fn file(rest: &str) -> Result<PathBuf, String> {
    let path = match rest.strip_prefix("//") {
        Some(after_authority) if after_authority.starts_with('/') => after_authority,
        Some(_) => {
            return Err(
                "a file: key URI must name a local file (file:/path or file:///path)".into(),
            )
        }
        None => rest,
    };
    if path.contains(['?', '#']) {
        return Err("a file: key URI takes no query or fragment".into());
    }
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| "the file: key URI is not valid UTF-8 once percent-decoded".to_string())?;
    crate::path::absolute(&decoded)
}

impl fmt::Display for KeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyUri::File(path) => {
                let text = path.to_string_lossy();
                write!(f, "file://{}", utf8_percent_encode(&text, PATH_VALUE))
            }
            KeyUri::AwsKms(key) => write!(f, "{key}"),
            KeyUri::Pkcs11(key) => f.write_str(&key.to_uri(true)),
        }
    }
}

/// Characters percent-encoded in an attribute value: all but unreserved ones.
pub(crate) const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Like [`VALUE`], but `/` stays readable in paths.
pub(crate) const PATH_VALUE: &AsciiSet = &VALUE.remove(b'/');

/// Like [`PATH_VALUE`], but `:` stays readable too (ARNs, URLs).
pub(crate) const URI_VALUE: &AsciiSet = &PATH_VALUE.remove(b':');

/// Splits `name=value` attributes separated by `separator`, percent-decodes the
/// values, and refuses empty and repeated attributes (RFC 7512 section 2.3).
pub(crate) fn attributes(text: &str, separator: char) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for part in text.split(separator) {
        let Some((name, value)) = part.split_once('=') else {
            return Err("an attribute without \"=\"; write name=value".into());
        };
        let name = name.to_ascii_lowercase();
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || name.is_empty()
        {
            return Err(
                "an attribute name with characters other than letters, digits, \"-\", \"_\"".into(),
            );
        }
        if value.is_empty() {
            return Err(format!("attribute {name:?} has an empty value"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("attribute {name:?} appears twice"));
        }
        out.push((name, percent_decode_str(value).collect()));
    }
    Ok(out)
}

/// A decoded attribute value as text.
pub(crate) fn text_value(name: &str, value: Vec<u8>) -> Result<String, String> {
    String::from_utf8(value)
        .map_err(|_| format!("attribute {name:?} is not UTF-8 once percent-decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_in_both_spellings() {
        let a = KeyUri::parse("file:/etc/tuf-mirror/keys/root.pem").unwrap();
        let b = KeyUri::parse("file:///etc/tuf-mirror/keys/root.pem").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            KeyUri::File(PathBuf::from("/etc/tuf-mirror/keys/root.pem"))
        );
        assert_eq!(a.to_string(), "file:///etc/tuf-mirror/keys/root.pem");
        let spaced = KeyUri::parse("file:///k/a%20b.pem").unwrap();
        assert_eq!(spaced, KeyUri::File(PathBuf::from("/k/a b.pem")));
        assert_eq!(KeyUri::parse(&spaced.to_string()).unwrap(), spaced);
    }

    #[test]
    fn file_uris_must_be_local_and_absolute() {
        assert!(KeyUri::parse("file:keys/root.pem")
            .unwrap_err()
            .contains("absolute"));
        assert!(KeyUri::parse("file://host/k.pem")
            .unwrap_err()
            .contains("local"));
        assert!(KeyUri::parse("file:/k.pem?x=1")
            .unwrap_err()
            .contains("no query"));
        assert!(KeyUri::parse("file:/a/../k.pem").is_err());
    }

    #[test]
    fn unknown_schemes_are_refused() {
        assert!(KeyUri::parse("/etc/k.pem")
            .unwrap_err()
            .contains("file:/etc/k.pem"));
        assert!(KeyUri::parse("k.pem")
            .unwrap_err()
            .contains("not a key URI"));
        assert!(KeyUri::parse("gcpkms://x")
            .unwrap_err()
            .contains("unsupported"));
        assert!(KeyUri::parse("aws-kms:///alias/x")
            .unwrap_err()
            .contains("awskms"));
    }

    #[test]
    fn attributes_refuse_repeats_and_empty_values() {
        assert!(attributes("a=1;a=2", ';').unwrap_err().contains("twice"));
        assert!(attributes("a=", ';').unwrap_err().contains("empty"));
        assert!(attributes("a", ';').unwrap_err().contains("name=value"));
        assert_eq!(
            attributes("a=%41b", ';').unwrap(),
            vec![("a".to_string(), b"Ab".to_vec())]
        );
    }
}
