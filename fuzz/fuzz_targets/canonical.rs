//! Canonical JSON of arbitrary text: never panics, and a canonical form is a fixed
//! point (canonicalizing it again gives the same bytes) whenever it is itself JSON,
//! that is when no string in it holds a control character (canonical JSON writes
//! those raw).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tuf_mirror_client::canonical::canonicalize;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = canonicalize(text) {
        let again = std::str::from_utf8(&c).expect("canonical JSON is UTF-8");
        if !c.iter().any(|&b| b < 0x20) {
            assert_eq!(canonicalize(again).expect("canonical JSON parses"), c);
        }
    }
});
