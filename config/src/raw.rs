//! The config file as TOML gives it: strings and numbers, unknown keys refused.
//!
//! Stage one of two: [`crate::Config`] is built from this once, parsing every value
//! into its type and checking the rules between fields.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub server: RawServer,
    #[serde(default)]
    pub repository: Vec<RawRepository>,
}

/// `[server]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub listen: Option<String>,
    pub state_dir: String,
    pub log_format: Option<String>,
}

/// One `[[repository]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRepository {
    pub name: String,
    pub upstream_metadata: String,
    pub upstream_targets: Option<String>,
    pub upstream_root: String,
    pub sync: Option<String>,
    pub resign: Option<String>,
    pub mirror_targets: Option<bool>,
    pub upstream_grace: Option<String>,
    pub retention: Option<String>,
    pub root_keys: Vec<String>,
    pub root_threshold: u64,
    pub snapshot_keys: Vec<String>,
    pub timestamp_keys: Vec<String>,
    #[serde(default)]
    pub expires: RawExpires,
}

/// `[repository.expires]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpires {
    pub root: Option<String>,
    pub snapshot: Option<String>,
    pub timestamp: Option<String>,
}

/// Stage one: TOML text to [`RawConfig`]. The error is the key path (empty for pure
/// syntax errors), the parser's one-line message, and the byte offset it points at.
pub(crate) fn parse(text: &str) -> Result<RawConfig, (String, String, Option<usize>)> {
    let deserializer = toml::de::Deserializer::parse(text).map_err(|e| {
        (
            String::new(),
            e.message().to_string(),
            e.span().map(|s| s.start),
        )
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let inner = e.into_inner();
        (
            path,
            inner.message().to_string(),
            inner.span().map(|s| s.start),
        )
    })
}

/// The 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\nbé = [\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
        // Inside the two bytes of "é": counted from its start.
        assert_eq!(line_column(text, 8), (2, 2));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let text = "[server]\nstate_dir = \"/x\"\nlisten_on = \"y\"\n";
        let (path, message, offset) = parse(text).unwrap_err();
        assert_eq!(path, "server.listen_on");
        assert!(message.contains("unknown field `listen_on`"), "{message}");
        assert_eq!(line_column(text, offset.unwrap()), (3, 1));
    }
}
