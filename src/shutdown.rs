//! Turning SIGTERM / SIGINT into a cancellation every task watches.

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or SIGINT. A second signal exits
/// at once: whatever was not acknowledged stays pending in Redis and is
/// reclaimed by another processor, and a provider whose request was cut off
/// got no 2xx and will retry, so nothing acknowledged is lost either way.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("Shutting down: finishing in-flight requests and batches.");
        cancel.cancel();
        signal().await;
        tracing::warn!("Second signal: exiting now.");
        std::process::exit(130);
    });
    token
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler works on Unix");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
