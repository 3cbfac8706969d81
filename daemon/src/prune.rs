//! Retention: superseded metadata versions leave the served tree once they have been
//! superseded for longer than the repository's `retention`.
//!
//! A version is superseded when a newer version of the same role was written, so its
//! age is read from the newer file's modification time: no extra state, and a crash
//! at any point leaves the rule intact. Never removed: the newest version of each role,
//! any version the current snapshot (or the current upstream snapshot) names, and every
//! root version of either chain (clients walk them one by one). Temporary files a crash
//! left behind go after an hour. Target files are not pruned.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Temporary files older than this are leftovers of an interrupted write.
const TEMPORARY_AGE: Duration = Duration::from_secs(3600);

/// What a pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Files removed.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
}

/// Removes, in `dir`, versioned files (`<version>.<name>`) superseded for longer than
/// `retention` at `now`, except root versions and the versions `keep` names (by file
/// name without the version, e.g. `snapshot.json`).
pub fn prune_dir(
    dir: &Path,
    retention: Duration,
    now: SystemTime,
    keep: &HashMap<String, u64>,
) -> io::Result<Pruned> {
    let mut by_name: HashMap<String, Vec<(u64, PathBuf)>> = HashMap::new();
    let mut out = Pruned::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if file.starts_with(".tmp-") {
            let meta = entry.metadata()?;
            if age(&meta, now) > TEMPORARY_AGE {
                remove(&entry.path(), meta.len(), &mut out)?;
            }
            continue;
        }
        let Some((version, name)) = file.split_once('.') else {
            continue;
        };
        let Ok(version) = version.parse::<u64>() else {
            continue;
        };
        if name == "root.json" {
            continue;
        }
        by_name
            .entry(name.to_owned())
            .or_default()
            .push((version, entry.path()));
    }
    for (name, mut versions) in by_name {
        versions.sort_unstable_by_key(|(v, _)| *v);
        let kept: HashSet<u64> = keep.get(&name).copied().into_iter().collect();
        // From the newest down: each version's successor tells when it was superseded.
        let mut successor_age = None;
        for (version, path) in versions.iter().rev() {
            let meta = fs::metadata(path)?;
            let written_age = age(&meta, now);
            if let Some(superseded_for) = successor_age {
                if superseded_for > retention && !kept.contains(version) {
                    remove(path, meta.len(), &mut out)?;
                }
            }
            successor_age = Some(written_age);
        }
    }
    Ok(out)
}

fn age(meta: &fs::Metadata, now: SystemTime) -> Duration {
    meta.modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
        .unwrap_or(Duration::ZERO)
}

fn remove(path: &Path, len: u64, out: &mut Pruned) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {
            out.files += 1;
            out.bytes += len;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn file(dir: &Path, name: &str, written_ago: Duration, now: SystemTime) {
        let p = dir.join(name);
        fs::write(&p, name).unwrap();
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(now - written_ago).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn superseded_versions_go_after_the_retention_and_the_rest_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let now = SystemTime::now();
        // snapshot 1 superseded 30 h ago (2 written then), 2 superseded 1 h ago.
        file(d, "1.snapshot.json", 100 * HOUR, now);
        file(d, "2.snapshot.json", 30 * HOUR, now);
        file(d, "3.snapshot.json", HOUR, now);
        // A role whose current version (5) is older than its retention: stays.
        file(d, "5.bin-a.json", 500 * HOUR, now);
        // A role listed at 7 by the current snapshot, with a newer 8 that a crash left
        // unlisted long ago: 7 stays because the snapshot names it.
        file(d, "7.bin-b.json", 400 * HOUR, now);
        file(d, "8.bin-b.json", 300 * HOUR, now);
        // Root versions never go.
        file(d, "1.root.json", 900 * HOUR, now);
        file(d, "2.root.json", 800 * HOUR, now);
        file(d, "root.json", 800 * HOUR, now);
        file(d, "timestamp.json", Duration::ZERO, now);
        // Leftover temporary files go after an hour.
        file(d, ".tmp-old", 2 * HOUR, now);
        file(d, ".tmp-new", Duration::from_secs(60), now);
        let keep: HashMap<String, u64> = [
            ("snapshot.json".to_owned(), 3),
            ("bin-b.json".to_owned(), 7),
        ]
        .into_iter()
        .collect();
        let p = prune_dir(d, 24 * HOUR, now, &keep).unwrap();
        assert_eq!(p.files, 2, "{:?}", names(d));
        assert_eq!(
            names(d),
            [
                ".tmp-new",
                "1.root.json",
                "2.root.json",
                "2.snapshot.json",
                "3.snapshot.json",
                "5.bin-a.json",
                "7.bin-b.json",
                "8.bin-b.json",
                "root.json",
                "timestamp.json"
            ]
        );
        // A day and a half later, snapshot 2 has been superseded long enough too.
        let later = now + 36 * HOUR;
        prune_dir(d, 24 * HOUR, later, &keep).unwrap();
        assert!(!d.join("2.snapshot.json").exists());
        assert!(d.join("3.snapshot.json").exists());
        // A missing directory is nothing to prune.
        assert_eq!(
            prune_dir(&d.join("none"), HOUR, now, &keep).unwrap(),
            Pruned::default()
        );
    }
}
