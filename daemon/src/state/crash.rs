//! The crash proof for sled: a child process reserves versions in a loop (flushing
//! each before it reports it) and is killed with SIGKILL at random moments, over and
//! over; after every kill the database must open, every role's high-water mark must be
//! at least the last version the child reported, never go back, and carry the content
//! hash bound to that version; every other record must still decode.
//!
//! The child is this test binary itself, running this same test with
//! `TUF_MIRROR_STATE_CRASH_CHILD` naming the database.
//! `TUF_MIRROR_STATE_CRASH_KILLS` sets the number of kills (default 200),
//! `TUF_MIRROR_STATE_CRASH_SEED` the random seed (printed, for a replay).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;

use super::*;
use crate::clock::{Clock, SystemClock};

const CHILD_ENV: &str = "TUF_MIRROR_STATE_CRASH_CHILD";
const REPO: &str = "crash";
const TEST: &str = "state::crash::sigkill_never_loses_a_flushed_reservation";

fn content(role: Role, version: u64) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, format!("{role} {version}").as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The child: reserve timestamp versions (and snapshot and root ones, less often),
/// report each on stdout once `reserve` has returned, and write the other records
/// in between, until killed.
fn child(dir: &Path) -> ! {
    let mut out = std::io::stdout().lock();
    // libtest may have printed the test name without a newline: reports start a line
    // with a marker.
    writeln!(out, "\n@@ start").unwrap();
    let state = State::open(dir).unwrap();
    writeln!(out, "@@ open").unwrap();
    let mut next: HashMap<Role, u64> = HashMap::new();
    for role in Role::ALL {
        let hw = state.high_water(REPO, role).unwrap();
        next.insert(role, hw.map_or(1, |m| m.version + 1));
    }
    let mut i = 0u64;
    loop {
        i += 1;
        let roles: &[Role] = match (i % 3, i % 10) {
            (_, 0) => &Role::ALL,
            (0, _) => &[Role::Snapshot, Role::Timestamp],
            _ => &[Role::Timestamp],
        };
        for &role in roles {
            let v = next[&role];
            if v > 1 && i % 7 == 0 {
                let r = state
                    .reserve(REPO, role, v - 1, content(role, v - 1))
                    .unwrap();
                assert!(r.retry);
            }
            if v > 1 && i % 11 == 0 {
                let e = state
                    .reserve(REPO, role, v - 1, content(role, v))
                    .unwrap_err();
                assert!(matches!(e, StateError::Reserved { .. }), "{e:?}");
            }
            let r = state.reserve(REPO, role, v, content(role, v)).unwrap();
            assert!(!r.retry && r.version == v);
            writeln!(out, "@@ reserved {role} {v}").unwrap();
            next.insert(role, v + 1);
        }
        let now = SystemClock.now();
        state.record_signing(REPO, now).unwrap();
        if i % 4 == 0 {
            let record = SyncRecord::failed(Some(now), now, None, format!("sync {i}"));
            state.append_sync(REPO, &record).unwrap();
        }
        if i % 5 == 0 {
            let published = Published {
                root_version: next[&Role::Root] - 1,
                snapshot_version: next[&Role::Snapshot] - 1,
                timestamp_version: next[&Role::Timestamp] - 1,
                timestamp_expires: now,
                upstream_root_version: i,
                upstream_timestamp_version: i,
                upstream_snapshot_version: i,
                published_at: now,
            };
            state.set_published(REPO, &published).unwrap();
        }
    }
}

/// splitmix64: enough randomness for kill times, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Event {
    Start,
    Open,
    Reserved(Role, u64),
}

