//! Canonical JSON (OLPC / securesystemslib flavour) computed from the JSON text as
//! received, without going through typed structs.
//!
//! TUF signatures are over the canonical form of the `signed` object. Re-serializing a
//! parsed struct drops every field the struct does not model, so the check must run on
//! the text itself. The rules, as python-tuf and tough sign:
//! objects with members sorted by the UTF-8 bytes of their decoded keys, no
//! whitespace, strings with only `"` and `\` escaped (everything else as raw UTF-8),
//! integers only. Duplicate keys make the input ambiguous and are refused.

/// Why a text has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// Not JSON.
    #[error("invalid JSON at byte {0}")]
    Syntax(usize),
    /// A number with a fraction or exponent: canonical JSON has integers only.
    #[error("non-integer number at byte {0}")]
    Float(usize),
    /// An object has the same key twice.
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    /// Nested deeper than the limit.
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Bytes that end a run of plain string bytes: `"`, `\\` and control characters.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Nesting limit (serde_json's own default is 128 too).
pub const MAX_DEPTH: usize = 128;

/// Canonical form of the JSON value in `text`.
pub fn canonicalize(text: &str) -> Result<Vec<u8>, CanonicalError> {
    Ok(run(text)?.0)
}

/// A member of the top-level object of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopMember {
    /// The decoded key.
    pub key: String,
    /// Where its value is in the input text.
    pub input: std::ops::Range<usize>,
    /// Where its canonical form is in the output.
    pub output: std::ops::Range<usize>,
}

/// Canonical form of a document whose top level is an object, with where each of its
/// members' values is in the input and in the output: one pass gives both the text to
/// parse and the bytes a signature covers.
pub fn canonicalize_object(text: &str) -> Result<(Vec<u8>, Vec<TopMember>), CanonicalError> {
    if !text.trim_start().starts_with('{') {
        return Err(CanonicalError::Syntax(0));
    }
    run(text)
}

fn run(text: &str) -> Result<(Vec<u8>, Vec<TopMember>), CanonicalError> {
    let mut c = Canon {
        s: text.as_bytes(),
        pos: 0,
        out: Vec::with_capacity(text.len()),
        keys: Vec::new(),
        members: Vec::new(),
        scratch: Vec::new(),
        top: Vec::new(),
    };
    c.ws();
    c.value(0)?;
    c.ws();
    if c.pos != c.s.len() {
        return Err(CanonicalError::Syntax(c.pos));
    }
    Ok((c.out, c.top))
}

/// One object member: its decoded key (a range of `keys`), its output span, and
/// where its value is in the input and, relative to the span, in the output.
#[derive(Clone, Copy)]
struct Member {
    key: (usize, usize),
    span: (usize, usize),
    value_in: (usize, usize),
    value_rel: (usize, usize),
}

struct Canon<'a> {
    s: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    /// Decoded keys of the objects being built (a stack, shared by nesting levels).
    keys: Vec<u8>,
    /// Members of the objects being built (a stack).
    members: Vec<Member>,
    scratch: Vec<u8>,
    /// Members of the top-level object, once it is complete.
    top: Vec<TopMember>,
}

