//! A server running inside a test's process (feature `test-support`), for
//! the tests of the crates that talk to it: the client library, the
//! command line, the load tool. Failing to start or stop is a test failure,
//! so these panic with what went wrong.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Config, Result, Server};

/// Longest a stopping server may take to let go of its port.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// A server serving on a task of the test's runtime.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<()>>,
}

impl TestServer {
    /// Binds `config` (its address may be port 0) and serves it.
    ///
    /// # Panics
    ///
    /// When the server cannot bind.
    pub async fn start(config: Config) -> Self {
        let server = Server::bind(config).await.expect("the test server binds");
        let addr = server.http_addr().expect("the test server's address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// The in-memory engine on a free loopback port.
    pub async fn memory() -> Self {
        Self::start(config_on(SocketAddr::from(([127, 0, 0, 1], 0)))).await
    }

    /// The HTTP address it serves.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down and waits until the server has let go of its port.
    ///
    /// # Panics
    ///
    /// When it does not stop in time, or stops with an error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(STOP_DEADLINE, self.task)
            .await
            .expect("the test server stops in time")
            .expect("the test server's task ends without panicking")
            .expect("the test server stops without an error");
    }
}

/// The default configuration, serving HTTP on `addr`.
pub fn config_on(addr: SocketAddr) -> Config {
    let mut config = Config::default();
    config.http.addr = addr;
    config
}
