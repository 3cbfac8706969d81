//! Reading a private key file: a regular file, not accessible to group or
//! others, of bounded size, read into a buffer that is zeroized when dropped.
//!
//! Symbolic links are followed. Kubernetes secret volumes are links into a
//! `..data` directory, and operators rotate a key by re-pointing a link; a
//! link's own mode means nothing on Linux. What is checked is the file the
//! path resolves to, on the descriptor that is then read, so the file checked
//! is the file read.

use crate::KeyError;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// The largest key file read: an RSA 8192 PKCS#8 PEM is about 6.5 KiB.
pub(crate) const MAX_KEY_FILE_LEN: usize = 64 * 1024;

/// Permission bits that must be clear on a key file: any access by group or others.
const GROUP_OTHER: u32 = 0o077;

/// Reads the key file `path` after checking its type and mode.
pub(crate) fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let io = |action: &'static str| {
        move |source| KeyError::Io {
            path: path.to_owned(),
            action,
            source,
        }
    };
    // Check the type before opening: opening a FIFO for reading would block.
    let before = std::fs::metadata(path).map_err(io("open"))?;
    if !before.is_file() {
        return Err(KeyError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    let mut file = File::open(path).map_err(io("open"))?;
    let meta = file.metadata().map_err(io("stat"))?;
    if !meta.is_file() || (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
        return Err(KeyError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & GROUP_OTHER != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    // One allocation of the final size: growing a Vec would leave copies behind.
    let mut buffer = Zeroizing::new(vec![0u8; MAX_KEY_FILE_LEN + 1]);
    let mut len = 0;
    while len < buffer.len() {
        match file.read(&mut buffer[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io("read")(e)),
        }
    }
    if len > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
            max: MAX_KEY_FILE_LEN,
        });
    }
    buffer.truncate(len);
    Ok(buffer)
}
