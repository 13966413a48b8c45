//! [`Tls`]: TLS on the HTTP port, with a certificate that can be replaced
//! while connections go on.
//!
//! The certificate chain and its key are PEM files (`http.tls_cert`,
//! `http.tls_key`), read when the server binds (a file that cannot be
//! used stops the start, naming it) and again on each reload: SIGHUP, or
//! [`Tls::reload`]. A connection takes the configuration that is current
//! when its handshake starts and keeps it, so a reload changes only the
//! connections accepted after it; streams already open go on. A reload
//! that fails (a file missing, not PEM, a key that does not fit the
//! certificate) changes nothing: the previous pair keeps serving.
//!
//! ALPN offers `h2` first, then `http/1.1`. The crypto is rustls's `ring`
//! provider (no C or cmake build of a crypto library).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The protocols offered in ALPN, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TLS settings of the HTTP port (cheap to clone: clones share the
/// certificate, and a reload through any of them serves all).
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    cert: PathBuf,
    key: PathBuf,
    /// Replaced whole by a reload. Read once per handshake; the lock is
    /// held only to clone the `Arc`, never across an await.
    current: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.inner.cert)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `cert` and `key`; [`Error::Tls`] names the file that cannot
    /// be used.
    pub(crate) async fn load(cert: &Path, key: &Path) -> Result<Self> {
        let config = server_config(cert, key).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                cert: cert.to_owned(),
                key: key.to_owned(),
                current: RwLock::new(Arc::new(config)),
            }),
        })
    }

    /// Reads the certificate and key files again; connections accepted
    /// from now on get them. On an error the previous pair stays.
    pub async fn reload(&self) -> Result<()> {
        let config = server_config(&self.inner.cert, &self.inner.key).await?;
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(config);
        Ok(())
    }

    /// An acceptor with the current certificate.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        let current = self
            .inner
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        TlsAcceptor::from(current.clone())
    }
}

/// The rustls configuration for `cert` and `key`.
async fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig> {
    let pem = read(cert).await?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, e))?;
    if chain.is_empty() {
        return Err(invalid(cert, "no PEM certificate in it"));
    }
    let pem = read(key).await?;
    let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| invalid(key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(cert, e))?
        .with_no_client_auth()
        // Checks that the key is the certificate's.
        .with_single_cert(chain, key_der)
        .map_err(|e| invalid(key, e))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A file's bytes, read off the runtime's threads.
async fn read(path: &Path) -> Result<Vec<u8>> {
    tokio::fs::read(path).await.map_err(|source| Error::Tls {
        path: path.to_owned(),
        source,
    })
}

fn invalid(path: &Path, cause: impl std::fmt::Display) -> Error {
    Error::Tls {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, cause.to_string()),
    }
}

/// Reloads `tls` on every SIGHUP until `shutdown`. The handler is
/// installed before this returns, so a SIGHUP sent once the server says it
/// serves reloads (SIGHUP's default action would end the process).
#[cfg(unix)]
pub(crate) fn reload_on_hangup(
    tls: Tls,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; TLS certificates will not reload");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            match tls.reload().await {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(error) => tracing::error!(
                    %error,
                    "SIGHUP: TLS certificate not reloaded; the previous one stays"
                ),
            }
        }
    }))
}

/// Without Unix signals, reloads come only through [`Tls::reload`].
#[cfg(not(unix))]
pub(crate) fn reload_on_hangup(
    _tls: Tls,
    _shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    None
}
