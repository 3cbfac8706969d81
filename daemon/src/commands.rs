//! The sub-commands that run the service: `serve`, one-shot `init`/`sync`/`resign`, `demo`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio_util::sync::CancellationToken;
use tuf_mirror_config::Config;
use tuf_mirror_daemon::clock::SystemClock;
use tuf_mirror_daemon::cycle::Ledger;
use tuf_mirror_daemon::serve::{self, HealthHandle, ServeConfig};
use tuf_mirror_daemon::service::{published_dir, Service};

/// Which one-shot pass.
#[derive(Debug, Clone, Copy)]
pub enum Pass {
    Sync,
    Resign,
}

fn load_config(path: &Path) -> Result<Config> {
    let config = Config::load(path)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

fn open_ledger(config: &Config) -> Result<Arc<dyn Ledger>> {
    let path = config.server.state_dir.join("state.redb");
    let state = tuf_mirror_daemon::state::State::open(&path)
        .with_context(|| format!("opening the state store {}", path.display()))?;
    Ok(Arc::new(state))
}

async fn open_service(config: &Config) -> Result<Arc<Service>> {
    let config2 = config.clone();
    let service = tokio::task::spawn_blocking(move || -> Result<Service> {
        std::fs::create_dir_all(&config2.server.state_dir)
            .with_context(|| format!("creating {}", config2.server.state_dir.display()))?;
        let ledger = open_ledger(&config2)?;
        Ok(Service::open(&config2, ledger, Arc::new(SystemClock))?)
    })
    .await??;
    Ok(Arc::new(service))
}

/// One pass over one or every repository; fails if any repository failed.
pub async fn once(config: &Path, repo: Option<String>, pass: Pass) -> Result<()> {
    let config = load_config(config)?;
    let service = open_service(&config).await?;
    let names: Vec<String> = match repo {
        Some(r) => vec![r],
        None => config
            .repositories
            .iter()
            .map(|r| r.name.as_str().to_owned())
            .collect(),
    };
    let mut failed = 0;
    for name in &names {
        let result = match pass {
            Pass::Sync => service.sync(name).await,
            Pass::Resign => service.resign(name).await,
        };
        match result {
            Ok(o) => println!(
                "{name}: root {}, snapshot {}, timestamp {}{}",
                o.root.map_or("unchanged".into(), |v| format!("v{v}")),
                o.snapshot.map_or("unchanged".into(), |v| format!("v{v}")),
                o.timestamp,
                if o.root_signature_needed {
                    " (root signature needed)"
                } else {
                    ""
                }
            ),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "tuf-mirror: {}",
                    tuf_mirror_daemon::service::display_chain(&e)
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} repositories failed", names.len());
    }
    Ok(())
}

/// The state store opened for reading, beside a running daemon.
fn open_read_only(config: &Config) -> Result<tuf_mirror_daemon::state::State> {
    let path = config.server.state_dir.join("state.redb");
    if !path.exists() {
        bail!(
            "no state store at {}: nothing was synced yet (run init)",
            path.display()
        );
    }
    tuf_mirror_daemon::state::State::open_read_only(&path)
        .with_context(|| format!("opening the state store {} to read", path.display()))
}

/// Prints the audit log and checks its chain.
pub fn audit(config: &Path, repo: Option<&str>, json: bool) -> Result<()> {
    let config = load_config(config)?;
    let state = open_read_only(&config)?;
    let log = state.audit_log()?;
    let shown: Vec<_> = log
        .entries
        .iter()
        .filter(|e| repo.is_none_or(|r| e.repo == r))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "entries": shown,
                "head": log.head,
                "chain": "intact",
            }))?
        );
    } else {
        for e in &shown {
            let mut line = format!("{:>6} {} {} {} {}", e.seq, e.at, e.repo, e.action, e.actor);
            if let Some(r) = &e.role {
                line.push_str(&format!(" {r}"));
            }
            if let Some(v) = e.version {
                line.push_str(&format!(" v{v}"));
            }
            if !e.keyids.is_empty() {
                line.push_str(&format!(" keys {}", e.keyids.join(",")));
            }
            if let Some(d) = &e.detail {
                line.push_str(&format!(": {d}"));
            }
            println!("{line}");
        }
        println!(
            "audit log intact: {} entries ({} shown), head {}",
            log.entries.len(),
            shown.len(),
            if log.head.is_empty() {
                "none"
            } else {
                &log.head
            }
        );
    }
    Ok(())
}

