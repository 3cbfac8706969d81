//! The server alone over a tree, for `bench/serve.sh`: listens on
//! `TUF_MIRROR_BENCH_LISTEN`, serves `TUF_MIRROR_BENCH_TREE` for
//! `TUF_MIRROR_BENCH_SECONDS` (default 600), with the small-file cache TTL from
//! `TUF_MIRROR_BENCH_CACHE_TTL_MS` (default: the server's default; 0 measures the disk
//! path), on two runtime threads like the 2-core machines it is measured on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tuf_mirror_daemon::serve::{bind, HealthHandle, ServeConfig};

fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let mut config = ServeConfig::new(
        var("TUF_MIRROR_BENCH_LISTEN").parse().unwrap(),
        var("TUF_MIRROR_BENCH_TREE").into(),
    );
    if let Ok(ms) = std::env::var("TUF_MIRROR_BENCH_CACHE_TTL_MS") {
        config.cache_ttl = Duration::from_millis(ms.parse().unwrap());
    }
    let seconds = std::env::var("TUF_MIRROR_BENCH_SECONDS").map_or(600, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = bind(config).await.unwrap();
        eprintln!("bench server on {}", server.local_addr());
        server
            .run(
                HealthHandle::new(Vec::<String>::new()),
                tokio::time::sleep(Duration::from_secs(seconds)),
            )
            .await;
    });
}
