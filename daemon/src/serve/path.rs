//! Request paths to files of the published tree (DESIGN.md section 5).
//!
//! The path is taken as the client sent it, before any decoding, and refused rather
//! than rewritten when it could name anything outside `<published>/<repo>/<area>/`:
//! an empty, `.` or `..` segment (plain or percent-encoded), an encoded `/` inside a
//! target path segment, NUL or any control character, a backslash, a hidden file
//! (the publisher's temporary files start with `.`).

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use tuf_mirror_client::names::{check_target_path, encode_role};

/// The three directories of a repository's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Area {
    /// `metadata/`: the mirror's metadata.
    Metadata,
    /// `targets/`: target files.
    Targets,
    /// `upstream/`: the upstream's root chain, timestamp and snapshot.
    Upstream,
}

impl Area {
    pub(super) fn dir(self) -> &'static str {
        match self {
            Area::Metadata => "metadata",
            Area::Targets => "targets",
            Area::Upstream => "upstream",
        }
    }
}

/// How long caches may keep a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// A versioned name or a target (its name holds its hash): the bytes never change.
    Immutable,
    /// `timestamp.json` and `root.json`, replaced in place by every publish.
    Revalidate,
}

/// A request for one file of a repository's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileRequest {
    /// The repository, a checked directory name.
    pub repo: String,
    /// Which directory of the repository.
    pub area: Area,
    /// `/`-separated path under the area directory, every segment checked.
    pub rel: String,
    /// tough's consistent target form mapped to the spec's, tried when `rel` is not there.
    pub alt: Option<String>,
    /// Cache policy.
    pub freshness: Freshness,
}

/// Why a path maps to no file (for the debug log; clients get a plain 404).
pub(super) type Refusal = &'static str;

/// Longest file name on the file systems the tree lives on.
const MAX_NAME: usize = 255;
/// Length of a hex sha256.
const SHA256_HEX: usize = 64;

/// Whether `name` is a repository name: `[a-z0-9][a-z0-9._-]{0,62}`.
pub(super) fn is_repo_name(name: &str) -> bool {
    let b = name.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// Maps a raw request path (`Uri::path()`, still percent-encoded) to a file.
pub(super) fn resolve(raw: &str) -> Result<FileRequest, Refusal> {
    let rest = raw.strip_prefix('/').ok_or("not absolute")?;
    let (repo, rest) = rest.split_once('/').ok_or("no area")?;
    if !is_repo_name(repo) {
        return Err("not a repository name");
    }
    let (area, rest) = rest.split_once('/').ok_or("no file")?;
    let area = match area {
        "metadata" => Area::Metadata,
        "targets" => Area::Targets,
        "upstream" => Area::Upstream,
        _ => return Err("unknown area"),
    };
    let (rel, alt, freshness) = match area {
        Area::Metadata | Area::Upstream => {
            let (name, freshness) = metadata_name(rest)?;
            (name, None, freshness)
        }
        Area::Targets => {
            let (rel, alt) = target_path(rest)?;
            (rel, alt, Freshness::Immutable)
        }
    };
    Ok(FileRequest {
        repo: repo.to_owned(),
        area,
        rel,
        alt,
        freshness,
    })
}

fn decode(segment: &str) -> Result<Cow<'_, str>, Refusal> {
    percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| "not UTF-8 once decoded")
}

