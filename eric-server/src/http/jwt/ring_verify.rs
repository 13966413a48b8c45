//! RS256 and ES256 signature checks on `ring`, for `jsonwebtoken`.
//!
//! `jsonwebtoken`'s RustCrypto backend checks an RS256 signature in about
//! 180 µs and an ES256 one in about 350 µs on this project's machine
//! (`BENCHMARKS.md`): most of a first stream open with such a token. `ring`
//! is in the build already (rustls uses it) and does both several times
//! faster. `jsonwebtoken` takes a process-wide crypto provider; this one is
//! its RustCrypto provider with these two checks replaced, so HS256,
//! signing (`eric token`) and JWK handling stay as they were. `aws-lc-rs`,
//! `jsonwebtoken`'s other backend, would bring a C build.

use std::sync::OnceLock;

use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, rust_crypto};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};

static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();

fn ours() -> &'static CryptoProvider {
    PROVIDER.get_or_init(|| CryptoProvider {
        verifier_factory: verifier,
        ..rust_crypto::DEFAULT_PROVIDER.clone()
    })
}

/// Makes this provider `jsonwebtoken`'s, unless a provider was chosen
/// already (a first use of `jsonwebtoken` fixes its default): then the
/// checks stay RustCrypto's, as correct and slower. The server installs it
/// before anything else uses `jsonwebtoken`.
pub(super) fn install() {
    let _ = ours().install_default();
}

/// Whether `ring` checks RS256 and ES256 signatures in this process.
pub(super) fn installed() -> bool {
    CryptoProvider::try_get_default().is_some_and(|current| std::ptr::eq(current, ours()))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let family = match algorithm {
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        _ => return (rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key),
    };
    // A key of another family never checks this algorithm's signatures
    // (the HS/RS confusion).
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key: key.clone(),
    }))
}

struct RingVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), SignatureError> {
        let checked = match (self.algorithm, self.key.kind()) {
            (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).verify(message, signature)
            }
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => {
                RsaPublicKeyComponents { n, e }.verify(
                    &RSA_PKCS1_2048_8192_SHA256,
                    message,
                    signature,
                )
            }
            // The uncompressed point, as `jsonwebtoken` keeps P-256 keys.
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, signature)
            }
            _ => return Err(SignatureError::new()),
        };
        checked.map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
