//! Whole-file tests: every rule, and that each error names file, key and reason.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::TimeZone;

use crate::*;

const FILE: &str = "/etc/tuf-mirror/config.toml";
const DAY: u64 = 86_400;

/// 2026-01-01T00:00:00Z, a Thursday.
fn now() -> SystemTime {
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .unwrap()
        .into()
}

fn repo(name: &str, upstream: &str) -> String {
    format!(
        r#"
[[repository]]
name = "{name}"
upstream_metadata = "{upstream}"
upstream_targets = "{upstream}/targets"
upstream_root = "/etc/tuf-mirror/{name}/root.json"
root_keys = ["file:/keys/{name}-root.pem"]
root_threshold = 1
snapshot_keys = ["file:/keys/{name}-snapshot.pem"]
timestamp_keys = ["file:/keys/{name}-timestamp.pem"]
"#
    )
}

fn base() -> String {
    format!(
        "[server]\nstate_dir = \"/var/lib/tuf-mirror\"\n{}",
        repo("one", "https://up.example/one")
    )
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_at_time(text, FILE, now())
}

fn err(text: &str) -> ConfigError {
    load(text).unwrap_err()
}

/// Asserts the one-line message names the file, the key and contains `reason`.
fn assert_names(e: &ConfigError, key: &str, reason: &str) {
    let line = e.to_string();
    assert!(!line.contains('\n'), "not one line: {line}");
    assert!(line.starts_with(FILE), "no file: {line}");
    assert_eq!(e.key(), Some(key), "{line}");
    assert!(line.contains(&format!(": {key}: ")), "no key {key}: {line}");
    assert!(line.contains(reason), "no reason {reason:?}: {line}");
}

fn with(lines: &str) -> String {
    // Appends keys to the (last) repository table.
    format!("{}{lines}\n", base())
}

#[test]
fn the_example_config_parses() {
    let text = include_str!("../example.toml");
    let config = Config::from_str_at_time(text, "config/example.toml", now()).unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        config.server.state_dir,
        PathBuf::from("/var/lib/tuf-mirror")
    );
    let dir = config.repository("bottlerocket").unwrap();
    assert_eq!(
        dir.upstream_metadata,
        Source::Dir("/srv/tuf-import/bottlerocket/metadata".into())
    );
    assert_eq!(
        dir.upstream_targets,
        Some(Source::Dir("/srv/tuf-import/bottlerocket/targets".into()))
    );
    assert_eq!(dir.upstream_grace, Some(Duration::from_secs(30 * DAY)));
    assert_eq!(dir.root_threshold.get(), 2);
    assert!(matches!(dir.root_keys[0], KeyUri::Pkcs11(_)));
    let http = config.repository("sigstore").unwrap();
    assert!(matches!(&http.upstream_metadata, Source::Http(u) if u.scheme() == "https"));
    assert!(!http.mirror_targets);
    assert_eq!(http.upstream_targets, None);
    assert_eq!(http.upstream_grace, None);
    assert!(matches!(http.timestamp_keys[0], KeyUri::AwsKms(_)));
    assert_eq!(http.expires.timestamp, Duration::from_secs(2 * 3600));
    assert_eq!(http.expires.snapshot, DEFAULT_SNAPSHOT_EXPIRY);
    // Only the deliberate grace is warned about.
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert_eq!(config.warnings[0].key, "repository[0].upstream_grace");
}