/// A metadata file name: one segment, `timestamp.json`, `root.json` or
/// `<version>.<role>.json`. Clients percent-encode role names in different ways
/// (python-tuf encodes all but `A-Za-z0-9_.-~`, tuf-js leaves `!*'()` alone): the name
/// is decoded, then encoded again the one way the publisher names files
/// ([`encode_role`]), so `1.a%2Fb.json` is the file literally named `1.a%2Fb.json`,
/// whichever encoding the client chose. The result has no `/` by construction.
fn metadata_name(segment: &str) -> Result<(String, Freshness), Refusal> {
    if segment.contains('/') {
        return Err("metadata names are one segment");
    }
    let decoded = decode(segment)?;
    if decoded.starts_with('.') {
        return Err("dot segment or hidden file");
    }
    if decoded.chars().any(char::is_control) {
        return Err("control character");
    }
    let name = encode_role(&decoded);
    if name.len() > MAX_NAME {
        return Err("name too long");
    }
    let stem = name.strip_suffix(".json").ok_or("not a .json file")?;
    let freshness = match stem {
        "timestamp" | "root" => Freshness::Revalidate,
        _ => match stem.split_once('.') {
            Some((version, role))
                if !version.is_empty()
                    && version.bytes().all(|c| c.is_ascii_digit())
                    && !role.is_empty() =>
            {
                Freshness::Immutable
            }
            _ => return Err("not a published metadata name"),
        },
    };
    Ok((name, freshness))
}

/// A target path, each segment decoded on its own (an encoded `/` inside a segment is
/// refused, never turned into a separator), then checked like the publisher checks
/// upstream target paths ([`check_target_path`]). Also returns tough's consistent form
/// mapped to the spec's: tough asks for `<sha256>.<dir>/<name>` where the spec and the
/// tree have `<dir>/<sha256>.<name>`.
fn target_path(rest: &str) -> Result<(String, Option<String>), Refusal> {
    let mut segments = Vec::new();
    for raw in rest.split('/') {
        let seg = decode(raw)?;
        if seg.contains('/') {
            return Err("encoded slash in a target path");
        }
        segments.push(seg);
    }
    let rel = segments.join("/");
    check_target_path(&rel).map_err(|_| "not a valid target path")?;
    if segments.last().is_some_and(|s| s.starts_with('.')) {
        return Err("hidden file");
    }
    Ok((rel, tough_form(&segments)))
}

