//! eric's Unix-socket protocol: the reference's `SocketServer`, so its
//! `SocketClient` (eric-sse 2.1.1.2) works unchanged. `docs/SOCKET.md` has
//! the protocol (verbs, answers, error texts), which CPython's texts it
//! imitates, and every deviation from the reference.
//!
//! One request per connection, a JSON object ended by the client's
//! half-close; the answer, or a stream of lines, then the server's
//! half-close. Requests are parsed into a typed `Request`; every error
//! carries its Python class name as its code.
//!
//! ## Layout
//!
//! - this file: binding, shutdown, the socket file (the accept loop is
//!   `crate::accept`'s, shared with HTTP);
//! - `connection`: one connection (bounded read, answer, timeouts);
//! - `protocol`: parsing a request, the error texts;
//! - `commands`: the verbs, run against the [`Broker`];
//! - `shared`: what every connection shares, and the bounded write;
//! - `stream`: the streams of `l` and `w`;
//! - `strict`: the strict-JSON check Python's decoder does not make;
//! - `python`: the CPython imitations (`json.dumps`, `repr`, `json.loads`'s
//!   error messages) and their parity test against CPython 3.11;
//! - tests only: `proptests`.

mod commands;
mod connection;
#[cfg(test)]
mod proptests;
mod protocol;
mod python;
mod shared;
mod stream;
mod strict;

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::shared::Shared;
use crate::accept;
use crate::broker::Broker;
use crate::error::{Error, Result};

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 10_000;

/// Binds the socket at `path` with mode 0600, replacing a stale socket file.
///
/// A socket gets the umask's mode at `bind`, so binding at `path` and then
/// changing the mode would leave a window in which anyone could connect.
/// Instead the socket is bound inside a fresh directory only this user can
/// enter, made private there, and then hard-linked into place: the link
/// fails if something appeared at `path` meanwhile, never replacing it.
pub fn bind(path: &Path) -> Result<UnixListener> {
    let fail = |source| Error::Socket {
        path: path.to_owned(),
        source,
    };
    remove_stale(path).map_err(fail)?;
    let private = PrivateDir::create(path).map_err(fail)?;
    let inner = private.path.join("s");
    let listener = UnixListener::bind(&inner).map_err(fail)?;
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    std::fs::hard_link(&inner, path).map_err(fail)?;
    Ok(listener)
}

/// A directory with mode 0700 next to the socket path, removed with what it
/// holds when dropped.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn create(socket: &Path) -> io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let parent = socket
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Short: the socket's path inside must fit in `sun_path` too.
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let path = parent.join(format!(".eric-{}", &unique[..8]));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self { path })
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes a socket file no server answers on. Anything else at the path
/// (a regular file, a directory, a live socket) is an error: never delete
/// what might not be ours to delete.
fn remove_stale(path: &Path) -> io::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "a server is listening on this socket",
        )),
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale socket file");
            std::fs::remove_file(path)
        }
        Err(error) => Err(error),
    }
}

/// Serves the protocol until `shutdown`; then stops accepting, removes the
/// socket file (so a new server may bind at once) and waits for the
/// connections' tasks, whose streams end on the same token.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    broker: Broker,
    max_request_bytes: usize,
    write_timeout: Duration,
    shutdown: CancellationToken,
) {
    let file = SocketFile::new(path);
    tracing::info!(path = %file.path.display(), "socket protocol listening");
    let shared = Arc::new(Shared {
        broker,
        max_request_bytes,
        write_timeout,
        shutdown: shutdown.clone(),
    });
    let tasks = TaskTracker::new();
    accept::accept_loop(
        "socket",
        &listener,
        MAX_CONNECTIONS,
        &shutdown,
        &tasks,
        |socket| connection::handle(socket, shared.clone()),
    )
    .await;
    // Stop accepting, then let the tasks see the token (streams end).
    drop(listener);
    file.remove();
    tasks.close();
    tasks.wait().await;
    tracing::info!("socket protocol stopped");
}

/// The socket file, and which file it was when serving began: at shutdown
/// it is removed only if it is still that one (a newer server may own the
/// path by then).
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    fn new(path: PathBuf) -> Self {
        let identity = Self::identity_of(&path);
        Self { path, identity }
    }

    fn identity_of(path: &Path) -> Option<(u64, u64)> {
        std::fs::symlink_metadata(path)
            .ok()
            .filter(|metadata| metadata.file_type().is_socket())
            .map(|metadata| (metadata.dev(), metadata.ino()))
    }

    fn remove(&self) {
        if self.identity.is_none() || Self::identity_of(&self.path) != self.identity {
            tracing::debug!(path = %self.path.display(), "socket file replaced or gone; left alone");
            return;
        }
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "cannot remove the socket file");
        }
    }
}
