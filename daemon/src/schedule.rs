//! The daemon's life: per repository, a sync job and a re-sign job on their cron
//! schedules (with a catch-up at start), health kept current, until shutdown. A cycle
//! always completes; cancellation is checked between cycles.
//!
//! A failed cycle (a KMS or HSM that does not answer, an unreachable upstream) has
//! published nothing; it is tried again before the next scheduled run, after
//! [`retry_delay`]: 10 s, then twice as long after each further failure, never later
//! than the next scheduled run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tuf_mirror_config::CronSchedule;

use crate::cycle::Outcome;
use crate::serve::HealthHandle;
use crate::service::{display_chain, Service, ServiceError};

/// Which job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Sync,
    Resign,
}

/// Runs every repository's jobs until `stop` is cancelled; returns when the cycles in
/// flight have finished.
pub async fn run(service: Arc<Service>, health: HealthHandle, stop: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for rt in service.repos() {
        let name = rt.repo.name.as_str().to_owned();
        for (job, schedule) in [
            (Job::Sync, rt.repo.sync.clone()),
            (Job::Resign, rt.repo.resign.clone()),
        ] {
            let (service, health, stop, name) =
                (service.clone(), health.clone(), stop.clone(), name.clone());
            tasks.spawn(async move { job_loop(service, health, stop, name, job, schedule).await });
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn job_loop(
    service: Arc<Service>,
    health: HealthHandle,
    stop: CancellationToken,
    name: String,
    job: Job,
    schedule: CronSchedule,
) {
    // Catch up at start: a sync first (which also signs), re-sign ticks after.
    let mut first = job == Job::Sync;
    // Cycles failed in a row.
    let mut failures: u32 = 0;
    loop {
        if !first {
            let Some(next) = schedule.next_after(SystemTime::now()) else {
                return;
            };
            let mut wait = next
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            if failures > 0 {
                wait = wait.min(retry_delay(failures));
                tracing::warn!(
                    repo = %name,
                    job = ?job,
                    failures,
                    retry_in_s = wait.as_secs(),
                    "cycle failed; retrying"
                );
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
        first = false;
        if stop.is_cancelled() {
            return;
        }
        let span = tracing::info_span!("cycle", repo = %name, job = ?job);
        let _enter = span.enter();
        let result = match job {
            Job::Sync => service.sync(&name).await,
            Job::Resign => service.resign(&name).await,
        };
        if report(&health, &name, job, result) {
            failures = 0;
        } else {
            failures = failures.saturating_add(1);
        }
    }
}

/// How long to wait before retrying after `failures` failed cycles in a row (at
/// least 1): 10 s, doubling with each failure (the caller caps it at the next
/// scheduled run).
pub fn retry_delay(failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(10);
    FIRST.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)))
}

/// Logs a cycle's result and records it in the health state; true when it succeeded.
fn report(
    health: &HealthHandle,
    name: &str,
    job: Job,
    result: Result<Outcome, ServiceError>,
) -> bool {
    let ok = result.is_ok();
    match result {
        Ok(out) => {
            let now = jiff::Timestamp::now();
            health.update(name, |h| {
                if job == Job::Sync {
                    h.last_sync = Some(now);
                    h.last_sync_error = None;
                }
                h.root_signature_needed = out.root_signature_needed;
                h.timestamp_expires = out.timestamp_expires;
            });
            if out.root_signature_needed {
                tracing::warn!(repo = name, "root signature needed for repository {name}");
            }
        }
        Err(e) => {
            let msg = display_chain(&e);
            tracing::error!(repo = name, job = ?job, error = %msg, "cycle failed");
            health.update(name, |h| {
                if job == Job::Sync {
                    h.last_sync_error = Some(msg);
                }
            });
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially() {
        let secs: Vec<u64> = (1..=6).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 320]);
        // No overflow however long the outage.
        assert!(retry_delay(u32::MAX) >= retry_delay(30));
    }
}
