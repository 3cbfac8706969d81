//! Target files: download streamed to disk, checked by length and every listed hash.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use aws_lc_rs::digest;
use url::Url;

use crate::error::{Error, Result};
use crate::names::check_target_path;
use crate::schema::Hashes;
use crate::updater::{TargetInfo, Updater};

/// Hashes and counts a stream, then checks it against signed metadata.
pub struct TargetVerifier<'a> {
    what: &'a str,
    length: u64,
    hashes: &'a Hashes,
    ctxs: Vec<digest::Context>,
    seen: u64,
}

impl<'a> TargetVerifier<'a> {
    /// A verifier for a file of `length` bytes with `hashes`. Every listed
    /// algorithm must be supported: a hash that cannot be checked is an error.
    pub fn new(what: &'a str, length: u64, hashes: &'a Hashes, file: &str) -> Result<Self> {
        let mut ctxs = Vec::with_capacity(hashes.0.len());
        for (alg, _) in &hashes.0 {
            let d = alg.digest_alg().ok_or_else(|| Error::Integrity {
                what: what.to_owned(),
                file: file.to_owned(),
                reason: format!("unsupported hash algorithm {}", alg.name()),
            })?;
            ctxs.push(digest::Context::new(d));
        }
        Ok(TargetVerifier {
            what,
            length,
            hashes,
            ctxs,
            seen: 0,
        })
    }

    /// Feeds bytes; more than the signed length is an error at once.
    pub fn update(&mut self, buf: &[u8], file: &str) -> Result<()> {
        self.seen += buf.len() as u64;
        if self.seen > self.length {
            return Err(self.integrity(
                file,
                format!("longer than the signed {} bytes", self.length),
            ));
        }
        for c in &mut self.ctxs {
            c.update(buf);
        }
        Ok(())
    }

    /// Checks length and every hash.
    pub fn finish(self, file: &str) -> Result<()> {
        if self.seen != self.length {
            return Err(self.integrity(
                file,
                format!("{} bytes, the signed length is {}", self.seen, self.length),
            ));
        }
        for (ctx, (alg, want)) in self.ctxs.into_iter().zip(&self.hashes.0) {
            if ctx.finish().as_ref() != want.as_slice() {
                return Err(Error::Integrity {
                    what: self.what.to_owned(),
                    file: file.to_owned(),
                    reason: format!("{} differs from the signed one", alg.name()),
                });
            }
        }
        Ok(())
    }

    fn integrity(&self, file: &str, reason: String) -> Error {
        Error::Integrity {
            what: self.what.to_owned(),
            file: file.to_owned(),
            reason,
        }
    }
}

/// Copies `src` into `dst` through a verifier.
pub fn copy_verified(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    v: &mut TargetVerifier<'_>,
    file: &str,
    dst_path: &Path,
) -> Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Fetch {
                    url: file.to_owned(),
                    source: Box::new(e),
                })
            }
        };
        v.update(&buf[..n], file)?;
        dst.write_all(&buf[..n])
            .map_err(|e| Error::io(dst_path, e))?;
    }
}

impl Updater {
    /// The URL of a target: `dir/<hash>.<name>` with consistent snapshots (the first
    /// listed hash, as python-tuf), else the path itself.
    pub fn target_url(&self, info: &TargetInfo) -> Result<Url> {
        check_target_path(&info.path)?;
        let base = self
            .config
            .targets_base
            .as_ref()
            .ok_or_else(|| Error::Config {
                reason: "no targets base URL configured".into(),
            })?;
        let rel = if self.root.signed.consistent_snapshot {
            let hash = info.hashes.first_hex().unwrap_or_default();
            match info.path.rsplit_once('/') {
                Some((dir, name)) => format!("{dir}/{hash}.{name}"),
                None => format!("{hash}.{}", info.path),
            }
        } else {
            info.path.clone()
        };
        let encoded: String = rel
            .split('/')
            .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/");
        base.join(&encoded).map_err(|e| Error::Config {
            reason: format!("cannot join target path to the targets URL: {e}"),
        })
    }

    /// Downloads a target into `dest` (created or replaced), streaming and checking
    /// length and hashes; on failure `dest` is left as it was.
    pub fn download_target(&self, info: &TargetInfo, dest: &Path) -> Result<()> {
        let url = self.target_url(info)?;
        let url_s = url.to_string();
        let mut v = TargetVerifier::new(&info.path, info.length, &info.hashes, &url_s)?;
        let mut src = self.transport.fetch(&url)?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        copy_verified(&mut src, tmp.as_file_mut(), &mut v, &url_s, dest)?;
        v.finish(&url_s)?;
        tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
        Ok(())
    }

    /// Whether `path` already holds this target (length and every hash match).
    pub fn has_target(info: &TargetInfo, path: &Path) -> bool {
        let Ok(mut f) = File::open(path) else {
            return false;
        };
        let file = path.display().to_string();
        let Ok(mut v) = TargetVerifier::new(&info.path, info.length, &info.hashes, &file) else {
            return false;
        };
        copy_verified(&mut f, &mut io::sink(), &mut v, &file, path).is_ok()
            && v.finish(&file).is_ok()
    }
}

/// Characters escaped in a URL path segment.
/// `:` is escaped too, so that no target path can read as a URL with a scheme and make
/// the client fetch from another host.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b':')
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');