/// Prints what each repository serves and its sync history.
pub fn status(config_path: &Path, json: bool) -> Result<()> {
    let config = load_config(config_path)?;
    let state = open_read_only(&config)?;
    let mut out = serde_json::Map::new();
    for repo in &config.repositories {
        let name = repo.name.as_str();
        let tree = published_dir(&config.server.state_dir).join(name);
        let doc = |f: &str| -> Option<serde_json::Value> {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(tree.join("metadata").join(f)).ok()?).ok()?;
            Some(
                serde_json::json!({ "version": v["signed"]["version"], "expires": v["signed"]["expires"] }),
            )
        };
        let history = state.history(name)?;
        let last_ok = history
            .iter()
            .find(|h| h.error.is_none())
            .map(|h| h.finished.to_string());
        let last_error = history.first().and_then(|h| h.error.clone());
        let needed = root_signature_needed(&config.server.state_dir, name, &tree);
        out.insert(
            name.to_owned(),
            serde_json::json!({
                "root": doc("root.json"),
                "timestamp": doc("timestamp.json"),
                "last_successful_sync": last_ok,
                "last_sync_error": last_error,
                "root_signature_needed": needed.is_some(),
                "attention": needed.map(|why| format!("root signature needed for repository {name}: {why}")),
            }),
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (name, v) in &out {
            let show = |k: &str| match &v[k] {
                serde_json::Value::Null => "nothing published".to_owned(),
                d => format!(
                    "v{} until {}",
                    d["version"],
                    d["expires"].as_str().unwrap_or("?")
                ),
            };
            println!(
                "{name}: root {}; timestamp {}",
                show("root"),
                show("timestamp")
            );
            println!(
                "  last successful sync: {}",
                v["last_successful_sync"].as_str().unwrap_or("never")
            );
            if let Some(e) = v["last_sync_error"].as_str() {
                println!("  last sync failed: {e}");
            }
            if let Some(a) = v["attention"].as_str() {
                println!("  {a}");
            }
        }
    }
    Ok(())
}

/// Why the served mirror root must change and waits for root signatures: the newest
/// upstream root the daemon verified lists other targets keys than the mirror root.
fn root_signature_needed(state_dir: &Path, repo: &str, tree: &Path) -> Option<String> {
    let read = |p: &Path| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    };
    let mirror = read(&tree.join("metadata/root.json"))?;
    let (newest, path) = tuf_mirror_daemon::ceremony::newest_upstream_root(state_dir, repo)?;
    let upstream = read(&path)?;
    let targets =
        |v: &serde_json::Value| tuf_mirror_daemon::ceremony::role_keys(&v["signed"], "targets");
    (targets(&mirror) != targets(&upstream)).then(|| {
        format!(
            "upstream root version {newest} changed the targets keys; run the root ceremony \
             (`tuf-mirror root prepare`, `root sign`, `root publish`)"
        )
    })
}

/// What `tuf-mirror bundle export` was asked for.
#[derive(Debug)]
pub struct ExportArgs {
    pub config: PathBuf,
    pub repo: Option<String>,
    pub out: PathBuf,
    pub mirror_urls: Vec<url::Url>,
    /// Upstream targets, mirror timestamp, mirror snapshot grace, as written.
    pub graces: [Option<String>; 3],
    pub comment: Option<String>,
}

