//! A server running inside a test's process (feature `test-support`), for
//! the tests of the crates that talk to it: the client library, the
//! command line, the load tool; and [`TestCerts`], certificates made at
//! test time for TLS. Failing to start or stop is a test failure, so these
//! panic with what went wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, PublicKeyData,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

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

/// The default configuration, serving HTTP on `addr`, in memory (tests
/// run side by side; a data directory is one process's).
pub fn config_on(addr: SocketAddr) -> Config {
    let mut config = Config::default();
    config.http.addr = addr;
    config.storage.engine = crate::StorageEngine::Memory;
    config
}

/// A certificate authority made at test time, and the server certificate
/// it issued last (for `localhost` and `127.0.0.1`), as the PEM files
/// `http.tls_cert` and `http.tls_key` name, with the CA's certificate in a
/// third (what a client is told to trust, `--ca-file`), in a directory
/// removed on drop.
#[derive(Debug)]
pub struct TestCerts {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The SubjectPublicKeyInfo (DER) of the server certificate issued last.
    spki: Mutex<Vec<u8>>,
}

impl TestCerts {
    /// A new CA, and a first server certificate in the files.
    ///
    /// # Panics
    ///
    /// When the files cannot be written.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "eric test CA");
        let key = KeyPair::generate().expect("a CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("a CA certificate");
        let certs = Self {
            dir: tempfile::tempdir().expect("a directory for the certificates"),
            ca,
            spki: Mutex::default(),
        };
        write(&certs.ca_path(), certs.ca_pem().as_bytes());
        certs.issue();
        certs
    }

    /// The CA's certificate file (PEM): what a client trusts.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// The certificate chain file (`http.tls_cert`).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The key file (`http.tls_key`).
    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// Issues a new server certificate, with a new key, into the files;
    /// returns it (what a client then sees, once the server read it).
    ///
    /// # Panics
    ///
    /// When the files cannot be written.
    pub fn issue(&self) -> CertificateDer<'static> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let params = CertificateParams::new(names).expect("server parameters");
        let key = KeyPair::generate().expect("a server key");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("a server certificate");
        write(&self.cert_path(), cert.pem().as_bytes());
        write(&self.key_path(), key.serialize_pem().as_bytes());
        *self.spki.lock().expect("the SPKI lock") = key.subject_public_key_info();
        cert.der().clone()
    }

    /// The SubjectPublicKeyInfo (DER) of the server certificate issued
    /// last: what a client that pins keys rather than trusting the CA
    /// hashes (chromium's `--ignore-certificate-errors-spki-list` takes
    /// its SHA-256).
    ///
    /// # Panics
    ///
    /// Never: no lock holder panics.
    pub fn server_spki(&self) -> Vec<u8> {
        self.spki.lock().expect("the SPKI lock").clone()
    }

    /// A server configuration serving the certificate in the files,
    /// offering `alpn`: for a test's own TLS server (a page a browser
    /// loads from the same site as eric).
    ///
    /// # Panics
    ///
    /// When the files cannot be read.
    pub fn server_config(&self, alpn: &[&[u8]]) -> rustls::ServerConfig {
        let chain = CertificateDer::pem_file_iter(self.cert_path())
            .expect("the certificate file")
            .collect::<std::result::Result<Vec<_>, _>>()
            .expect("the certificate chain");
        let key = PrivateKeyDer::from_pem_file(self.key_path()).expect("the key file");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the certificate and its key");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// A client configuration trusting this CA, offering `alpn`.
    ///
    /// # Panics
    ///
    /// Never for a CA made here.
    pub fn client_config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("the CA as a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// A TLS connection to `addr` (as `localhost`), offering `alpn`.
    ///
    /// # Panics
    ///
    /// When the connection or the handshake fails.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        alpn: &[&[u8]],
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.client_config(alpn)));
        let tcp = TcpStream::connect(addr).await.expect("a TCP connection");
        let name = ServerName::try_from("localhost").expect("a server name");
        connector.connect(name, tcp).await.expect("a TLS handshake")
    }

    /// `config` serving TLS with these files.
    pub fn serve_with(&self, mut config: Config) -> Config {
        config.http.tls_cert = Some(self.cert_path());
        config.http.tls_key = Some(self.key_path());
        config
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        Self::new()
    }
}

/// Replaces `path` whole: a reader sees the old file or the new one.
fn write(path: &Path, bytes: &[u8]) {
    let next = path.with_extension("new");
    std::fs::write(&next, bytes).expect("a certificate file written");
    std::fs::rename(&next, path).expect("a certificate file replaced");
}
