//! TLS for every server and client of the workspace (RFC 7285 §8.3.5: ALTO servers and
//! clients "MUST support the "https" URI scheme and TLS"), with rustls.
//!
//! - [`ServerTls`]: a certificate chain and key read from PEM files, read again on
//!   [`ServerTls::reload`] (the ALTO server does on `SIGHUP`, with its maps); connections
//!   opened after a reload get the new certificate, those open keep theirs.
//! - [`client_config`]: what clients verify servers against: the CA certificates of a PEM
//!   file, or else the system's roots. Verification cannot be switched off.
//! - The process's default for clients ([`set_default_ca`], or the `ALTO_CA` environment
//!   variable), which [`crate::client::http_client`] uses unless told otherwise.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

/// Why TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// rustls refused the certificate and key (a key that does not match, say).
    #[error("the certificate and key cannot be used: {0}")]
    Config(#[from] rustls::Error),
    /// The system's roots could not be read, and no CA was given.
    #[error("no CA certificates: none given and the system's cannot be read ({0})")]
    NoRoots(String),
    /// The process's default CA was set twice.
    #[error("the default CA is set already")]
    AlreadySet,
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// The certificates of a PEM file, at least one.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no CERTIFICATE in the file"));
    }
    Ok(certs)
}

/// The server's side of TLS: its certificate chain and key, reloadable.
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Reads the certificate chain (`cert`, PEM, the server's certificate first) and its
    /// private key (`key`, PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let config = server_config(cert, key)?;
        Ok(ServerTls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            config: RwLock::new(config),
        })
    }

    /// Reads both files again; on any defect the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key)?;
        *self.config.write().expect("tls lock") = config;
        Ok(())
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.read().expect("tls lock").clone()
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration verifying servers against the CA certificates in `ca` (PEM), or,
/// without one, against the system's roots.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for c in read_certs(path)? {
                roots.add(c).map_err(|e| file_error(path, e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map_or("none found".to_owned(), |e| e.to_string());
                return Err(TlsError::NoRoots(why));
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    // No ALPN here: the HTTP client sets it (http/1.1).
    Ok(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

static DEFAULT_CA: OnceLock<PathBuf> = OnceLock::new();

/// Makes `ca` the CA that clients of this process verify servers against when not told
/// otherwise (a binary's `--alto-ca`); before any client is made.
pub fn set_default_ca(ca: &Path) -> Result<(), TlsError> {
    client_config(Some(ca))?;
    DEFAULT_CA
        .set(ca.to_owned())
        .map_err(|_| TlsError::AlreadySet)
}

/// The clients' default: the CA of [`set_default_ca`], else of the `ALTO_CA` environment
/// variable, else the system's roots. When none can be read the reason is logged once and
/// the roots are empty: every `https://` request then fails verification, none goes
/// unverified.
pub fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let ca = DEFAULT_CA
                .get()
                .cloned()
                .or_else(|| std::env::var_os("ALTO_CA").map(PathBuf::from));
            client_config(ca.as_deref()).unwrap_or_else(|e| {
                tracing::warn!("https servers cannot be verified by this process: {e}");
                Arc::new(
                    ClientConfig::builder()
                        .with_root_certificates(RootCertStore::empty())
                        .with_no_client_auth(),
                )
            })
        })
        .clone()
}