fn parse(line: &str) -> Option<Event> {
    let rest = &line[line.find("@@ ")? + 3..];
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words[..] {
        ["start"] => Some(Event::Start),
        ["open"] => Some(Event::Open),
        ["reserved", role, v] => Some(Event::Reserved(role.parse().ok()?, v.parse().ok()?)),
        _ => None,
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn sigkill_never_loses_a_flushed_reservation() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let kills = env_u64("TUF_MIRROR_STATE_CRASH_KILLS").unwrap_or(200);
    let seed = env_u64("TUF_MIRROR_STATE_CRASH_SEED").unwrap_or_else(|| {
        u64::from(std::process::id()) ^ SystemClock.now().as_nanosecond() as u64
    });
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();

    // Per role: the highest version the children reported, and the high-water mark
    // seen at the last reopen.
    let mut reported: HashMap<Role, u64> = HashMap::new();
    let mut seen: HashMap<Role, u64> = HashMap::new();
    let (mut confirmed, mut before_start, mut in_open, mut before_first) = (0u64, 0, 0, 0);
    let mut open_times = Vec::new();

    for k in 0..kills {
        let fail = |what: String| -> ! {
            let kept = tempfile::tempdir().unwrap().keep();
            let _ = Command::new("cp").arg("-a").arg(&db).arg(&kept).status();
            panic!(
                "kill {k} of {kills} (seed {seed}): {what}\nthe database is kept in {}",
                kept.display()
            );
        };
        let spawned = Instant::now();
        let mut child = Command::new(&exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            // Only whole lines: a line cut by the kill is not a report.
            while r.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
                if let Some(e) = parse(&line) {
                    let _ = tx.send(e);
                }
                line.clear();
            }
        });
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });

        // Half of the kills land at any moment of the first 150 ms (process start-up,
        // sled's open and recovery, the first reservations), half within 30 ms of the
        // database being open.
        let mut events = Vec::new();
        if rng.below(2) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(150_000)));
        } else {
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Ok(e) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                let open = matches!(e, Event::Open);
                events.push(e);
                if open {
                    open_times.push(spawned.elapsed());
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        events.extend(rx.try_iter());
        let stderr = errors.join().unwrap();
        if status.signal() != Some(9) {
            fail(format!("the child ended by itself ({status}):\n{stderr}"));
        }

        let (mut begun, mut opened) = (false, false);
        let mut reservations = 0;
        for e in events {
            match e {
                Event::Start => begun = true,
                Event::Open => opened = true,
                Event::Reserved(role, v) => {
                    reservations += 1;
                    let r = reported.entry(role).or_default();
                    *r = (*r).max(v);
                }
            }
        }
        confirmed += reservations;
        before_start += u64::from(!begun);
        in_open += u64::from(begun && !opened);
        before_first += u64::from(opened && reservations == 0);

        let state = match State::open(&db) {
            Ok(s) => s,
            Err(e) => fail(format!(
                "the database does not open: {}",
                crate::service::display_chain(&e)
            )),
        };
        for role in Role::ALL {
            let hw = match state.high_water(REPO, role) {
                Ok(hw) => hw,
                Err(e) => fail(format!("{role}: {}", crate::service::display_chain(&e))),
            };
            let version = hw.map_or(0, |m| m.version);
            let want = reported.get(&role).copied().unwrap_or(0);
            if version < want {
                fail(format!(
                    "{role}: the high-water mark is {version}, the child had reserved {want}"
                ));
            }
            if version < seen.get(&role).copied().unwrap_or(0) {
                fail(format!(
                    "{role}: the high-water mark went back to {version}"
                ));
            }
            if let Some(m) = hw {
                if m.content_sha256 != content(role, m.version) {
                    fail(format!(
                        "{role}: version {version} holds the wrong content hash"
                    ));
                }
            }
            seen.insert(role, version);
        }
        let others = state
            .history(REPO)
            .map(|h| h.len() <= HISTORY)
            .and_then(|_| state.published(REPO))
            .and_then(|_| state.last_signing(REPO));
        if let Err(e) = others {
            fail(crate::service::display_chain(&e));
        }
    }

    let size = State::open(&db).unwrap().db.size_on_disk().unwrap_or(0);
    open_times.sort();
    let median_open = open_times
        .get(open_times.len() / 2)
        .copied()
        .unwrap_or_default();
    println!(
        "state crash check: {kills} SIGKILLs in {:.1} s (seed {seed}); {confirmed} \
         reservations reported and found; kills: {before_start} in process start-up, \
         {in_open} while sled opened the database, {before_first} between open and the first \
         reservation, the rest in the loop; high-water marks {:?}; \
         {size} bytes on disk; median start-up to open {median_open:?}",
        started.elapsed().as_secs_f64(),
        seen,
    );
    assert!(
        confirmed >= kills,
        "too few reservations to prove anything: {confirmed}"
    );
}
