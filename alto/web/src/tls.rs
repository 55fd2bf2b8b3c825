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

/// The server's side of TLS: its certificate chain and key, reloadable, and the CA whose
/// client certificates it verifies, if any (RFC 7285 §8.3.5: "TLS Client Authentication is
/// the preferred mechanism").
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    config: RwLock<Arc<ServerConfig>>,
}

/// The paths it was loaded from, no key material.
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("client_ca", &self.client_ca)
            .finish_non_exhaustive()
    }
}

/// A request's connection presented a client certificate that the server's client CA
/// verified (a request extension; absent otherwise).
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub CertificateDer<'static>);

impl ServerTls {
    /// Reads the certificate chain (`cert`, PEM, the server's certificate first) and its
    /// private key (`key`, PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Self::with_client_ca(cert, key, None)
    }

    /// [`ServerTls::load`], also asking clients for a certificate and verifying one
    /// against the CA certificates in `client_ca` (PEM). A client without one is served
    /// too; the resources that require one refuse it ([`ClientCertificate`]).
    pub fn with_client_ca(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let config = server_config(cert, key, client_ca)?;
        Ok(ServerTls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            client_ca: client_ca.map(Path::to_owned),
            config: RwLock::new(config),
        })
    }

    /// Reads the files again; on any defect the current configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert, &self.key, self.client_ca.as_deref())?;
        *self.config.write().expect("tls lock") = config;
        Ok(())
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.read().expect("tls lock").clone()
    }
}

fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    let builder = ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for c in read_certs(path)? {
                roots.add(c).map_err(|e| file_error(path, e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| file_error(path, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration verifying servers against the CA certificates in `ca` (PEM), or,
/// without one, against the system's roots.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_as(ca, None)
}

/// [`client_config`], presenting the client certificate chain and key `identity` (PEM
/// files) to servers that ask for one.
pub fn client_config_as(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
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
    let builder = ClientConfig::builder().with_root_certificates(roots);
    Ok(Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
            builder.with_client_auth_cert(chain, key)?
        }
    }))
}

static DEFAULT_CA: OnceLock<PathBuf> = OnceLock::new();
static DEFAULT_IDENTITY: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

/// Makes `ca` the CA that clients of this process verify servers against when not told
/// otherwise (a binary's `--alto-ca`); before any client is made.
pub fn set_default_ca(ca: &Path) -> Result<(), TlsError> {
    client_config(Some(ca))?;
    // Under the lock that `default_client_config` builds under: a default made at the same
    // time from the old settings cannot be cached after this reset.
    let mut slot = DEFAULT_CONFIG.write().expect("tls lock");
    DEFAULT_CA
        .set(ca.to_owned())
        .map_err(|_| TlsError::AlreadySet)?;
    *slot = None;
    Ok(())
}

/// Makes the certificate chain `cert` and key `key` (PEM) what clients of this process
/// present to servers that ask for a client certificate (a binary's `--alto-client-cert`
/// and `--alto-client-key`); before any client is made.
pub fn set_default_identity(cert: &Path, key: &Path) -> Result<(), TlsError> {
    client_config_as(DEFAULT_CA.get().map(PathBuf::as_path), Some((cert, key)))?;
    let mut slot = DEFAULT_CONFIG.write().expect("tls lock");
    DEFAULT_IDENTITY
        .set((cert.to_owned(), key.to_owned()))
        .map_err(|_| TlsError::AlreadySet)?;
    *slot = None;
    Ok(())
}

/// The clients' default configuration, made on first use and again after a setter.
static DEFAULT_CONFIG: RwLock<Option<Arc<ClientConfig>>> = RwLock::new(None);

/// The clients' default: the CA of [`set_default_ca`], else of the `ALTO_CA` environment
/// variable, else the system's roots (clients made before a setter keep the old one). When none can be read the reason is logged once and
/// the roots are empty: every `https://` request then fails verification, none goes
/// unverified.
pub fn default_client_config() -> Arc<ClientConfig> {
    if let Some(c) = DEFAULT_CONFIG.read().expect("tls lock").as_ref() {
        return c.clone();
    }
    // Made under the write lock, so that a setter's reset cannot fall between reading the
    // settings and caching what was made of them.
    let mut slot = DEFAULT_CONFIG.write().expect("tls lock");
    if let Some(c) = slot.as_ref() {
        return c.clone();
    }
    let made = {
        let ca = DEFAULT_CA
            .get()
            .cloned()
            .or_else(|| std::env::var_os("ALTO_CA").map(PathBuf::from));
        let identity = DEFAULT_IDENTITY
            .get()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        client_config_as(ca.as_deref(), identity).unwrap_or_else(|e| {
            tracing::warn!("https servers cannot be verified by this process: {e}");
            Arc::new(
                ClientConfig::builder()
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth(),
            )
        })
    };
    *slot = Some(made.clone());
    made
}
