//! What every connection of the socket face shares ([`Shared`]), and the
//! one bounded write ([`send`]) both an answer and a stream use. Apart from
//! `connection` and `stream` so that neither imports the other for it.

use std::fmt;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

/// What every connection task shares.
pub(super) struct Shared {
    pub(super) broker: Broker,
    pub(super) max_request_bytes: usize,
    /// How long one write may wait for a client that does not read.
    pub(super) write_timeout: Duration,
    pub(super) shutdown: CancellationToken,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("broker", &self.broker)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a write did not complete.
#[derive(Debug)]
pub(super) enum SendError {
    /// The socket failed (the client left: `EPIPE`).
    Io(std::io::Error),
    /// The client did not read for the write timeout.
    Stalled,
    /// The server is shutting down.
    Shutdown,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "the socket failed: {error}"),
            Self::Stalled => f.write_str("the client stopped reading"),
            Self::Shutdown => f.write_str("the server is shutting down"),
        }
    }
}

/// Writes all of `bytes` within the write timeout, unless shutdown comes.
/// `written` counts what went into the socket, also when the write fails:
/// a stream gives back only what its client cannot have received.
pub(super) async fn send(
    socket: &mut UnixStream,
    bytes: &[u8],
    written: &mut usize,
    shared: &Shared,
) -> Result<(), SendError> {
    *written = 0;
    let write = async {
        while *written < bytes.len() {
            match socket.write(&bytes[*written..]).await {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => *written += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    };
    tokio::select! {
        biased;
        () = shared.shutdown.cancelled() => Err(SendError::Shutdown),
        done = tokio::time::timeout(shared.write_timeout, write) => match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SendError::Io(error)),
            Err(_elapsed) => Err(SendError::Stalled),
        },
    }
}
