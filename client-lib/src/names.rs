//! Role names and target paths: validation, file-name encoding, delegation matching.
//!
//! Both come from the remote and are untrusted. Anything that could escape a
//! directory or cannot be a file name is refused, never rewritten.

use aws_lc_rs::digest;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Error, Result};
use crate::schema::{DelegatedRole, SuccinctRoles};

/// Characters percent-encoded in role names, as python-tuf's `quote(name, "")`:
/// everything but ASCII letters, digits and `_.-~`.
const ROLE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Longest encoded role name: `N.<name>.json` must fit a 255-byte file name.
pub const MAX_ENCODED_ROLE: usize = 224;
/// Longest target path accepted.
pub const MAX_TARGET_PATH: usize = 4096;
/// Longest segment of a target path (a file name, with room for a sha512 prefix).
pub const MAX_TARGET_SEGMENT: usize = 255 - 129;

/// The top-level role names, which delegations may not use.
pub const TOP_LEVEL: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// Percent-encodes a role name for URLs and file names.
pub fn encode_role(name: &str) -> String {
    utf8_percent_encode(name, ROLE).to_string()
}

/// Checks a delegated role name.
pub fn check_role_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::BadName {
            what: "role",
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character or NUL");
    }
    if TOP_LEVEL.contains(&name) {
        return bad("a top-level role name cannot be delegated");
    }
    if encode_role(name).len() > MAX_ENCODED_ROLE {
        return bad("too long for a file name once encoded");
    }
    Ok(())
}

/// Checks a target path: relative, `/`-separated, no empty, `.` or `..` segment,
/// no control character or backslash, bounded length.
pub fn check_target_path(path: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::BadName {
            what: "target",
            name: path.chars().take(300).collect(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.len() > MAX_TARGET_PATH {
        return bad("longer than 4096 bytes");
    }
    if path.chars().any(char::is_control) {
        return bad("contains a control character or NUL");
    }
    if path.contains('\\') {
        return bad("contains a backslash");
    }
    if path.starts_with('/') {
        return bad("absolute");
    }
    for seg in path.split('/') {
        match seg {
            "" => return bad("empty segment"),
            "." | ".." => return bad("dot segment"),
            s if s.len() > MAX_TARGET_SEGMENT => return bad("a segment is too long"),
            _ => {}
        }
    }
    Ok(())
}

/// Hex sha256 of a target path, for `path_hash_prefixes` and bins.
fn path_digest(path: &str) -> digest::Digest {
    digest::digest(&digest::SHA256, path.as_bytes())
}

/// Whether `role` is trusted for `path` (TUF 5.6.7.2).
pub fn role_matches(role: &DelegatedRole, path: &str) -> bool {
    if let Some(prefixes) = &role.path_hash_prefixes {
        let hex = hex::encode(path_digest(path));
        return prefixes.iter().any(|p| hex.starts_with(p.as_str()));
    }
    if let Some(patterns) = &role.paths {
        return patterns.iter().any(|p| path_matches(p, path));
    }
    false
}

/// Shell-style match where `*` and `?` do not cross `/`: pattern and path must have
/// the same number of segments, each matched with fnmatch rules (`*`, `?`, `[...]`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut tgt = path.split('/');
    loop {
        match (pat.next(), tgt.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) => {
                if !fnmatch(p.as_bytes(), t.as_bytes()) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

fn fnmatch(p: &[u8], t: &[u8]) -> bool {
    // Iterative wildcard match with single-star backtracking.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&p[pi..], t[ti]) {
                        if matched {
                            pi += next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == b'[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches a `[...]` class at the start of `p` against `c`; returns whether it matched
/// and the class length, or `None` when the bracket is not closed (then literal).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    while i < p.len() {
        if p[i] == b']' && i > start {
            return Some((matched != negate, i + 1));
        }
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// Hex digits in a succinct bin name suffix.
pub fn succinct_width(bit_length: u32) -> usize {
    bit_length.div_ceil(4) as usize
}

/// Name of bin `index`.
pub fn succinct_bin_name(s: &SuccinctRoles, index: u64) -> String {
    format!(
        "{}-{:0width$x}",
        s.name_prefix,
        index,
        width = succinct_width(s.bit_length)
    )
}

/// The bin that holds `path` (TAP 15): the first `bit_length` bits of sha256(path).
pub fn succinct_bin_for(s: &SuccinctRoles, path: &str) -> String {
    let d = path_digest(path);
    let b = d.as_ref();
    let first = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let index = if s.bit_length == 0 {
        0
    } else {
        u64::from(first >> (32 - s.bit_length))
    };
    succinct_bin_name(s, index)
}

/// Whether `name` is one of the bins of `s`.
pub fn succinct_has_bin(s: &SuccinctRoles, name: &str) -> bool {
    let Some(suffix) = name
        .strip_prefix(s.name_prefix.as_str())
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    if suffix.len() != succinct_width(s.bit_length)
        || !suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    u64::from_str_radix(suffix, 16).is_ok_and(|i| i < (1u64 << s.bit_length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_python_quote() {
        assert_eq!(encode_role("../delegatedrole"), "..%2Fdelegatedrole");
        assert_eq!(encode_role("/a?#%"), "%2Fa%3F%23%25");
        assert_eq!(encode_role("bins-0a_~."), "bins-0a_~.");
    }

    #[test]
    fn hostile_names_are_refused() {
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            "a\0b",
            "a\\b",
            "./a",
        ] {
            assert!(check_target_path(p).is_err(), "{p:?}");
        }
        assert!(check_target_path(&"a".repeat(200)).is_err());
        assert!(check_target_path(&"a/".repeat(3000)).is_err());
        assert!(check_target_path("pkgs/a-1.0.tar.gz").is_ok());
        for r in ["", "a\0", "targets", "root", &"x".repeat(300)] {
            assert!(check_role_name(r).is_err(), "{r:?}");
        }
        assert!(check_role_name("../delegatedrole").is_ok());
    }

    #[test]
    fn patterns_do_not_cross_slashes() {
        assert!(path_matches("releases/*", "releases/a.tgz"));
        assert!(!path_matches("releases/*", "releases/x/a.tgz"));
        assert!(path_matches("*", "a"));
        assert!(!path_matches("*", "a/b"));
        assert!(path_matches("*/*.txt", "d/f.txt"));
        assert!(path_matches("f?le[0-9].[!x]", "file7.y"));
        assert!(!path_matches("f?le[0-9].[!x]", "file7.x"));
        assert!(path_matches("a*b*c", "aXXbYYc"));
        assert!(!path_matches("a*b*c", "aXXbYY"));
        assert!(path_matches("", ""));
    }

    #[test]
    fn succinct_bins() {
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: 1,
            bit_length: 5,
            name_prefix: "bin".into(),
        };
        assert_eq!(succinct_bin_name(&s, 31), "bin-1f");
        assert!(succinct_has_bin(&s, "bin-1f"));
        assert!(!succinct_has_bin(&s, "bin-20"));
        assert!(!succinct_has_bin(&s, "bin-f"));
        assert!(!succinct_has_bin(&s, "bin-1F"));
        let name = succinct_bin_for(&s, "pkgs/a");
        let d = path_digest("pkgs/a");
        assert_eq!(name, succinct_bin_name(&s, u64::from(d.as_ref()[0] >> 3)));
    }
}