/// `<64 hex>.<dir>/.../<name>` -> `<dir>/.../<64 hex>.<name>`, for targets in a directory.
fn tough_form(segments: &[Cow<'_, str>]) -> Option<String> {
    let (first, more) = segments.split_first()?;
    let (name, dirs) = more.split_last()?;
    let hash = first.get(..SHA256_HEX)?;
    let dir0 = first.get(SHA256_HEX..)?.strip_prefix('.')?;
    if !hash
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return None;
    }
    let mut out = String::with_capacity(first.len() + name.len() + 64);
    out.push_str(dir0);
    for d in dirs {
        out.push('/');
        out.push_str(d);
    }
    out.push('/');
    out.push_str(hash);
    out.push('.');
    out.push_str(name);
    check_target_path(&out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "7ac4b6a8a6cbb3e1c3c70fa0b1e3d0d4d8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3";

    fn ok(raw: &str) -> FileRequest {
        resolve(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn repository_names() {
        for good in ["r", "0", "a.b_c-d", &"a".repeat(63)] {
            assert!(is_repo_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-a",
            "_a",
            ".a",
            "A",
            "a/b",
            "a%2e",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_repo_name(bad), "{bad}");
        }
    }

    #[test]
    fn metadata_names_and_freshness() {
        let r = ok("/r/metadata/timestamp.json");
        assert_eq!((r.repo.as_str(), r.area), ("r", Area::Metadata));
        assert_eq!(
            (r.rel.as_str(), r.freshness),
            ("timestamp.json", Freshness::Revalidate)
        );
        assert_eq!(ok("/r/metadata/root.json").freshness, Freshness::Revalidate);
        for v in [
            "/r/metadata/12.snapshot.json",
            "/r/metadata/3.targets.json",
            "/r/upstream/1.root.json",
        ] {
            assert_eq!(ok(v).freshness, Freshness::Immutable, "{v}");
        }
        let u = ok("/r/upstream/timestamp.json");
        assert_eq!(
            (u.area, u.freshness),
            (Area::Upstream, Freshness::Revalidate)
        );
        for bad in [
            "/r/metadata/snapshot.json",
            "/r/metadata/x.targets.json",
            "/r/metadata/1..json",
            "/r/metadata/.json",
            "/r/metadata/1.targets.txt",
            "/r/metadata/",
            "/r/metadata/a/1.targets.json",
            "/r/metadata/.tmp-abc",
            "/r/metadata/%2Etmp-abc.json",
        ] {
            assert!(resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn role_names_map_to_the_published_encoding() {
        // python-tuf's encoding, tuf-js's (leaves `*` alone), and a lower-case escape.
        assert_eq!(ok("/r/metadata/1.a%2Fb.json").rel, "1.a%2Fb.json");
        assert_eq!(ok("/r/metadata/1.a%2fb.json").rel, "1.a%2Fb.json");
        assert_eq!(ok("/r/metadata/1.a*b.json").rel, "1.a%2Ab.json");
        assert_eq!(ok("/r/metadata/1.a%2Ab.json").rel, "1.a%2Ab.json");
        assert_eq!(
            ok("/r/metadata/2.%C3%A9t%C3%A9.json").rel,
            "2.%C3%A9t%C3%A9.json"
        );
        // A decoded `..` inside a role name stays inside one file name.
        assert_eq!(ok("/r/metadata/1.%2E%2E%2Fx.json").rel, "1...%2Fx.json");
    }

    #[test]
    fn targets_in_both_consistent_forms() {
        let spec = ok(&format!("/r/targets/releases/{H}.app-1.0.tar.gz"));
        assert_eq!(spec.rel, format!("releases/{H}.app-1.0.tar.gz"));
        assert_eq!(spec.freshness, Freshness::Immutable);
        assert_eq!(spec.alt, None);

        let tough = ok(&format!("/r/targets/{H}.releases/app-1.0.tar.gz"));
        assert_eq!(tough.rel, format!("{H}.releases/app-1.0.tar.gz"));
        assert_eq!(
            tough.alt.as_deref(),
            Some(&*format!("releases/{H}.app-1.0.tar.gz"))
        );
        let deep = ok(&format!("/r/targets/{H}.a/b/c/d.bin"));
        assert_eq!(deep.alt.as_deref(), Some(&*format!("a/b/c/{H}.d.bin")));

        // No directory: both forms are the same name.
        let top = ok(&format!("/r/targets/{H}.README.txt"));
        assert_eq!((top.rel, top.alt), (format!("{H}.README.txt"), None));

        // Spaces and other escapes are decoded, since clients encode them.
        assert_eq!(ok("/r/targets/a%20b/x").rel, "a b/x");
        // Upper-case hex is not what tough sends.
        let upper = H.to_uppercase();
        assert_eq!(ok(&format!("/r/targets/{upper}.d/x")).alt, None);
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "/r/metadata/..%2F..%2Fetc%2Fpasswd",
            "/r/metadata/..",
            "/r/metadata/%2E%2E",
            "/r/metadata/root.json%00",
            "/r/metadata/%00",
            "/r/targets/../../x",
            "/r/targets/a/../../x",
            "/r/targets/%2E%2E/x",
            "/r/targets/a%2F..%2F..%2Fx",
            "/r/targets/%2Fetc/passwd",
            "/r/targets//etc/passwd",
            "/r/targets/",
            "/r/targets/a/",
            "/r/targets/./a",
            "/r/targets/a%00b",
            "/r/targets/a%5Cb",
            "/r/targets/a/.tmp-1",
            "/r/targets/%FF",
            "/../r/metadata/root.json",
            "/r/../metadata/root.json",
            "//r/metadata/root.json",
            "/r/state/x",
            "/r/metadata",
            "/r",
            "/",
            "",
        ] {
            assert!(
                resolve(bad).is_err(),
                "{bad} was accepted: {:?}",
                resolve(bad)
            );
        }
        // A tough-form request cannot smuggle `..` through the mapping.
        let t = resolve(&format!("/r/targets/{H}.%2E%2E/x"));
        assert!(t.map(|r| r.alt.is_none()).unwrap_or(true));
    }
}
