//! Settings of the PostgreSQL backend, and its URL taken apart.
use crate::tls::{RootCert, SslMode, TlsSettings};
use std::path::PathBuf;
use std::time::Duration;

/// How to reach PostgreSQL and how hard to try.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// A libpq-style URL, `postgres://user[:password]@host:port/db[?param=value&...]`, with
    /// libpq's `sslmode` (`disable`, `prefer` (the default), `require`, `verify-ca`,
    /// `verify-full`) and `sslrootcert` (a PEM file of CA certificates, or `system`); see
    /// [`crate::tls`].
    pub url: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long an operation keeps retrying transient faults before it gives up.
    pub retry_for: Duration,
    /// How long opening the warehouse tries to make its first connection. Shorter than
    /// `retry_for` on purpose: a host that does not resolve or refuses at start-up is a
    /// mistake to report in seconds, while a restart mid-run is worth riding out.
    pub connect_for: Duration,
    /// Apply migrations at open.
    pub migrate: bool,
}

impl PgConfig {
    /// Defaults for `url`: 4 connections, retries for 60 s (10 s for the first connection),
    /// migrate at open.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 4,
            retry_for: Duration::from_secs(60),
            connect_for: Duration::from_secs(10),
            migrate: true,
        }
    }
}

/// A PostgreSQL URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgConfigError {
    /// `sslmode` has a value libpq does not know.
    #[error("sslmode={value}: unknown value (expected disable, prefer, require, verify-ca or verify-full)")]
    SslMode {
        /// The value given.
        value: String,
    },
    /// `sslrootcert=system` with a mode that would not check the host name (libpq refuses
    /// it too: the system's roots vouch for names, not for a private CA's chain).
    #[error("sslrootcert=system needs sslmode=verify-full, not sslmode={mode}")]
    SystemRootsNeedVerifyFull {
        /// The mode given.
        mode: SslMode,
    },
    /// The `sslrootcert` file could not be read.
    #[error("sslrootcert={}: cannot read the CA file", path.display())]
    RootCertRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The `sslrootcert` file holds no usable CA certificate.
    #[error("sslrootcert={}: {reason}", path.display())]
    RootCertContent {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A verifying mode without `sslrootcert` trusts the system's roots, and there are none.
    #[error(
        "sslmode={mode} without sslrootcert trusts the system's root certificates, and none could be \
         loaded ({reason}); give the server's CA with sslrootcert=/path/ca.pem"
    )]
    NoSystemRoots {
        /// The mode given.
        mode: SslMode,
        /// What the loader said.
        reason: String,
    },
    /// The rest of the URL, as tokio-postgres reads it, is invalid.
    #[error("invalid PostgreSQL URL")]
    Url(#[source] tokio_postgres::Error),
    /// rustls refused the TLS settings.
    #[error("TLS settings refused by rustls")]
    Tls(#[source] rustls::Error),
}

/// A PostgreSQL URL taken apart: what tokio-postgres reads, and the TLS settings it does not
/// (it knows `sslmode=disable|prefer|require` only, and no `sslrootcert`).
#[derive(Debug, Clone)]
pub struct PgUrl {
    /// Everything but TLS, with tokio-postgres's `sslmode` set from [`PgUrl::tls`].
    pub pg: tokio_postgres::Config,
    /// `sslmode` and `sslrootcert`.
    pub tls: TlsSettings,
}

/// Reads `url`. `sslmode` and `sslrootcert` are taken out of a `postgres://` (or
/// `postgresql://`) URL's query and read here; everything else is tokio-postgres's. A
/// `key=value` connection string goes to tokio-postgres whole (its three modes, no CA file).
pub fn parse_url(url: &str) -> Result<PgUrl, PgConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        let pg: tokio_postgres::Config = url.parse().map_err(PgConfigError::Url)?;
        let mode = match pg.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        };
        return Ok(PgUrl {
            pg,
            tls: TlsSettings { mode, root_cert: None },
        });
    }
    let (rest, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root_cert, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => {
                let value = decode(value);
                mode = Some(SslMode::parse(&value).ok_or(PgConfigError::SslMode { value })?);
            }
            Some(("sslrootcert", value)) => {
                let value = decode(value);
                root_cert = Some(match value.as_str() {
                    "system" => RootCert::System,
                    _ => RootCert::File(PathBuf::from(value)),
                });
            }
            _ => kept.push(pair),
        }
    }
    // libpq: sslrootcert=system makes verify-full the default, and a weaker mode an error.
    let mode = match (mode, &root_cert) {
        (Some(mode), _) => mode,
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (None, _) => SslMode::Prefer,
    };
    if matches!(root_cert, Some(RootCert::System)) && mode != SslMode::VerifyFull {
        return Err(PgConfigError::SystemRootsNeedVerifyFull { mode });
    }
    let rest = if kept.is_empty() {
        rest.to_owned()
    } else {
        format!("{rest}?{}", kept.join("&"))
    };
    let mut pg: tokio_postgres::Config = rest.parse().map_err(PgConfigError::Url)?;
    pg.ssl_mode(mode.for_tokio_postgres());
    Ok(PgUrl {
        pg,
        tls: TlsSettings { mode, root_cert },
    })
}

