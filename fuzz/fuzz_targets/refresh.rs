//! The whole client workflow on a repository (the `basic` fixture) where the fuzzer
//! replaces one metadata file: parsing and verification never panic, and nothing the
//! fuzzer writes can pass as signed (every accepted state equals the fixture's).
#![no_main]

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tuf_mirror_client::{
    ByteStream, DelegationMode, Error, MemoryStore, TargetsTrust, Transport, Updater,
    UpdaterConfig, UpstreamAnchor, ValidationTime,
};
use url::Url;

macro_rules! fixture {
    ($($name:literal),*) => {
        [$(($name, include_bytes!(concat!("../../tests/fixtures/basic/metadata/", $name)) as &[u8])),*]
    };
}

const FILES: [(&str, &[u8]); 9] = fixture!(
    "1.root.json",
    "timestamp.json",
    "1.snapshot.json",
    "1.targets.json",
    "1.releases.json",
    "1.bin-0.json",
    "1.bin-7.json",
    "1.bin-a.json",
    "1.bin-f.json"
);

struct Repo(HashMap<String, Vec<u8>>);

impl Transport for Repo {
    fn fetch(&self, url: &Url) -> Result<ByteStream, Error> {
        let name = url.path().rsplit('/').next().unwrap_or_default();
        match self.0.get(name) {
            Some(b) => Ok(Box::new(Cursor::new(b.clone()))),
            None => Err(Error::NotFound {
                url: url.to_string(),
            }),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let mut files: HashMap<String, Vec<u8>> = FILES
        .iter()
        .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
        .collect();
    let target = FILES[usize::from(which) % FILES.len()].0;
    files.insert(target.to_owned(), bytes.to_vec());
    // A second root version, to exercise the root chain.
    if which >= 128 {
        files.insert("2.root.json".to_owned(), bytes.to_vec());
    }
    let mut config = UpdaterConfig::new(Url::parse("http://fuzz.invalid/metadata/").unwrap());
    config.mode = if which % 2 == 0 {
        DelegationMode::All
    } else {
        DelegationMode::Lazy
    };
    config.time = ValidationTime::At("2026-06-01T00:00:00Z".parse().unwrap());
    let anchor = FILES[0].1;
    if which & 2 != 0 {
        // Upstream-anchored, the fixture standing for both the mirror and the upstream
        // (the fuzzed file is then both sides' copy).
        config.targets_trust = TargetsTrust::UpstreamAnchored(
            UpstreamAnchor::new(anchor)
                .with_upstream_base(Url::parse("http://fuzz.invalid/upstream/").unwrap()),
        );
    }
    let Ok(mut u) = Updater::init(
        config,
        Arc::new(Repo(files)),
        Arc::new(MemoryStore::default()),
        anchor,
    ) else {
        return;
    };
    if u.refresh().is_ok() {
        for p in [
            "hello.txt",
            "releases/app-1.0.tar.gz",
            "packages/alpha.txt",
            "x/../y",
            "",
        ] {
            let _ = u.target_info(p);
        }
    }
});