/// Writes the key bundle from the served trees (temporary file, renamed into place).
pub fn bundle_export(args: &ExportArgs) -> Result<()> {
    use tuf_mirror_client::bundle::{parse_duration, ClientPolicy};
    let config = load_config(&args.config)?;
    let bases = if args.mirror_urls.is_empty() {
        vec![tuf_mirror_daemon::export::default_base(&config)?]
    } else {
        args.mirror_urls.clone()
    };
    let mut policy = ClientPolicy::default();
    let slots = [
        (
            &mut policy.upstream_targets_grace,
            "--dangerous-upstream-targets-grace",
        ),
        (
            &mut policy.mirror_timestamp_grace,
            "--dangerous-mirror-timestamp-grace",
        ),
        (
            &mut policy.mirror_snapshot_grace,
            "--dangerous-mirror-snapshot-grace",
        ),
    ];
    for ((slot, flag), text) in slots.into_iter().zip(&args.graces) {
        if let Some(text) = text {
            let d = parse_duration(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
            tracing::warn!(flag, grace = %text, "the bundle gives clients an expiry grace");
            *slot = Some(d);
        }
    }
    let bytes = tuf_mirror_daemon::export::export_bundle(
        &config,
        args.repo.as_deref(),
        &bases,
        &policy,
        args.comment.as_deref(),
        &args.out,
    )?;
    let dir = match args.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    tmp.write_all(&bytes)?;
    // Public keys and signed metadata only: readable by everyone who needs it.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let bundle = tuf_mirror_client::bundle::Bundle::from_slice(&bytes, &args.out)?;
    for r in bundle.repositories() {
        println!(
            "{}: mirror root v{}, {} pinned targets key(s), threshold {}, mirrors {}",
            r.name,
            r.mirror_root_version,
            r.targets_keys.keys().len(),
            r.targets_keys.threshold(),
            r.mirrors
                .iter()
                .map(url::Url::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Runs the service until SIGTERM or SIGINT.
pub async fn serve(config_path: &Path) -> Result<()> {
    let config = load_config(config_path)?;
    let service = open_service(&config).await?;
    let health = HealthHandle::new(
        config
            .repositories
            .iter()
            .map(|r| r.name.as_str().to_owned()),
    );
    let server = serve::bind(ServeConfig::new(
        config.server.listen,
        published_dir(&config.server.state_dir),
    ))
    .await
    .with_context(|| format!("listening on {}", config.server.listen))?;
    tracing::info!(addr = %server.local_addr(), "serving");
    run_until_signal(config_path, service, health, server).await
}

async fn run_until_signal(
    config_path: &Path,
    mut service: Arc<Service>,
    health: HealthHandle,
    server: serve::Server,
) -> Result<()> {
    let http_stop = CancellationToken::new();
    let http = tokio::spawn({
        let health = health.clone();
        let stop = http_stop.clone();
        async move { server.run(health, stop.cancelled_owned()).await }
    });
    let watchdog = tokio::spawn(serve::watchdog(http_stop.clone().cancelled_owned()));
    let mut signals = Signals::new()?;
    serve::notify_ready();
    loop {
        let jobs_stop = CancellationToken::new();
        let jobs = tokio::spawn(tuf_mirror_daemon::schedule::run(
            service.clone(),
            health.clone(),
            jobs_stop.clone(),
        ));
        // SIGHUP with a configuration that does not load keeps the jobs running.
        let reload = loop {
            match signals.next().await {
                Signal::Stop => break None,
                Signal::Reload => {
                    serve::notify_reloading();
                    match check_reload(config_path).await {
                        Ok(()) => break Some(()),
                        Err(e) => {
                            tracing::error!(
                                "reload refused, keeping the running configuration: {e:#}"
                            );
                            serve::notify_ready();
                        }
                    }
                }
            }
        };
        tracing::info!("finishing the cycles in flight");
        jobs_stop.cancel();
        let _ = jobs.await;
        if reload.is_none() {
            break;
        }
        // The jobs are done: the state store can be opened again.
        drop(service);
        let config = load_config(config_path)?;
        service = open_service(&config).await?;
        tracing::info!(config = %config_path.display(), "configuration reloaded");
        serve::notify_ready();
    }
    serve::notify_stopping();
    http_stop.cancel();
    let _ = http.await;
    let _ = watchdog.await;
    Ok(())
}

/// Loads the configuration and every key it names, without touching the running state.
async fn check_reload(config_path: &Path) -> Result<()> {
    let path = config_path.to_owned();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let config = load_config(&path)?;
        let published = tuf_mirror_daemon::service::published_dir(&config.server.state_dir);
        for repo in &config.repositories {
            let tree = published.join(repo.name.as_str());
            tuf_mirror_daemon::keyring::load_checked(repo, &tree)?;
        }
        Ok(())
    })
    .await?
}

enum Signal {
    Stop,
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// The demo: a throwaway upstream, mirrored and served on 127.0.0.1.
pub async fn demo(port: u16, dir: Option<PathBuf>) -> Result<()> {
    let (_guard, dir) = match dir {
        Some(d) => (None, d),
        None => {
            let t = tempfile::Builder::new()
                .prefix("tuf-mirror-demo-")
                .tempdir()?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let up = dir.join("upstream");
    // The upstream's timestamp expires in five minutes: without the mirror, every client
    // of it would break then.
    tuf_mirror_daemon::demo::write_upstream(&up, jiff::SignedDuration::from_mins(5)).await?;
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    for role in ["root", "snapshot", "timestamp"] {
        let path = keys.join(format!("{role}.pem"));
        if !path.exists() {
            tuf_mirror_keys::generate(tuf_mirror_keys::Algorithm::Ed25519, &path)?;
        }
    }
    let config_path = dir.join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            r#"# Written by `tuf-mirror demo`.
[server]
listen = "127.0.0.1:{port}"
state_dir = "{d}/state"

[[repository]]
name = "demo"
upstream_metadata = "{d}/upstream/metadata"
upstream_targets = "{d}/upstream/targets"
upstream_root = "{d}/upstream/root.json"
sync = "0 * * * * *"        # every minute
resign = "*/5 * * * * *"    # every five seconds
root_keys = ["file:{d}/keys/root.pem"]
root_threshold = 1
snapshot_keys = ["file:{d}/keys/snapshot.pem"]
timestamp_keys = ["file:{d}/keys/timestamp.pem"]

[repository.expires]
timestamp = "10m"
"#,
            d = dir.display()
        ),
    )?;
    let config = load_config(&config_path)?;
    let service = open_service(&config).await?;
    service
        .sync("demo")
        .await
        .map_err(|e| anyhow::anyhow!(tuf_mirror_daemon::service::display_chain(&e)))?;
    let health = HealthHandle::new(["demo".to_owned()]);
    let server = serve::bind(ServeConfig::new(
        config.server.listen,
        published_dir(&config.server.state_dir),
    ))
    .await
    .with_context(|| format!("listening on {}", config.server.listen))?;
    let base = format!("http://{}/demo", server.local_addr());
    let root = dir.join("state/published/demo/metadata/1.root.json");
    println!(
        "\ntuf-mirror demo: mirroring a throwaway upstream whose timestamp expires in 5 minutes,
re-signing every 5 seconds, serving {base}/ (files in {d}).

Download a target through the mirror, trusting only the mirror's root version 1:

  cargo run --release -p tuf-mirror-client --bin tuf-fetch -- --metadata-dir /tmp/tuf-demo-client init {root}
  cargo run --release -p tuf-mirror-client --bin tuf-fetch -- --metadata-url {base}/metadata/ \\
      --metadata-dir /tmp/tuf-demo-client --target-base-url {base}/targets/ --target-dir /tmp/tuf-demo-out \\
      --target-name releases/app-1.0.tar.gz download

The same with python-tuf (pip install tuf):

  python3 -c 'import tempfile; from tuf.ngclient import Updater; d = tempfile.mkdtemp(); u = Updater(metadata_dir=d, metadata_base_url=\"{base}/metadata/\", target_base_url=\"{base}/targets/\", target_dir=d, bootstrap=open(\"{root}\", \"rb\").read()); u.refresh(); print(u.download_target(u.get_targetinfo(\"releases/app-1.0.tar.gz\")))'

Health: curl http://{addr}/healthz    Stop: Ctrl-C
",
        d = dir.display(),
        root = root.display(),
        addr = server.local_addr(),
    );
    run_until_signal(&config_path, service, health, server).await
}
