//! TLS on the public listener: rustls with the `ring` provider, TLS 1.2 and 1.3 only, the
//! certificate chain and private key read from PEM files. [`ServerTls::reload`] reads
//! them again (`tessera serve` does on SIGHUP): each handshake asks the resolver for the
//! key current at that moment, so new connections get the new certificate while open ones
//! keep the session they negotiated. A reload that fails changes nothing.
//!
//! Errors name the file and what is wrong with it, never its contents: a PEM parser's
//! message may quote the offending line, which for the key file is key material.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM `CERTIFICATE` block, or a malformed one.
    #[error("{} holds no readable PEM certificate", .path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no PEM private key, or a malformed one.
    #[error(
        "{} holds no readable PEM private key (PKCS#8, PKCS#1 or SEC1)",
        .path.display()
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is of a kind rustls cannot sign with.
    #[error(
        "the private key in {} is not an RSA, ECDSA or Ed25519 key rustls can use",
        .path.display()
    )]
    UnusableKey {
        /// The key file.
        path: PathBuf,
    },
    /// The key does not belong to the first certificate of the chain.
    #[error(
        "the private key in {} does not match the certificate in {}",
        .key.display(),
        .certificate.display()
    )]
    KeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the configuration.
    #[error("cannot configure TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The public listener's TLS: the acceptor handshakes use, and the files it reloads from.
#[derive(Clone)]
pub struct ServerTls {
    certificates: Arc<CertificateFiles>,
    acceptor: TlsAcceptor,
}

impl ServerTls {
    /// Reads the certificate chain (leaf first) and private key from PEM files and builds
    /// the acceptor: TLS 1.3 and 1.2, ALPN `h2` and `http/1.1`, no client certificates.
    pub fn load(
        certificate_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate_file = certificate_file.into();
        let key_file = key_file.into();
        let current = read_certified_key(&certificate_file, &key_file, &provider)?;
        let certificates = Arc::new(CertificateFiles {
            certificate_file,
            key_file,
            provider: Arc::clone(&provider),
            current: ArcSwap::from_pointee(current),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certificates) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            certificates,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Reads both files again and, if they make a usable certificate and key, serves them
    /// to every handshake from now on. On error the previous ones stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = &self.certificates;
        let fresh = read_certified_key(&files.certificate_file, &files.key_file, &files.provider)?;
        files.current.store(Arc::new(fresh));
        Ok(())
    }

    /// The certificate chain's file.
    pub fn certificate_file(&self) -> &Path {
        &self.certificates.certificate_file
    }

    /// The private key's file.
    pub fn key_file(&self) -> &Path {
        &self.certificates.key_file
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.certificates, f)
    }
}

/// The files and the certificate and key last read from them.
struct CertificateFiles {
    certificate_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for CertificateFiles {
    // Paths only: never anything of the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateFiles")
            .field("certificate_file", &self.certificate_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertificateFiles {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn read_certified_key(
    certificate_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let no_certificate = || TlsError::NoCertificate {
        path: certificate_file.to_owned(),
    };
    let chain = CertificateDer::pem_slice_iter(&read(certificate_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| no_certificate())?;
    if chain.is_empty() {
        return Err(no_certificate());
    }
    let key =
        PrivateKeyDer::from_pem_slice(&read(key_file)?).map_err(|_| TlsError::NoPrivateKey {
            path: key_file.to_owned(),
        })?;
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|_| TlsError::UnusableKey {
                path: key_file.to_owned(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                certificate: certificate_file.to_owned(),
                key: key_file.to_owned(),
            })
        }
        // The key cannot tell its public half: nothing to compare, as rustls itself does.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        // A certificate rustls cannot parse would fail every handshake: refuse it now.
        Err(_) => Err(no_certificate()),
    }
}
