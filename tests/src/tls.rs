//! A throw-away PKI for TLS tests: a CA and a server certificate for
//! `localhost` and 127.0.0.1 signed by it (rcgen), written as PEM files in a
//! temp dir: `cert.pem` (chain), `key.pem` (server key) and `ca.pem` (what
//! a client passes to `--ca-file`).

use std::path::PathBuf;

/// The files of a generated CA and server certificate.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    /// Generates and writes the files.
    ///
    /// # Panics
    ///
    /// When generation or writing fails.
    pub fn new() -> Self {
        let fail = |e: &dyn std::fmt::Display| -> ! { panic!("test PKI: {e}") };
        let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(&e));
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(&e));
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Hush test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap_or_else(|e| fail(&e));
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail(&e));
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap_or_else(|e| fail(&e));
        let cert = params.signed_by(&key, &issuer).unwrap_or_else(|e| fail(&e));
        let dir = crate::temp_dir("hush-pki-");
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| fail(&e));
        };
        write("cert.pem", format!("{}{}", cert.pem(), ca.pem()));
        write("key.pem", key.serialize_pem());
        write("ca.pem", ca.pem());
        Self { dir }
    }

    /// The server's certificate chain.
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The server's private key.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The CA certificate clients trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
