//! PEM armor (RFC 7468), decoded and encoded without leaving copies of a key
//! behind: every heap buffer that holds base64 or DER of a private key is
//! allocated once, at a size it never outgrows, and zeroized when dropped.
//!
//! The `pem` crate is not used for private keys because it collects the base64
//! body into a `String` it does not zeroize.

use crate::KeyError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::path::Path;
use zeroize::Zeroizing;

/// One `-----BEGIN label-----` ... `-----END label-----` block.
pub(crate) struct Block {
    /// The label, e.g. `PRIVATE KEY`.
    pub(crate) label: String,
    /// The line of the BEGIN marker, counted from 1.
    pub(crate) line: usize,
    /// The decoded contents.
    pub(crate) der: Zeroizing<Vec<u8>>,
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

/// The block being read: its label, BEGIN line and base64 text so far.
struct Open {
    label: String,
    line: usize,
    base64: Zeroizing<Vec<u8>>,
}

/// Decodes every PEM block of `text`, the contents of the file `path`.
///
/// Text outside blocks is ignored (RFC 7468 section 5.2 allows explanatory text).
/// Encapsulated headers (legacy `Proc-Type: 4,ENCRYPTED` keys) are refused.
pub(crate) fn decode(path: &Path, text: &[u8]) -> Result<Vec<Block>, KeyError> {
    let pem_error = |reason: String| KeyError::Pem {
        path: path.to_owned(),
        reason,
        source: None,
    };
    let mut blocks = Vec::new();
    let mut open: Option<Open> = None;
    for (index, raw_line) in text.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let line = raw_line.trim_ascii();
        let Some(block) = open.as_mut() else {
            if let Some(label) = marker(line, BEGIN) {
                let label = label_text(label).ok_or_else(|| {
                    pem_error(format!(
                        "line {number}: malformed PEM label after -----BEGIN"
                    ))
                })?;
                open = Some(Open {
                    label,
                    line: number,
                    // The body is part of `text`, so it never outgrows this.
                    base64: Zeroizing::new(Vec::with_capacity(text.len())),
                });
            }
            continue;
        };
        if let Some(label) = marker(line, END) {
            if label != block.label.as_bytes() {
                return Err(pem_error(format!(
                    "line {number}: -----END does not match -----BEGIN {} of line {}",
                    block.label, block.line
                )));
            }
            let der = decode_base64(&block.base64).map_err(|source| KeyError::Pem {
                path: path.to_owned(),
                reason: format!(
                    "the base64 of the {} block of line {} is invalid",
                    block.label, block.line
                ),
                source: Some(source),
            })?;
            if let Some(block) = open.take() {
                blocks.push(Block {
                    label: block.label,
                    line: block.line,
                    der,
                });
            }
        } else if line.contains(&b':') {
            let encrypted = line.starts_with(b"Proc-Type") || line.starts_with(b"DEK-Info");
            return Err(if encrypted {
                KeyError::UnsupportedFormat {
                    path: path.to_owned(),
                    what: "an encrypted private key (legacy PEM encryption)".to_owned(),
                    hint: ENCRYPTED_HINT,
                }
            } else {
                pem_error(format!(
                    "line {number}: unexpected header in the {} block",
                    block.label
                ))
            });
        } else if line.starts_with(DASHES) {
            return Err(pem_error(format!(
                "line {number}: expected -----END {}----- for the block of line {}",
                block.label, block.line
            )));
        } else {
            for &byte in line {
                if byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=') {
                    block.base64.push(byte);
                } else if !byte.is_ascii_whitespace() {
                    return Err(pem_error(format!(
                        "line {number}: a character that is not base64 in the {} block",
                        block.label
                    )));
                }
            }
        }
    }
    if let Some(block) = open {
        return Err(pem_error(format!(
            "the {} block of line {} has no -----END line",
            block.label, block.line
        )));
    }
    if blocks.is_empty() {
        return Err(pem_error(
            "no PEM block found; expected a PEM private key (-----BEGIN PRIVATE KEY-----)"
                .to_owned(),
        ));
    }
    Ok(blocks)
}

/// What to do with an encrypted key file.
pub(crate) const ENCRYPTED_HINT: &str = "keys are read unencrypted and protected by file \
    permissions; decrypt it with `openssl pkey -in FILE -out NEW` and `chmod 600 NEW`";

