//! TLS to PostgreSQL on rustls, with libpq's meanings of `sslmode` and `sslrootcert`:
//!
//! | `sslmode` | encrypted | certificate checked |
//! | --- | --- | --- |
//! | `disable` | no | – |
//! | `prefer` (default) | if the server offers TLS | like `require` |
//! | `require` | yes | no; with `sslrootcert`, the chain (libpq: a root file makes it `verify-ca`) |
//! | `verify-ca` | yes | the chain, up to a root of `sslrootcert` (else the system's) |
//! | `verify-full` | yes | the chain and the host name (DNS names and IP addresses) |
//!
//! Without `sslrootcert` the verifying modes trust the system's root certificates
//! (libpq would read `~/.postgresql/root.crt`); `sslrootcert=system` says so explicitly and,
//! as in libpq, needs `verify-full`.
//!
//! - `verify`: the certificate check each mode asks for.
//! - `connect`: the [`tokio_postgres::tls::MakeTlsConnect`] over tokio-rustls, and the words
//!   of a refused certificate.
//! - `binding`: SCRAM channel binding (`SCRAM-SHA-256-PLUS`), which ties the password
//!   exchange to this TLS session.
mod binding;
mod connect;
mod verify;

pub use connect::{Handshake, RustlsConnect, RustlsStream, TlsError};

use crate::config::PgConfigError;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, else plain.
    Prefer,
    /// TLS; the certificate is checked only against an `sslrootcert`.
    Require,
    /// TLS; the chain is checked, the host name is not.
    VerifyCa,
    /// TLS; the chain and the host name are checked.
    VerifyFull,
}

impl SslMode {
    /// The mode named `value`, as libpq spells it.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// Its libpq name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres negotiates: it knows whether to ask for TLS, not what to check.
    pub(crate) fn for_tokio_postgres(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `sslrootcert`: where the trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of CA certificates (e.g. the AWS RDS bundle).
    File(PathBuf),
    /// `system`: the system's root certificates.
    System,
}

/// The TLS half of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`, if given.
    pub root_cert: Option<RootCert>,
}

impl TlsSettings {
    /// The connector these settings ask for: reads the CA file (or the system's roots) now,
    /// so a missing file is an error at start, not at the first connection. With
    /// `sslmode=disable` tokio-postgres never calls it.
    pub fn connector(&self) -> Result<RustlsConnect, PgConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let check_chain = match self.mode {
            SslMode::Disable => false,
            SslMode::Prefer | SslMode::Require => self.root_cert.is_some(),
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        };
        let (roots, trusted_by) = match (&self.root_cert, check_chain) {
            (_, false) => (None, "nothing (the certificate is not checked)".to_owned()),
            (Some(RootCert::File(path)), true) => (
                Some(file_roots(path)?),
                format!("the CA file {} (sslrootcert)", path.display()),
            ),
            (Some(RootCert::System) | None, true) => (
                Some(system_roots(self.mode)?),
                "the system's root certificates".to_owned(),
            ),
        };
        let verifier = verify::Verifier::new(
            roots.map(Arc::new),
            self.mode == SslMode::VerifyFull,
            provider.signature_verification_algorithms,
        );
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(PgConfigError::Tls)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // What libpq 17 sends; servers before 17 ignore it, and 17's direct TLS requires it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(RustlsConnect::new(Arc::new(config), trusted_by))
    }
}

/// The CA certificates of a PEM file. Certificates webpki cannot use as trust anchors are
/// skipped, as OpenSSL skips them in a bundle; a file with none usable is an error.
fn file_roots(path: &Path) -> Result<RootCertStore, PgConfigError> {
    let pem = std::fs::read(path).map_err(|source| PgConfigError::RootCertRead {
        path: path.to_owned(),
        source,
    })?;
    let content = |reason: String| PgConfigError::RootCertContent {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("not a PEM file of certificates ({e})")))?;
    if certs.is_empty() {
        return Err(content(
            "no certificate in the file (expected PEM: -----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(content(format!(
            "none of its {ignored} certificate(s) is usable as a CA certificate"
        )));
    }
    Ok(store)
}

/// The system's root certificates (rustls-native-certs: the OpenSSL locations on Linux).
fn system_roots(mode: SslMode) -> Result<RootCertStore, PgConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        let reason = if found.errors.is_empty() {
            "no certificates found".to_owned()
        } else {
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            errors.join("; ")
        };
        return Err(PgConfigError::NoSystemRoots { mode, reason });
    }
    Ok(store)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(mode: SslMode, path: &Path) -> TlsSettings {
        TlsSettings {
            mode,
            root_cert: Some(RootCert::File(path.to_owned())),
        }
    }

    #[test]
    fn a_missing_ca_file_is_an_error_naming_sslrootcert_and_the_file() {
        let err = settings(SslMode::VerifyFull, Path::new("/nonexistent/ca.pem"))
            .connector()
            .unwrap_err();
        assert!(matches!(err, PgConfigError::RootCertRead { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("sslrootcert=/nonexistent/ca.pem") && text.contains("cannot read"),
            "{text}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = settings(SslMode::Require, &path).connector().unwrap_err();
        assert!(err.to_string().contains("no certificate in the file"), "{err}");
    }

    #[test]
    fn modes_that_check_nothing_read_no_roots() {
        // Not even the system's: `require` without a root file works where there are none.
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require] {
            let tls = TlsSettings { mode, root_cert: None };
            tls.connector().unwrap();
        }
    }

    #[test]
    fn disable_ignores_the_ca_file() {
        settings(SslMode::Disable, Path::new("/nonexistent/ca.pem"))
            .connector()
            .unwrap();
    }
}
