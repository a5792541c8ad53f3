//! tokio-postgres's TLS hooks over tokio-rustls: [`RustlsConnect`] makes a handshake per
//! connection, and a refused certificate becomes a [`TlsError`] that says why in words.
use super::binding;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::TlsConnector;

/// The TLS connector of a PostgreSQL URL (see [`super::TlsSettings::connector`]).
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    /// What the certificate is checked against, for the error that refuses it.
    trusted_by: Arc<str>,
}

impl std::fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsConnect")
            .field("trusted_by", &self.trusted_by)
            .finish_non_exhaustive()
    }
}

impl RustlsConnect {
    pub(super) fn new(config: Arc<ClientConfig>, trusted_by: String) -> Self {
        Self {
            config,
            trusted_by: trusted_by.into(),
        }
    }
}

/// Why a TLS handshake with PostgreSQL failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The server's certificate was refused: retrying cannot help.
    #[error("the server's certificate for {host} was not trusted by {trusted_by}: {reason}")]
    Untrusted {
        /// The host connected to.
        host: String,
        /// The roots it was checked against (the CA file, or the system's).
        trusted_by: String,
        /// Why, in words.
        reason: String,
    },
    /// The host is neither a DNS name nor an IP address, so there is nothing to check.
    #[error("{host:?} is not a host name or IP address a certificate can be checked against")]
    ServerName {
        /// The host.
        host: String,
    },
    /// Any other failure of the handshake (the connection dropped, say).
    #[error("TLS handshake with {host} failed")]
    Handshake {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl TlsError {
    /// Whether trying again may help: not when the certificate or the host name is wrong.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Untrusted { .. } | Self::ServerName { .. })
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = Handshake;
    type Error = Infallible;

    // Infallible: tokio-postgres calls this for Unix sockets too (host ""), where TLS is
    // never used; the host is checked in the handshake.
    fn make_tls_connect(&mut self, host: &str) -> Result<Handshake, Infallible> {
        Ok(Handshake {
            config: self.config.clone(),
            trusted_by: self.trusted_by.clone(),
            host: host.to_owned(),
        })
    }
}

/// One connection's handshake, with the host it checks the certificate against.
#[derive(Debug)]
pub struct Handshake {
    config: Arc<ClientConfig>,
    trusted_by: Arc<str>,
    host: String,
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = ServerName::try_from(self.host.clone()).map_err(|_| TlsError::ServerName {
                host: self.host.clone(),
            })?;
            match TlsConnector::from(self.config.clone()).connect(name, stream).await {
                Ok(tls) => Ok(RustlsStream(tls)),
                Err(e) => Err(self.failure(e)),
            }
        })
    }
}

impl Handshake {
    /// A refused certificate in words; anything else as it came.
    fn failure(&self, e: io::Error) -> TlsError {
        let refused = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match refused {
            Some(rustls::Error::InvalidCertificate(cause)) => TlsError::Untrusted {
                host: self.host.clone(),
                trusted_by: self.trusted_by.to_string(),
                reason: reason(cause, &self.host),
            },
            _ => TlsError::Handshake {
                host: self.host.clone(),
                source: e,
            },
        }
    }
}

/// Why a certificate was refused, for someone who has to fix the server or the URL.
fn reason(cause: &CertificateError, host: &str) -> String {
    match cause {
        CertificateError::UnknownIssuer => {
            "it was not issued by any of those CAs (unknown issuer: a different CA signed it, \
             or the chain sent by the server is incomplete)"
                .to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it does not name the host {host} (sslmode=verify-full checks the name; {cause})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!("it has expired ({cause})"),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            format!("it is not valid yet ({cause})")
        }
        CertificateError::BadSignature => "its signature does not verify".to_owned(),
        CertificateError::Revoked => "it has been revoked".to_owned(),
        other => other.to_string(),
    }
}

/// A TLS connection to PostgreSQL.
#[derive(Debug)]
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        let end_point = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| binding::tls_server_end_point(cert));
        match end_point {
            Some(hash) => ChannelBinding::tls_server_end_point(hash),
            None => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
