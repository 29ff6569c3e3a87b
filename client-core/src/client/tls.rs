//! TLS for `wss://` relays (rustls with the `ring` provider, the system's
//! roots plus an optional CA file), and the words for a connection that
//! could not be opened.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tracing::debug;

use super::ClientError;
use super::url::{DEFAULT_RELAY_PORT, has_port, host_of};

/// Why a WebSocket connection could not be opened, in words a user can act
/// on: a refused connection to a URL without a port names the port tried
/// and the relay's default; a `wss://` URL answered by a plain (non-TLS)
/// relay says so instead of the TLS library's "corrupt message".
pub(super) fn connect_failure(url: &str, e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let tls = url.starts_with("wss://");
    if let WsError::Io(io) = e {
        if tls && io_is_plain_text_reply(io) {
            return format!(
                "the relay does not speak TLS here; use ws://{} ({e})",
                host_of(url)
            );
        }
        if io.kind() == std::io::ErrorKind::ConnectionRefused && !has_port(url) {
            let (tried, scheme) = if tls { (443, "wss") } else { (80, "ws") };
            return format!(
                "connection refused; no port given, so port {tried} was tried; the relay's \
                 default is {DEFAULT_RELAY_PORT} ({scheme}://{}:{DEFAULT_RELAY_PORT})",
                host_of(url)
            );
        }
    }
    if tls && e.to_string().contains("InvalidContentType") {
        return format!(
            "the relay does not speak TLS here; use ws://{} ({e})",
            host_of(url)
        );
    }
    e.to_string()
}

/// A TLS handshake answered with something that is not TLS at all (an
/// HTTP reply from a plain WebSocket server).
fn io_is_plain_text_reply(io: &std::io::Error) -> bool {
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
            )
        })
}

/// The system's trusted roots, read once per process.
fn system_roots() -> &'static [rustls_pki_types::CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<rustls_pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            debug!(error = %e, "a system root certificate could not be read");
        }
        found.certs
    })
}

/// The rustls client configuration for `wss://`: TLS 1.2 and 1.3 with the
/// `ring` provider, trusting the system's roots plus the certificates of
/// `ca_file` (PEM), if given.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = ca_file {
        let bad = |e: &dyn std::fmt::Display| {
            ClientError::Tls(format!("CA file {}: {e}", path.display()))
        };
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(bad(&"no CERTIFICATE block in the file"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(&e))?;
        }
    }
    if roots.is_empty() {
        return Err(ClientError::Tls(
            "no trusted root certificates (none in the system store, no CA file given)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