impl Canon<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), CanonicalError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(CanonicalError::Syntax(self.pos))
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), CanonicalError> {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            self.out.extend_from_slice(lit);
            Ok(())
        } else {
            Err(CanonicalError::Syntax(self.pos))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), CanonicalError> {
        if depth >= MAX_DEPTH {
            return Err(CanonicalError::TooDeep);
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let start = self.out.len();
                self.string(None)?;
                debug_assert!(self.out.len() > start);
                Ok(())
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(CanonicalError::Syntax(self.pos)),
        }
    }

    fn number(&mut self) -> Result<(), CanonicalError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            _ => return Err(CanonicalError::Syntax(self.pos)),
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(CanonicalError::Float(start));
        }
        let body = &self.s[digits..self.pos];
        // `-0` is the integer 0.
        if negative && body != b"0" {
            self.out.push(b'-');
        }
        self.out.extend_from_slice(body);
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), CanonicalError> {
        self.expect(b'[')?;
        self.out.push(b'[');
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.out.push(b',');
                }
                Some(b']') => {
                    self.pos += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(CanonicalError::Syntax(self.pos)),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), CanonicalError> {
        self.expect(b'{')?;
        self.out.push(b'{');
        let body_start = self.out.len();
        let first_member = self.members.len();
        let keys_mark = self.keys.len();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.out.push(b'}');
            return Ok(());
        }
        loop {
            self.ws();
            let span_start = self.out.len();
            let key_start = self.keys.len();
            self.string(Some(()))?;
            let key = (key_start, self.keys.len());
            self.ws();
            self.expect(b':')?;
            self.out.push(b':');
            self.ws();
            let (in_start, out_start) = (self.pos, self.out.len());
            self.value(depth + 1)?;
            self.members.push(Member {
                key,
                span: (span_start, self.out.len()),
                value_in: (in_start, self.pos),
                value_rel: (out_start - span_start, self.out.len() - span_start),
            });
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.out.push(b',');
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(CanonicalError::Syntax(self.pos)),
            }
        }
        self.finish_object(body_start, first_member)?;
        if depth == 0 {
            self.top = self.members[first_member..]
                .iter()
                .map(|m| TopMember {
                    key: String::from_utf8_lossy(&self.keys[m.key.0..m.key.1]).into_owned(),
                    input: m.value_in.0..m.value_in.1,
                    output: m.span.0 + m.value_rel.0..m.span.0 + m.value_rel.1,
                })
                .collect();
        }
        self.members.truncate(first_member);
        self.keys.truncate(keys_mark);
        self.out.push(b'}');
        Ok(())
    }

    /// Sorts the members written since `body_start` by key, refusing duplicates.
    fn finish_object(&mut self, body_start: usize, first: usize) -> Result<(), CanonicalError> {
        let keys = &self.keys;
        let members = &mut self.members[first..];
        let key_of = |m: &Member| &keys[m.key.0..m.key.1];
        let sorted = members.windows(2).all(|w| key_of(&w[0]) < key_of(&w[1]));
        if sorted {
            return Ok(());
        }
        members.sort_by(|a, b| key_of(a).cmp(key_of(b)));
        if let Some(w) = members.windows(2).find(|w| key_of(&w[0]) == key_of(&w[1])) {
            return Err(CanonicalError::DuplicateKey(
                String::from_utf8_lossy(key_of(&w[0])).into_owned(),
            ));
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.out[body_start..]);
        self.out.truncate(body_start);
        for (i, m) in members.iter_mut().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let (a, b) = (m.span.0 - body_start, m.span.1 - body_start);
            let start = self.out.len();
            self.out.extend_from_slice(&self.scratch[a..b]);
            m.span = (start, self.out.len());
        }
        Ok(())
    }

    /// Parses a string, writing its canonical form to `out` and, for keys, its
    /// decoded bytes to `keys`.
    fn string(&mut self, key: Option<()>) -> Result<(), CanonicalError> {
        self.expect(b'"')?;
        self.out.push(b'"');
        let is_key = key.is_some();
        loop {
            // Fast path: copy a run of plain bytes.
            let run_start = self.pos;
            let rest = &self.s[run_start..];
            let n = rest
                .iter()
                .position(|&b| STRING_STOP[usize::from(b)])
                .unwrap_or(rest.len());
            self.pos += n;
            let run = &rest[..n];
            self.out.extend_from_slice(run);
            if is_key {
                self.keys.extend_from_slice(run);
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.out.push(b'"');
                    return Ok(());
                }
                Some(b'\\') => {
                    let c = self.escape()?;
                    let mut buf = [0u8; 4];
                    let bytes = c.encode_utf8(&mut buf).as_bytes();
                    if c == '"' || c == '\\' {
                        self.out.push(b'\\');
                    }
                    self.out.extend_from_slice(bytes);
                    if is_key {
                        self.keys.extend_from_slice(bytes);
                    }
                }
                _ => return Err(CanonicalError::Syntax(self.pos)),
            }
        }
    }

    fn escape(&mut self) -> Result<char, CanonicalError> {
        let at = self.pos;
        self.pos += 1; // the backslash
        let Some(b) = self.peek() else {
            return Err(CanonicalError::Syntax(at));
        };
        self.pos += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                if (0xD800..0xDC00).contains(&hi) {
                    if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                        return Err(CanonicalError::Syntax(at));
                    }
                    self.pos += 2;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(CanonicalError::Syntax(at));
                    }
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    char::from_u32(c).ok_or(CanonicalError::Syntax(at))?
                } else {
                    char::from_u32(hi).ok_or(CanonicalError::Syntax(at))?
                }
            }
            _ => return Err(CanonicalError::Syntax(at)),
        })
    }

    fn hex4(&mut self) -> Result<u32, CanonicalError> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or(CanonicalError::Syntax(self.pos))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or(CanonicalError::Syntax(self.pos))?;
            v = v * 16 + n;
        }
        self.pos += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonicalize(s).unwrap()).unwrap()
    }

    fn olpc(s: &str) -> String {
        use serde::Serialize;
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        let mut buf = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
        v.serialize(&mut ser).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn sorts_strips_and_escapes_like_olpc_cjson() {
        let cases = [
            r#"{ "b": 1, "a": [true, false, null, -3, 0], "c": {"z": "x", "y": "\u00e9\n\"\\\/"} }"#,
            r#"{"keyval": {"public": "ab"}, "keytype": "ed25519", "scheme": "ed25519", "x-extra": {"nested": [1, {"b":2,"a":1}]}}"#,
            r#"{"\u0041": 1, "B": 2, "a": 3, "é": 4, "e": 5}"#,
            r#"["\ud83d\ude00", "tab\there", "ctl\u0001"]"#,
            "{}",
            "[]",
            r#"{"a":{},"b":[]}"#,
        ];
        for c in cases {
            assert_eq!(canon(c), olpc(c), "{c}");
        }
    }

    #[test]
    fn refuses_floats_duplicates_bad_syntax_and_depth() {
        assert!(matches!(canonicalize("1.5"), Err(CanonicalError::Float(_))));
        assert!(matches!(
            canonicalize("[1e3]"),
            Err(CanonicalError::Float(_))
        ));
        assert!(matches!(
            canonicalize(r#"{"b":1,"a":2,"b":3}"#),
            Err(CanonicalError::DuplicateKey(k)) if k == "b"
        ));
        assert!(matches!(
            canonicalize(r#"{"a":1,"\u0061":2}"#),
            Err(CanonicalError::DuplicateKey(_))
        ));
        for bad in [
            "{",
            r#"{"a"}"#,
            "[1,]",
            "01",
            "\"\\x\"",
            "\"\u{1}\"",
            "tru",
            "1 2",
            "\"\\ud800\"",
        ] {
            assert!(canonicalize(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(canonicalize(&deep), Err(CanonicalError::TooDeep));
    }

    #[test]
    fn top_level_members_point_into_input_and_output() {
        for text in [
            r#"{"signed": {"b": 1, "a": [2]}, "signatures": [ {"keyid": "k"} ]}"#,
            r#"{ "signatures": [], "signed": {"x": "y"} }"#,
        ] {
            let (out, top) = canonicalize_object(text).unwrap();
            assert_eq!(out, canonicalize(text).unwrap());
            let signed = top.iter().find(|m| m.key == "signed").unwrap();
            assert_eq!(
                &out[signed.output.clone()],
                canonicalize(&text[signed.input.clone()])
                    .unwrap()
                    .as_slice()
            );
        }
        assert!(canonicalize_object("[]").is_err());
    }

    #[test]
    fn minus_zero_is_zero() {
        assert_eq!(canon("[-0, -10]"), "[0,-10]");
    }
}
