//! TLS for every HTTP client of the workspace: rustls on the `ring`
//! crypto provider, trusting the system's roots plus, optionally, a
//! private CA's certificates ([`CaCertificates`], `--ca-file`).
//!
//! reqwest is built with `rustls-no-provider`, not its default `rustls`
//! feature: that one brings aws-lc-rs, whose C/cmake build would dominate
//! a clean build on a small machine, while the server already uses `ring`.
//! Without a provider of its own, reqwest panics when a client is built
//! before a process-wide one is installed, so every client of the
//! workspace is built from [`http_client_builder`], which installs `ring`
//! first.

use std::path::{Path, PathBuf};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Error, Result};

/// Certificates to trust beyond the system's roots: a private CA's, read
/// from PEM. Cheap to clone, so one read serves many clients (the load
/// tool builds one per connection).
///
/// ```no_run
/// # fn main() -> eric_client::Result<()> {
/// let ca = eric_client::CaCertificates::read("/etc/eric/ca.pem")?;
/// let client = eric_client::Client::builder("https://eric.internal:8443")
///     .ca_certificates(ca)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CaCertificates {
    certs: Vec<reqwest::Certificate>,
}

impl CaCertificates {
    /// The certificates in `pem` (one or more `CERTIFICATE` blocks; other
    /// blocks are skipped). Fails if none is there, or one is not a
    /// certificate a root can be made of.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        Self::parse(pem, None)
    }

    /// The certificates in the PEM file at `path`, as [`from_pem`]
    /// reads them.
    ///
    /// It reads the file with a blocking call: a small file, once, while
    /// a client is set up (as reqwest reads the system's roots when it
    /// builds a client). An async caller that builds many clients reads
    /// it once with [`load`](Self::load).
    ///
    /// [`from_pem`]: Self::from_pem
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| unreadable(path, &e))?;
        Self::parse(&pem, Some(path))
    }

    /// [`read`](Self::read) without blocking the runtime.
    pub async fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let pem = tokio::fs::read(path)
            .await
            .map_err(|e| unreadable(path, &e))?;
        Self::parse(&pem, Some(path))
    }

    fn parse(pem: &[u8], path: Option<&Path>) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidCa {
            path: path.map(Path::to_path_buf),
            reason,
        };
        let ders = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("not PEM: {e}")))?;
        if ders.is_empty() {
            return Err(invalid("holds no PEM CERTIFICATE".to_owned()));
        }
        // reqwest would refuse a certificate that cannot be a trust anchor
        // only when a client is built, as a builder error naming no file:
        // checked here, where the file is known.
        let mut roots = rustls::RootCertStore::empty();
        let mut certs = Vec::with_capacity(ders.len());
        for (n, der) in ders.into_iter().enumerate() {
            let nth = n + 1;
            roots
                .add(der.clone())
                .map_err(|e| invalid(format!("certificate {nth}: {e}")))?;
            let cert = reqwest::Certificate::from_der(der.as_ref())
                .map_err(|e| invalid(format!("certificate {nth}: {e}")))?;
            certs.push(cert);
        }
        Ok(Self { certs })
    }

    /// How many certificates there are.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether there are none (never, for a value made by this type).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

fn unreadable(path: &Path, error: &std::io::Error) -> Error {
    Error::InvalidCa {
        path: Some(PathBuf::from(path)),
        reason: format!("cannot be read: {error}"),
    }
}

/// Installs rustls's `ring` provider as the process's default, unless one
/// is installed already; every reqwest client of the process then uses it.
/// [`http_client_builder`] calls it: call it yourself only to build a
/// reqwest client some other way.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // An error means another thread installed one in between: that
        // one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A reqwest client builder whose TLS is the workspace's: the `ring`
/// provider (installed here), and as roots the system's plus `ca`.
///
/// `tls` says whether the client will reach `https:` URLs. A client that
/// will not (`http:` only) loads no system roots: building one then costs
/// no reading of the system's certificate store, and works where there is
/// none (a container image without `ca-certificates`); it trusts `ca`
/// alone, should it ever be redirected to `https:`.
pub fn http_client_builder(ca: Option<&CaCertificates>, tls: bool) -> reqwest::ClientBuilder {
    install_crypto_provider();
    let builder = reqwest::Client::builder();
    let certs = ca.map(|ca| ca.certs.clone()).unwrap_or_default();
    if tls {
        builder.tls_certs_merge(certs)
    } else {
        builder.tls_certs_only(certs)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pem_without_a_certificate_is_refused() {
        let error = CaCertificates::from_pem(b"no pem here").unwrap_err();
        assert!(error.to_string().contains("no PEM CERTIFICATE"), "{error}");
        let bogus = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = CaCertificates::from_pem(bogus).unwrap_err();
        assert!(error.to_string().contains("certificate 1"), "{error}");
        assert!(matches!(error, Error::InvalidCa { path: None, .. }));
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = CaCertificates::read("/nonexistent/eric-ca.pem").unwrap_err();
        let line = error.to_string();
        assert!(line.contains("/nonexistent/eric-ca.pem"), "{line}");
        assert!(line.contains("cannot be read"), "{line}");
    }

    #[test]
    fn clients_build_on_the_ring_provider() {
        // Without an installed provider reqwest would panic here.
        http_client_builder(None, false).build().unwrap();
        http_client_builder(None, true).build().unwrap();
    }
}