#[test]
fn defaults_of_a_minimal_config() {
    let config = load(&base()).unwrap();
    assert_eq!(config.server.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(config.server.log_format, LogFormat::Text);
    let r = &config.repositories[0];
    assert!(r.mirror_targets);
    assert_eq!(r.upstream_grace, None);
    assert_eq!(r.sync.expression(), DEFAULT_SYNC);
    assert_eq!(r.resign.expression(), DEFAULT_RESIGN);
    assert_eq!(r.expires.root, DEFAULT_ROOT_EXPIRY);
    assert_eq!(r.expires.snapshot, DEFAULT_SNAPSHOT_EXPIRY);
    assert_eq!(r.expires.timestamp, DEFAULT_TIMESTAMP_EXPIRY);
    assert_eq!(r.retention, DEFAULT_RETENTION);
    assert_eq!(r.upstream_metadata.to_string(), "https://up.example/one/");
    assert!(config.warnings.is_empty());
}

#[test]
fn unknown_keys_are_refused_everywhere() {
    let top = err(&base().replace("[server]", "verbose = true\n[server]"));
    assert_names(&top, "verbose", "unknown field `verbose`");
    let server = err(&base().replace("[server]", "[server]\nport = 80"));
    assert_names(&server, "server.port", "unknown field `port`");
    assert_eq!(server.line_column(), Some((2, 1)));
    let repo = err(&with("mirror_target = false"));
    assert_names(
        &repo,
        "repository[0].mirror_target",
        "unknown field `mirror_target`",
    );
    let expires = err(&with("[repository.expires]\ntargets = \"1d\""));
    assert_names(
        &expires,
        "repository[0].expires.targets",
        "unknown field `targets`",
    );
}

#[test]
fn syntax_and_type_errors_give_line_and_column() {
    let syntax = err("[server\nstate_dir = \"/x\"\n");
    assert_eq!(syntax.line_column(), Some((1, 8)));
    assert_eq!(syntax.key(), None);
    assert!(
        syntax.to_string().starts_with(&format!("{FILE}:1:8: ")),
        "{syntax}"
    );
    let typed = err(&with("mirror_targets = \"no\""));
    assert_names(&typed, "repository[0].mirror_targets", "expected a boolean");
    assert!(
        typed.to_string().starts_with(&format!("{FILE}:13:18: ")),
        "{typed}"
    );
    let missing = err(&base().replace("root_threshold = 1\n", ""));
    assert_names(&missing, "repository[0]", "missing field `root_threshold`");
}

#[test]
fn server_section_rules() {
    assert_names(&err("state_dir = \"/x\"\n"), "state_dir", "unknown field");
    let relative = err(&base().replace("\"/var/lib/tuf-mirror\"", "\"var/lib\""));
    assert_names(&relative, "server.state_dir", "not an absolute path");
    let listen = err(&base().replace("[server]", "[server]\nlisten = \"8080\""));
    assert_names(&listen, "server.listen", "not an IP address and port");
    let none = err("[server]\nstate_dir = \"/x\"\n");
    assert_names(&none, "repository", "at least one [[repository]]");
}

#[test]
fn repository_names_are_restricted_and_unique() {
    for bad in ["One", "-one", "", "a/b", &"a".repeat(64)] {
        let e = err(&base().replace("name = \"one\"", &format!("name = \"{bad}\"")));
        assert_names(&e, "repository[0].name", "is not a repository name");
    }
    assert!(
        load(&base().replace("name = \"one\"", &format!("name = \"{}\"", "a".repeat(63)))).is_ok()
    );
    let twice = format!("{}{}", base(), repo("one", "https://up.example/two"));
    assert_names(
        &err(&twice),
        "repository[1].name",
        "the same repository name as repository[0].name",
    );
}

#[test]
fn the_same_upstream_twice_is_refused_however_spelled() {
    let http = format!("{}{}", base(), repo("two", "https://UP.example/one/"));
    assert_names(
        &err(&http),
        "repository[1].upstream_metadata",
        "the same upstream as repository[0]",
    );
    let a = repo("a", "/srv/import/a").replace("/srv/import/a/targets", "/srv/t1");
    let b = repo("b", "file:///srv/import/a/").replace("file:///srv/import/a//targets", "/srv/t2");
    let dirs = format!("{}{a}{b}", base());
    assert_names(
        &err(&dirs),
        "repository[2].upstream_metadata",
        "the same upstream as repository[1]",
    );
}

#[test]
fn sources_and_paths() {
    let e = err(&base().replace("\"https://up.example/one\"", "\"up.example/one\""));
    assert_names(
        &e,
        "repository[0].upstream_metadata",
        "neither a URL nor an absolute path",
    );
    let e = err(&base().replace("\"https://up.example/one/targets\"", "\"ftp://up/t\""));
    assert_names(
        &e,
        "repository[0].upstream_targets",
        "unsupported URL scheme",
    );
    let e = err(&base().replace("/etc/tuf-mirror/one/root.json", "root.json"));
    assert_names(&e, "repository[0].upstream_root", "not an absolute path");
    let no_targets = base().replace(
        "upstream_targets = \"https://up.example/one/targets\"\n",
        "",
    );
    let e = err(&no_targets);
    assert_names(
        &e,
        "repository[0].upstream_targets",
        "required when mirror_targets is true",
    );
    let config = load(&format!("{no_targets}mirror_targets = false\n")).unwrap();
    assert_eq!(config.repositories[0].upstream_targets, None);
}

#[test]
fn five_field_cron_is_refused_with_a_seconds_hint() {
    let e = err(&with("sync = \"*/15 * * * *\""));
    assert_names(&e, "repository[0].sync", "has 5 fields");
    assert!(e.to_string().contains("write \"0 */15 * * * *\""), "{e}");
    let e = err(&with("resign = \"0 * * * *\""));
    assert_names(&e, "repository[0].resign", "seconds first");
    let e = err(&with("resign = \"0 0 0 * * 0\""));
    assert_names(
        &e,
        "repository[0].resign",
        "Days of Week must be greater than or equal to 1",
    );
}

#[test]
fn numeric_day_of_week_is_warned_about() {
    let config = load(&with("sync = \"0 0 9 * * 2-6\"")).unwrap();
    assert_eq!(config.warnings.len(), 1);
    let w = config.warnings[0].to_string();
    assert!(
        w.starts_with(&format!("{FILE}: repository[0].sync: day-of-week numbers")),
        "{w}"
    );
}

#[test]
fn schedules_that_never_fire_or_stop_are_refused() {
    let e = err(&with("sync = \"0 0 0 30 Feb *\""));
    assert_names(&e, "repository[0].sync", "never fires");
    let e = err(&with("resign = \"0 0 * * * * 2026\""));
    assert_names(
        &e,
        "repository[0].resign",
        "stops firing after 2026-12-31T23:00:00Z",
    );
}

#[test]
fn upstream_grace_is_off_by_default_and_capped() {
    let e = err(&with("upstream_grace = \"91d\""));
    assert_names(
        &e,
        "repository[0].upstream_grace",
        "91d is above the cap of 90d (MAX_UPSTREAM_GRACE",
    );
    assert_eq!(
        e.reason(),
        &Reason::GraceAboveCap {
            grace: Duration::from_secs(91 * DAY),
            cap: MAX_UPSTREAM_GRACE
        }
    );
    let at_cap = load(&with("upstream_grace = \"90d\"")).unwrap();
    assert_eq!(
        at_cap.repositories[0].upstream_grace,
        Some(MAX_UPSTREAM_GRACE)
    );
    assert_eq!(at_cap.warnings[0].key, "repository[0].upstream_grace");
    let zero = load(&with("upstream_grace = \"0s\"")).unwrap();
    assert_eq!(zero.repositories[0].upstream_grace, None);
    let e = err(&with("upstream_grace = \"1y\""));
    assert_names(&e, "repository[0].upstream_grace", "a year is written 365d");
}

#[test]
fn retention_covers_the_life_of_a_timestamp() {
    let r = load(&with("retention = \"36h\"")).unwrap();
    assert_eq!(r.repositories[0].retention, Duration::from_secs(36 * 3600));
    let e = err(&with("retention = \"12h\""));
    assert_names(
        &e,
        "repository[0].retention",
        "12h is shorter than the timestamp expiry 1d",
    );
    assert_eq!(
        e.reason(),
        &Reason::RetentionBelowTimestamp {
            retention: Duration::from_secs(12 * 3600),
            timestamp: DEFAULT_TIMESTAMP_EXPIRY
        }
    );
}

#[test]
fn root_threshold_is_non_zero_and_at_most_the_key_count() {
    let zero = err(&base().replace("root_threshold = 1", "root_threshold = 0"));
    assert_names(&zero, "repository[0].root_threshold", "must be at least 1");
    let above = err(&base().replace("root_threshold = 1", "root_threshold = 2"));
    assert_names(
        &above,
        "repository[0].root_threshold",
        "threshold 2 is more than the 1 root key(s)",
    );
    let two = base().replace(
        "root_keys = [\"file:/keys/one-root.pem\"]",
        "root_keys = [\"file:/keys/r1.pem\", \"file:/keys/r2.pem\"]",
    );
    let config = load(&two.replace("root_threshold = 1", "root_threshold = 2")).unwrap();
    assert_eq!(config.repositories[0].root_threshold.get(), 2);
}

#[test]
fn key_lists_are_non_empty_without_repeats() {
    let e = err(&base().replace(
        "snapshot_keys = [\"file:/keys/one-snapshot.pem\"]",
        "snapshot_keys = []",
    ));
    assert_names(&e, "repository[0].snapshot_keys", "at least one key URI");
    let e = err(&base().replace(
        "root_keys = [\"file:/keys/one-root.pem\"]",
        "root_keys = [\"file:/keys/r.pem\", \"file:///keys/r.pem\"]",
    ));
    assert_names(
        &e,
        "repository[0].root_keys[1]",
        "the same key as repository[0].root_keys[0]",
    );
    let e = err(&base().replace("file:/keys/one-timestamp.pem", "keys/t.pem"));
    assert_names(&e, "repository[0].timestamp_keys[0]", "not a key URI");
}

#[test]
fn a_root_key_is_never_an_online_key() {
    let same_repo = base().replace("file:/keys/one-timestamp.pem", "file:/keys/one-root.pem");
    let e = err(&same_repo);
    assert_names(
        &e,
        "repository[0].timestamp_keys[0]",
        "the same key as repository[0].root_keys[0]",
    );
    assert_eq!(
        e.reason(),
        &Reason::RootKeyOnline {
            root: "repository[0].root_keys[0]".into()
        }
    );
    let other = repo("two", "https://up.example/two")
        .replace("file:/keys/two-snapshot.pem", "file:/keys/one-root.pem");
    let e = err(&format!("{}{other}", base()));
    assert_names(
        &e,
        "repository[1].snapshot_keys[0]",
        "a root key must not also be a snapshot or timestamp key",
    );
}

#[test]
fn one_key_for_snapshot_and_timestamp_is_warned_about() {
    let text = base().replace(
        "file:/keys/one-timestamp.pem",
        "file:/keys/one-snapshot.pem",
    );
    let config = load(&text).unwrap();
    assert_eq!(config.warnings.len(), 1);
    assert_eq!(config.warnings[0].key, "repository[0].timestamp_keys[0]");
    assert!(config.warnings[0].message.contains("snapshot_keys[0]"));
}

#[test]
fn keys_shared_between_repositories_in_the_same_role_are_allowed() {
    let two = repo("two", "https://up.example/two")
        .replace("two-root", "one-root")
        .replace("two-timestamp", "one-timestamp");
    let config = load(&format!("{}{two}", base())).unwrap();
    assert_eq!(
        config.repositories[1].root_keys,
        config.repositories[0].root_keys
    );
}

#[test]
fn expiries_are_ordered_and_non_zero() {
    let e = err(&with("[repository.expires]\nsnapshot = \"12h\""));
    assert_names(
        &e,
        "repository[0].expires.snapshot",
        "snapshot expiry 12h is shorter than timestamp expiry 1d",
    );
    let e = err(&with("[repository.expires]\nroot = \"6d\""));
    assert_names(
        &e,
        "repository[0].expires.root",
        "root expiry 6d is shorter than snapshot expiry 7d",
    );
    let e = err(&with("[repository.expires]\ntimestamp = \"0s\""));
    assert_names(&e, "repository[0].expires.timestamp", "longer than 0s");
    let e = err(&with("[repository.expires]\ntimestamp = \"1 day\""));
    assert_names(&e, "repository[0].expires.timestamp", "invalid duration");
    let equal = with("[repository.expires]\nroot = \"1d\"\nsnapshot = \"1d\"\ntimestamp = \"1d\"");
    assert!(load(&equal).is_ok());
}

#[test]
fn the_timestamp_must_outlive_two_resign_intervals() {
    let ok = with("resign = \"0 0 */12 * * *\"\n[repository.expires]\ntimestamp = \"1d\"");
    assert!(load(&ok).is_ok());
    let short = with("resign = \"0 0 */12 * * *\"\n[repository.expires]\ntimestamp = \"23h\"");
    let e = err(&short);
    assert_names(
        &e,
        "repository[0].expires.timestamp",
        "23h is shorter than twice the longest gap",
    );
    assert!(
        e.to_string().contains("(12h from 2026-01-01T00:00:00Z)"),
        "{e}"
    );
    assert!(e.to_string().contains("at least 1d"), "{e}");
    // Business hours only: the weekend gap (Friday 17:00 to Monday 09:00) counts.
    let weekdays =
        with("resign = \"0 0 9-17 * * Mon-Fri\"\n[repository.expires]\ntimestamp = \"3d\"");
    let e = err(&weekdays);
    assert!(
        e.to_string().contains("(2d16h from 2026-01-02T17:00:00Z)"),
        "{e}"
    );
    let e = err(&with(
        "resign = \"0 0 0 1 * *\"\n[repository.expires]\ntimestamp = \"7d\"",
    ));
    assert!(e.to_string().contains("shorter than twice"), "{e}");
}

#[test]
fn pkcs11_pin_values_are_refused_and_never_shown() {
    let uri = "pkcs11:token=t;object=o?module-path=/usr/lib/p11.so&pin-value=S3CRET-PIN";
    let e = err(&base().replace("file:/keys/one-snapshot.pem", uri));
    assert_names(&e, "repository[0].snapshot_keys[0]", "pin-value is refused");
    assert!(!e.to_string().contains("S3CRET-PIN"));
    assert!(!format!("{e:?}").contains("S3CRET-PIN"));
    let with_source =
        "pkcs11:token=t;object=o?module-path=/usr/lib/p11.so&pin-source=/etc/tuf-mirror/pin";
    let config = load(&base().replace("file:/keys/one-snapshot.pem", with_source)).unwrap();
    let key = &config.repositories[0].snapshot_keys[0];
    for shown in [format!("{key:?}"), key.to_string(), format!("{config:?}")] {
        assert!(
            !shown.to_lowercase().contains("pin-value") && !shown.contains("pin_value"),
            "{shown}"
        );
    }
}

#[test]
fn load_reads_the_file_and_names_it_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, base()).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.file, path);
    let missing = dir.path().join("missing.toml");
    let e = Config::load(&missing).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: cannot read the config file", missing.display())
    );
    assert_eq!(e.reason(), &Reason::Read);
    assert_eq!(e.file(), Some(Path::new(&missing)));
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn key_uri_from_str_gives_a_bare_error() {
    let e = "pkcs11:token=t".parse::<KeyUri>().unwrap_err();
    assert_eq!(e.file(), None);
    assert!(e.to_string().starts_with("a pkcs11: key URI needs"), "{e}");
}

#[test]
fn dense_schedules_with_short_timestamps_are_checked_quickly() {
    let started = std::time::Instant::now();
    let every_second = with("resign = \"* * * * * *\"\n[repository.expires]\ntimestamp = \"2s\"");
    assert!(load(&every_second).is_ok());
    let every_minute = with("resign = \"0 * * * * *\"\n[repository.expires]\ntimestamp = \"10m\"");
    assert!(load(&every_minute).is_ok());
    let too_short = with("resign = \"0 * * * * *\"\n[repository.expires]\ntimestamp = \"1m\"");
    assert!(err(&too_short).to_string().contains("(1m from"));
    // Generous for a debug build on a busy machine; a release build takes milliseconds.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_missing_server_section_is_named() {
    let e = err(&repo("one", "https://up.example/one"));
    assert!(e.to_string().contains("missing field `server`"), "{e}");
}
