//! systemd's notification protocol (`Type=notify`, `WatchdogSec=`), through `sd-notify`.
//!
//! Every function does nothing when the process was not started by systemd
//! (`NOTIFY_SOCKET` unset). A failed notification is logged, never fatal: the service
//! keeps serving, and systemd acts on what it did not hear.

use std::future::Future;
use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>], what: &str) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, what, "systemd notification failed");
    }
}

/// `READY=1`: start-up is complete (configuration checked, keys loaded, state
/// reconciled, the HTTP listener bound). Call it once.
pub fn notify_ready() {
    send(&[NotifyState::Ready], "ready");
}

/// `RELOADING=1`: a reload (SIGHUP) started; call [`notify_ready`] when it is done.
pub fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now], "reloading"),
        Err(_) => send(&[NotifyState::Reloading], "reloading"),
    }
}

/// `STOPPING=1`: shutdown started (SIGTERM); the cycle in flight finishes first.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping], "stopping");
}

/// `STATUS=...`: one line that `systemctl status` shows.
pub fn notify_status(line: &str) {
    send(&[NotifyState::Status(line)], "status");
}

/// The watchdog period systemd expects pings within (`WatchdogSec=`), if it set one for
/// this process.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|p| !p.is_zero())
}

/// Pings systemd's watchdog (`WATCHDOG=1`) at half its period until `stop` completes;
/// returns at once when no watchdog is set. Run it as a task on the runtime that does
/// the work: if that runtime stalls, the pings stop and systemd restarts the service.
pub async fn watchdog(stop: impl Future<Output = ()>) {
    let Some(period) = watchdog_period() else {
        return;
    };
    tracing::debug!(period_ms = period.as_millis(), "systemd watchdog enabled");
    let mut tick = tokio::time::interval(period / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => send(&[NotifyState::Watchdog], "watchdog"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test, since it sets process-wide variables: first outside systemd (nothing
    /// happens, the watchdog returns at once), then with a socket standing in for
    /// systemd's, which must receive the datagrams.
    #[tokio::test]
    async fn outside_and_inside_systemd() {
        if std::env::var_os("NOTIFY_SOCKET").is_some() {
            return; // run under systemd itself: leave its socket alone
        }
        notify_ready();
        notify_stopping();
        assert_eq!(watchdog_period(), None);
        tokio::time::timeout(Duration::from_secs(5), watchdog(std::future::pending()))
            .await
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        std::env::set_var("WATCHDOG_USEC", "200000");
        std::env::remove_var("WATCHDOG_PID");
        let recv = || async {
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        notify_ready();
        assert_eq!(recv().await.trim(), "READY=1");
        notify_status("serving 2 repositories");
        assert_eq!(recv().await.trim(), "STATUS=serving 2 repositories");
        notify_reloading();
        assert!(recv().await.starts_with("RELOADING=1\nMONOTONIC_USEC="));
        assert_eq!(watchdog_period(), Some(Duration::from_millis(200)));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let pinger = tokio::spawn(watchdog(async {
            let _ = stop_rx.await;
        }));
        for _ in 0..2 {
            assert_eq!(recv().await.trim(), "WATCHDOG=1");
        }
        stop_tx.send(()).unwrap();
        pinger.await.unwrap();
        notify_stopping();
        assert_eq!(recv().await.trim(), "STOPPING=1");
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
    }
}
