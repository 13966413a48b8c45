//! [`Relay`]: one address in front of the nodes, as a load balancer is.
//! Each connection it accepts goes to its current target; [`Relay::cut`]
//! drops every open connection at once, as a node that crashes does (the
//! bytes in flight are lost), and [`Relay::point_at`] sends new connections
//! elsewhere.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    cuts: watch::Sender<u64>,
    /// Connections it has accepted.
    accepted: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// A relay on a free loopback port, to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(target));
        let (cuts, cut) = watch::channel(0);
        let accepted = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(accept(listener, target.clone(), cut, accepted.clone()));
        Self {
            addr,
            target,
            cuts,
            accepted,
            accept,
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Drops every connection open through it.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Sends new connections to `target`.
    pub fn point_at(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn accept(
    listener: TcpListener,
    target: Arc<Mutex<SocketAddr>>,
    cut: watch::Receiver<u64>,
    accepted: Arc<AtomicUsize>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        accepted.fetch_add(1, Ordering::Relaxed);
        let to = *target.lock().unwrap();
        let mut cut = cut.clone();
        cut.mark_unchanged();
        tokio::spawn(async move {
            // A target that is down: the client sees its connection close.
            let Ok(mut outbound) = TcpStream::connect(to).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
