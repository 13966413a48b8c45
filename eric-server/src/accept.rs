//! The accept loop both listeners share: HTTP's (`serve`) and the Unix
//! socket's ([`crate::socket`]).
//!
//! One loop, so the two cannot drift apart again (they were near-copies,
//! and the HTTP one slept through shutdown in its back-off). Per client:
//!
//! - a connection slot first: beyond the cap, new clients wait in the
//!   kernel's listen backlog instead of costing a task and buffers here;
//! - then accept; a failed accept (out of file descriptors, usually: none
//!   frees until some connection closes) backs off, doubling from
//!   [`BACKOFF_MIN`] to [`BACKOFF_MAX`], instead of spinning on the error;
//! - the connection runs in its own task on the caller's [`TaskTracker`],
//!   holding its slot until it ends.
//!
//! Shutdown ends the loop wherever it waits: for a slot, for a client, or
//! in the back-off's pause.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// First pause after a failed accept; reset by the next success.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause: a server out of descriptors retries at least this often.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A listening socket the loop accepts from.
pub(crate) trait Listener {
    /// An accepted connection.
    type Conn: Send + 'static;

    /// The next connection (its peer address is not used).
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Conn>> + Send;
}

impl Listener for TcpListener {
    type Conn = TcpStream;

    async fn accept_one(&self) -> io::Result<TcpStream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

impl Listener for UnixListener {
    type Conn = UnixStream;

    async fn accept_one(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

/// What a loop did, logged when it stops (and checked by tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Connections accepted and handed to a task.
    pub(crate) connections: u64,
    /// Accepts that failed (each followed by a back-off pause).
    pub(crate) failures: u64,
}

/// Accepts from `listener` until `shutdown`, at most `max_connections` at
/// once, running `serve(connection)` for each on `tasks`. Returns when
/// shutdown fires, without waiting for the connections' tasks: the caller
/// closes the listener first, then waits for `tasks` as it sees fit.
pub(crate) async fn accept_loop<L, F, Fut>(
    name: &'static str,
    listener: &L,
    max_connections: usize,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
    mut serve: F,
) -> Accepted
where
    L: Listener,
    F: FnMut(L::Conn) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut backoff = BACKOFF_MIN;
    let mut done = Accepted::default();
    loop {
        // `biased`: once shutdown fires, it wins over a ready slot or client.
        let slot = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot,
        };
        // The semaphore is never closed; if it were, nothing could be served.
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept_one() => accepted,
        };
        match accepted {
            Ok(connection) => {
                backoff = BACKOFF_MIN;
                done.connections += 1;
                let served = serve(connection);
                tasks.spawn(async move {
                    served.await;
                    drop(slot);
                });
            }
            Err(error) => {
                done.failures += 1;
                tracing::warn!(%error, listener = name, retry_in = ?backoff, "accept failed; backing off");
                drop(slot);
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    tracing::debug!(
        listener = name,
        connections = done.connections,
        failures = done.failures,
        "accept loop stopped"
    );
    done
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A listening TCP socket shut down for reading: every accept fails
    /// with `EINVAL`, for real (Linux).
    async fn failing_listener() -> TcpListener {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        socket2::SockRef::from(&listener)
            .shutdown(std::net::Shutdown::Read)
            .unwrap();
        listener
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_in_back_off_stops_at_once_on_shutdown() {
        let listener = failing_listener().await;
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        let looping = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                accept_loop("test", &listener, 4, &shutdown, &tasks, |_| async {}).await
            })
        };
        // Paused time moves on only when every task waits: by now the loop
        // has failed accepts and waits in a pause of BACKOFF_MAX.
        tokio::time::sleep(BACKOFF_MAX * 30).await;
        shutdown.cancel();
        let done = tokio::time::timeout(Duration::from_millis(1), looping)
            .await
            .expect("the loop went on sleeping in its back-off after shutdown")
            .unwrap();
        assert_eq!(done.connections, 0);
        assert!(done.failures > 1, "never backed off: {done:?}");
    }

    #[tokio::test]
    async fn connections_run_on_the_tracker_and_the_loop_stops_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        let (seen, mut served) = tokio::sync::mpsc::unbounded_channel();
        let looping = {
            let (shutdown, tasks) = (shutdown.clone(), tasks.clone());
            tokio::spawn(async move {
                accept_loop("test", &listener, 4, &shutdown, &tasks, move |stream| {
                    let seen = seen.clone();
                    async move {
                        let _ = seen.send(stream.peer_addr().ok());
                    }
                })
                .await
            })
        };
        let client = TcpStream::connect(addr).await.unwrap();
        let peer = tokio::time::timeout(Duration::from_secs(10), served.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(peer, client.local_addr().ok());
        shutdown.cancel();
        let done = tokio::time::timeout(Duration::from_secs(10), looping)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            done,
            Accepted {
                connections: 1,
                failures: 0
            }
        );
        tasks.close();
        tokio::time::timeout(Duration::from_secs(10), tasks.wait())
            .await
            .unwrap();
    }
}