/// Encodes `der` as a PEM block labelled `label`, lines of 64 characters.
///
/// Returns `None` only if base64 encoding fails, which the sizes below rule out.
pub(crate) fn encode(label: &str, der: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let base64_len = der.len().div_ceil(3).checked_mul(4)?;
    let mut base64 = Zeroizing::new(vec![0u8; base64_len]);
    let written = STANDARD.encode_slice(der, base64.as_mut_slice()).ok()?;
    let base64 = base64.get(..written)?;
    let lines = base64.len().div_ceil(64);
    let capacity = 2 * (BEGIN.len() + label.len() + DASHES.len() + 1) + base64.len() + lines;
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    out.extend_from_slice(BEGIN);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(DASHES);
    out.push(b'\n');
    for chunk in base64.chunks(64) {
        out.extend_from_slice(chunk);
        out.push(b'\n');
    }
    out.extend_from_slice(END);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(DASHES);
    out.push(b'\n');
    Some(out)
}

/// The label of a `-----BEGIN label-----` or `-----END label-----` line.
fn marker<'a>(line: &'a [u8], start: &[u8]) -> Option<&'a [u8]> {
    line.strip_prefix(start)?.strip_suffix(DASHES)
}

/// A label as text: printable ASCII, not starting or ending with a space or `-`.
fn label_text(label: &[u8]) -> Option<String> {
    let printable = label.iter().all(|&b| b == b' ' || b.is_ascii_graphic());
    let edges_ok = |b: Option<&u8>| b.is_some_and(|&b| b != b' ' && b != b'-');
    (printable && edges_ok(label.first()) && edges_ok(label.last()))
        .then(|| String::from_utf8_lossy(label).into_owned())
}

fn decode_base64(base64: &[u8]) -> Result<Zeroizing<Vec<u8>>, base64::DecodeSliceError> {
    let mut der = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(base64.len())]);
    let len = STANDARD.decode_slice(base64, der.as_mut_slice())?;
    der.truncate(len);
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_ok(text: &str) -> Vec<Block> {
        decode(Path::new("k.pem"), text.as_bytes()).unwrap()
    }

    fn decode_err(text: &str) -> String {
        decode(Path::new("k.pem"), text.as_bytes())
            .err()
            .unwrap()
            .to_string()
    }

    #[test]
    fn round_trip_with_long_lines() {
        let der: Vec<u8> = (0..=255).collect();
        let text = encode("PRIVATE KEY", &der).unwrap();
        let text = std::str::from_utf8(&text).unwrap();
        assert!(text.lines().all(|l| l.len() <= 64));
        let blocks = decode_ok(text);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "PRIVATE KEY");
        assert_eq!(blocks[0].der.as_slice(), der.as_slice());
    }

    #[test]
    fn crlf_explanatory_text_and_several_blocks() {
        let text = "Key for tests\r\n-----BEGIN EC PARAMETERS-----\r\nBggqhkjOPQMBBw==\r\n\
                    -----END EC PARAMETERS-----\r\n\r\n-----BEGIN X-----\r\n AAEC \r\n-----END X-----";
        let blocks = decode_ok(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "EC PARAMETERS");
        assert_eq!(blocks[0].line, 2);
        assert_eq!(blocks[1].der.as_slice(), &[0, 1, 2]);
    }

    #[test]
    fn malformed_pem_is_refused_with_a_reason() {
        assert!(decode_err("").contains("no PEM block found"));
        assert!(decode_err("hello\nworld\n").contains("no PEM block found"));
        assert!(decode_err("-----BEGIN A-----\nAAAA\n").contains("has no -----END line"));
        assert!(decode_err("-----BEGIN A-----\nAAAA\n-----END B-----\n")
            .contains("line 3: -----END does not match -----BEGIN A of line 1"));
        assert!(decode_err("-----BEGIN A-----\nAA*A\n-----END A-----\n")
            .contains("line 2: a character that is not base64"));
        assert!(decode_err("-----BEGIN A-----\nAAA\n-----END A-----\n")
            .contains("the base64 of the A block of line 1 is invalid"));
        assert!(
            decode_err("-----BEGIN A-----\n-----BEGIN B-----\n-----END B-----\n")
                .contains("line 2: expected -----END A-----")
        );
        assert!(decode_err("-----BEGIN -A-----\n").contains("malformed PEM label"));
        assert!(decode_err(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
             DEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        )
        .contains("an encrypted private key"));
    }
}
