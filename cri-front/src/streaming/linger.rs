//! Closing a session without losing its last bytes. A socket closed while the client's bytes sit
//! unread in its receive buffer makes Linux send RST instead of FIN and drop what we had not sent
//! yet; the client then reads ECONNRESET where the exit status should be. The client keeps
//! sending (stdin nobody reads, its answer to our close frame) until it learns we are done, so a
//! session ends the way HTTP servers end connections: send the last bytes, half-close (FIN), and
//! read and discard what still comes until the client closes too, for a bounded time.

use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a finished session waits for the client to close its side.
pub const LINGER: Duration = Duration::from_secs(2);

/// Run `finish` (sending the last bytes) while `drain` reads and discards the client's input, so
/// neither side can block the other; then give `drain` up to [`LINGER`] to see the client's end.
/// `drain`'s output, unless it timed out.
pub async fn while_draining<F, D>(finish: F, drain: D) -> (F::Output, Option<D::Output>)
where
    F: Future,
    D: Future,
{
    tokio::pin!(finish, drain);
    let mut drained = None;
    let out = loop {
        tokio::select! {
            o = &mut finish => break o,
            d = &mut drain, if drained.is_none() => drained = Some(d),
        }
    };
    if drained.is_none() {
        drained = tokio::time::timeout(LINGER, drain).await.ok();
    }
    (out, drained)
}

/// Half-close `io` (FIN), then discard what the client still sends until it closes, for at most
/// [`LINGER`]; the caller drops `io` afterwards.
pub async fn shutdown_and_drain<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) {
    if let Err(e) = io.shutdown().await {
        tracing::debug!(error = %e, "streaming: half-close failed");
        return;
    }
    let _ = tokio::time::timeout(LINGER, discard(io)).await;
}

/// Read until EOF or an error.
pub async fn discard<R: AsyncRead + Unpin>(r: &mut R) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finish_runs_while_input_is_drained_and_peer_sees_fin() {
        let (mut ours, mut theirs) = tokio::io::duplex(64);
        // The peer writes more than the pipe holds before it reads anything.
        let peer = tokio::spawn(async move {
            theirs.write_all(&[1u8; 4096]).await.expect("peer write");
            theirs.shutdown().await.expect("peer shutdown");
            let mut got = Vec::new();
            theirs.read_to_end(&mut got).await.expect("peer read");
            got
        });
        let (mut rd, mut wr) = tokio::io::split(&mut ours);
        let finish = async {
            wr.write_all(b"status").await.expect("write");
            wr.shutdown().await.expect("shutdown");
        };
        let ((), drained) = while_draining(finish, discard(&mut rd)).await;
        assert!(drained.is_some());
        assert_eq!(peer.await.expect("peer"), b"status");
    }
}