/// A query value, percent-decoded (a path may hold `%20`, say).
fn decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio_postgres::config::SslMode as PgSslMode;

    fn tls(url: &str) -> TlsSettings {
        parse_url(url).unwrap().tls
    }

    #[test]
    fn each_sslmode_maps_to_what_tokio_postgres_negotiates() {
        for (value, mode, pg) in [
            ("disable", SslMode::Disable, PgSslMode::Disable),
            ("prefer", SslMode::Prefer, PgSslMode::Prefer),
            ("require", SslMode::Require, PgSslMode::Require),
            ("verify-ca", SslMode::VerifyCa, PgSslMode::Require),
            ("verify-full", SslMode::VerifyFull, PgSslMode::Require),
        ] {
            let url = parse_url(&format!("postgres://u@h:5432/db?sslmode={value}")).unwrap();
            assert_eq!(url.tls.mode, mode, "{value}");
            assert_eq!(url.pg.get_ssl_mode(), pg, "{value}");
            assert_eq!(url.tls.mode.to_string(), value);
        }
    }

    #[test]
    fn no_sslmode_is_prefer_as_in_libpq() {
        let url = parse_url("postgres://u@h/db").unwrap();
        assert_eq!(url.tls.mode, SslMode::Prefer);
        assert_eq!(url.pg.get_ssl_mode(), PgSslMode::Prefer);
        assert_eq!(url.tls.root_cert, None);
    }

    #[test]
    fn an_unknown_sslmode_is_an_error_naming_sslmode() {
        let err = parse_url("postgres://u@h/db?sslmode=bogus").unwrap_err();
        assert!(
            matches!(&err, PgConfigError::SslMode { value } if value == "bogus"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("sslmode=bogus") && text.contains("verify-full"), "{text}");
    }

    #[test]
    fn sslrootcert_is_a_decoded_path_and_the_rest_of_the_url_is_kept() {
        let url = parse_url(
            "postgresql://inlet:p%40ss@db.example:6432/warehouse?application_name=inlet\
             &sslmode=verify-full&sslrootcert=/etc/inlet/my%20ca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(url.tls.mode, SslMode::VerifyFull);
        assert_eq!(
            url.tls.root_cert,
            Some(RootCert::File(PathBuf::from("/etc/inlet/my ca.pem")))
        );
        assert_eq!(url.pg.get_user(), Some("inlet"));
        assert_eq!(url.pg.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(url.pg.get_dbname(), Some("warehouse"));
        assert_eq!(url.pg.get_application_name(), Some("inlet"));
        assert_eq!(url.pg.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(url.pg.get_ports(), [6432]);
    }

    #[test]
    fn sslrootcert_system_means_verify_full() {
        assert_eq!(tls("postgres://u@h/db?sslrootcert=system").mode, SslMode::VerifyFull);
        assert_eq!(
            tls("postgres://u@h/db?sslrootcert=system").root_cert,
            Some(RootCert::System)
        );
        let err = parse_url("postgres://u@h/db?sslmode=require&sslrootcert=system").unwrap_err();
        assert!(
            err.to_string().contains("sslrootcert=system needs sslmode=verify-full"),
            "{err}"
        );
    }

    #[test]
    fn other_errors_are_tokio_postgres_s() {
        let err = parse_url("postgres://u@h/db?no_such_option=1").unwrap_err();
        assert!(matches!(err, PgConfigError::Url(_)), "{err:?}");
    }

    #[test]
    fn a_key_value_string_keeps_tokio_postgres_s_modes() {
        let url = parse_url("host=h user=u dbname=db sslmode=require").unwrap();
        assert_eq!(url.tls.mode, SslMode::Require);
        assert_eq!(url.pg.get_ssl_mode(), PgSslMode::Require);
    }
}
