//! JSON encodings: OLPC canonical JSON for signing, and the serializations metadata is served in.
//!
//! Canonical bytes come from the `olpc-cjson` crate, deliberately not from the engine's own
//! canonicalizer, so tests built on this crate cross-check the two.

use std::fmt::Write as _;

use olpc_cjson::CanonicalFormatter;
use serde::Serialize as _;
use serde_json::Value;

/// How metadata files are serialized when published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// As python-tuf writes metadata: `json.dumps(indent=1, separators=(",", ": "),
    /// sort_keys=True)`, non-ASCII escaped as `\uXXXX`, no trailing newline. Deliberately not
    /// canonical, so a verifier must canonicalize the `signed` value itself.
    #[default]
    Pretty,
    /// `serde_json::to_vec`: no whitespace, keys in the order the `Value` holds them.
    Compact,
    /// OLPC canonical JSON of the whole document.
    Canonical,
}

impl OutputFormat {
    /// Serializes `value` in this format.
    pub fn encode(self, value: &Value) -> Vec<u8> {
        match self {
            OutputFormat::Pretty => pretty(value),
            OutputFormat::Compact => {
                serde_json::to_vec(value).expect("a serde_json::Value always serializes")
            }
            OutputFormat::Canonical => canonical(value),
        }
    }
}

/// OLPC canonical JSON of `value`, as `olpc-cjson` produces it (the bytes TUF signs).
///
/// # Panics
/// If `value` holds a float, which canonical JSON cannot represent.
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .expect("canonical JSON of a value without floats");
    out
}

/// python-tuf's pretty serialization of `value` (see [`OutputFormat::Pretty`]).
pub fn pretty(value: &Value) -> Vec<u8> {
    let mut out = String::new();
    write_pretty(&mut out, value, 0);
    out.into_bytes()
}

fn indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push(' ');
    }
}

fn write_pretty(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            // Sort here rather than rely on serde_json's map type: the `preserve_order`
            // feature may be switched on elsewhere in the dependency graph.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_string(out, key);
                out.push_str(": ");
                write_pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        Value::String(s) => write_string(out, s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

/// A JSON string as Python's `json` module writes it with `ensure_ascii=True`.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_matches_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps({"b": [1, {}], "a": "é\n\"", "c": [],
        //   "d": {"z": None, "y": True}}, indent=1, separators=(",", ": "), sort_keys=True))'
        let v = json!({"b": [1, {}], "a": "é\n\"", "c": [], "d": {"z": null, "y": true}});
        let expected = "{\n \"a\": \"\\u00e9\\n\\\"\",\n \"b\": [\n  1,\n  {}\n ],\n \"c\": [],\n \
                        \"d\": {\n  \"y\": true,\n  \"z\": null\n }\n}";
        assert_eq!(String::from_utf8(pretty(&v)).unwrap(), expected);
    }

    #[test]
    fn astral_characters_are_surrogate_pairs() {
        assert_eq!(
            pretty(&json!("\u{1F600}\u{7f}")),
            br#""\ud83d\ude00\u007f""#
        );
    }

    #[test]
    fn canonical_sorts_and_compacts() {
        let v = json!({"b": 1, "a": {"d": "x\\y\"", "c": [true, null]}});
        assert_eq!(
            canonical(&v),
            br#"{"a":{"c":[true,null],"d":"x\\y\""},"b":1}"#.to_vec()
        );
    }
}
