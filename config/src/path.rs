//! Absolute file-system paths, as every path in the config must be.
//!
//! The daemon runs as a service whose working directory is not the operator's,
//! so relative paths are refused rather than resolved against something.

use std::path::{Component, Path, PathBuf};

/// Checks that `text` is an absolute path without `..` and returns it normalised
/// (repeated and trailing slashes and `.` components removed), so that two spellings of
/// one path compare equal.
pub(crate) fn absolute(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("empty path; write an absolute path".into());
    }
    if text.contains('\0') {
        return Err("path contains a NUL byte".into());
    }
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(format!(
            "{text:?} is not an absolute path (the service's working directory is not yours)"
        ));
    }
    normalise(path)
}

/// Normalises an absolute path; refuses `..` because resolving it lexically can be
/// wrong across symbolic links, and without resolving it two names of one directory
/// would not compare equal.
pub(crate) fn normalise(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                return Err(format!(
                    "{:?} contains \"..\"; write the path without it",
                    path
                ))
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises_absolute_paths() {
        assert_eq!(absolute("/var/lib/x/"), Ok(PathBuf::from("/var/lib/x")));
        assert_eq!(absolute("//var/./lib//x"), Ok(PathBuf::from("/var/lib/x")));
        assert_eq!(absolute("/"), Ok(PathBuf::from("/")));
    }

    #[test]
    fn refuses_relative_empty_and_parent_paths() {
        assert!(absolute("var/lib")
            .unwrap_err()
            .contains("not an absolute path"));
        assert!(absolute("./x").is_err());
        assert!(absolute("").unwrap_err().contains("empty"));
        assert!(absolute("/var/../etc").unwrap_err().contains(".."));
        assert!(absolute("/a\0b").unwrap_err().contains("NUL"));
    }
}
