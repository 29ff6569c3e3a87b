//! TLS for the relay's listener (`wss://`, `https://`): rustls with the
//! `ring` provider, TLS 1.2 and 1.3, ALPN `http/1.1` (WebSocket upgrades
//! are HTTP/1.1). Certificates and keys are read as PEM with
//! `rustls-pki-types`.
//!
//! Each handshake runs in its connection's own task, within the
//! pre-upgrade deadline (`upgrade_timeout`, see `crate::accept`), so a
//! client that stalls its handshake delays nobody else.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Why the TLS files cannot be used. Names the option and the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("option `{option}`: {path}: {reason}")]
    File {
        /// `tls_cert` or `tls_key`.
        option: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the certificate and key together.
    #[error("options `tls_cert` and `tls_key`: {0}")]
    Rustls(#[from] rustls::Error),
}

fn file_error(option: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        option,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The rustls server configuration for `files`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error("tls_cert", &files.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error("tls_cert", &files.cert, e))?;
    if certs.is_empty() {
        return Err(file_error(
            "tls_cert",
            &files.cert,
            "no CERTIFICATE block in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_error("tls_key", &files.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
