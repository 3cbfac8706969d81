//! Just enough DER to tell which algorithm a private key is for, so that an
//! unsupported key (ECDSA P-384, Ed448, ...) gets an error naming it instead of
//! "unrecognized", and a damaged supported key gets the crypto library's reason.
//! The keys themselves are parsed by aws-lc-rs.

/// DER tags used here.
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OID: u8 = 0x06;
pub(crate) const OCTET_STRING: u8 = 0x04;
/// `[0]` EXPLICIT, the `parameters` of a SEC1 `ECPrivateKey`.
const CONTEXT_0: u8 = 0xa0;

/// The algorithm of a private key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
    /// An EC key whose curve is not named in the algorithm identifier (it may be
    /// in the inner `ECPrivateKey`): left to aws-lc-rs to check.
    EcdsaUnnamedCurve,
    Rsa,
    /// Something else, described with its article: `an ECDSA P-384`.
    Other(String),
}

/// The algorithm of a PKCS#8 `PrivateKeyInfo` (RFC 5208 / RFC 5958), or `None`
/// when `der` is not one.
pub(crate) fn algorithm(der: &[u8]) -> Option<KeyAlgorithm> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(info, INTEGER)?;
    let (identifier, _) = expect(rest, SEQUENCE)?;
    let (oid, parameters) = expect(identifier, OID)?;
    Some(match oid {
        ED25519 => KeyAlgorithm::Ed25519,
        RSA_ENCRYPTION => KeyAlgorithm::Rsa,
        EC_PUBLIC_KEY => match expect(parameters, OID) {
            Some((curve, _)) => curve_algorithm(curve),
            None => KeyAlgorithm::EcdsaUnnamedCurve,
        },
        other => KeyAlgorithm::Other(match other {
            ED448 => "an Ed448".to_owned(),
            X25519 | X448 => "a key-agreement (X25519/X448)".to_owned(),
            RSASSA_PSS => {
                "an RSASSA-PSS-restricted RSA (write plain rsaEncryption PKCS#8)".to_owned()
            }
            DSA => "a DSA".to_owned(),
            _ => format!("an algorithm with OID {}", dotted(other)),
        }),
    })
}

/// The algorithm of a SEC1 `ECPrivateKey` (RFC 5915), from its curve when the
/// key names it.
pub(crate) fn sec1_algorithm(der: &[u8]) -> KeyAlgorithm {
    let curve = expect(der, SEQUENCE)
        .and_then(|(key, _)| expect(key, INTEGER))
        .and_then(|(_, rest)| tlv(rest))
        .and_then(|(_private_key_tag, _, rest)| expect(rest, CONTEXT_0))
        .and_then(|(parameters, _)| expect(parameters, OID));
    match curve {
        Some((curve, _)) => curve_algorithm(curve),
        None => KeyAlgorithm::EcdsaUnnamedCurve,
    }
}

/// The private key inside a PKCS#8 `PrivateKeyInfo` (for RSA, PKCS#1 DER).
#[cfg(test)]
pub(crate) fn private_key(der: &[u8]) -> Option<&[u8]> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(info, INTEGER)?;
    let (_identifier, rest) = expect(rest, SEQUENCE)?;
    expect(rest, OCTET_STRING).map(|(key, _)| key)
}

pub(crate) fn curve_algorithm(curve: &[u8]) -> KeyAlgorithm {
    let name = match curve {
        P256 => return KeyAlgorithm::EcdsaP256,
        P384 => "P-384".to_owned(),
        P521 => "P-521".to_owned(),
        SECP256K1 => "secp256k1".to_owned(),
        other => format!("curve OID {}", dotted(other)),
    };
    KeyAlgorithm::Other(format!("an ECDSA {name}"))
}

// Object identifiers, DER contents.
/// 1.3.101.112
pub(crate) const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// 1.3.101.113
const ED448: &[u8] = &[0x2b, 0x65, 0x71];
/// 1.3.101.110
const X25519: &[u8] = &[0x2b, 0x65, 0x6e];
/// 1.3.101.111
const X448: &[u8] = &[0x2b, 0x65, 0x6f];
/// 1.2.840.113549.1.1.1
pub(crate) const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.113549.1.1.10
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// 1.2.840.10040.4.1
const DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
/// 1.2.840.10045.2.1
pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7 (prime256v1)
pub(crate) const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 1.3.132.0.34
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// 1.3.132.0.35
const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
/// 1.3.132.0.10
const SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];

/// Reads one DER element with tag `tag`: its contents and what follows it.
pub(crate) fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = tlv(input)?;
    (found == tag).then_some((contents, rest))
}

/// Reads one DER element (single-byte tag, definite length of up to 4 bytes).
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// An OID in dotted form, for messages (`1.3.132.0.34`).
pub(crate) fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in oid {
        if value > u64::MAX >> 7 {
            return format!("(unreadable: {})", hex::encode(oid));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return "(empty)".to_owned();
    };
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut text = format!("{a}.{b}");
    for arc in rest {
        text.push_str(&format!(".{arc}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_oids() {
        assert_eq!(dotted(P384), "1.3.132.0.34");
        assert_eq!(dotted(RSA_ENCRYPTION), "1.2.840.113549.1.1.1");
        assert_eq!(dotted(&[0x88, 0x37, 0x03]), "2.999.3");
        assert_eq!(dotted(&[]), "(empty)");
    }

    #[test]
    fn truncated_or_foreign_der_is_not_pkcs8() {
        assert_eq!(algorithm(&[]), None);
        assert_eq!(algorithm(&[0x30, 0x05, 0x02, 0x01]), None);
        assert_eq!(algorithm(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(algorithm(b"not DER at all"), None);
    }

    #[test]
    fn long_form_lengths() {
        let mut der = vec![0x04, 0x81, 200];
        der.extend(std::iter::repeat_n(7u8, 200));
        der.push(0xff);
        let (tag, contents, rest) = tlv(&der).unwrap();
        assert_eq!((tag, contents.len(), rest), (0x04, 200, &[0xff][..]));
    }
}
