//! One connection to PostgreSQL outside the warehouse's pool, from the same kind of URL and
//! with the same TLS: for tools and tests (creating a database, reading what was written).
use crate::config::{PgConfigError, parse_url};

/// Why [`connect_client`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL (or its CA file) cannot be used.
    #[error(transparent)]
    Config(#[from] PgConfigError),
    /// The server could not be reached, refused the TLS handshake or the login.
    #[error("connecting to PostgreSQL failed")]
    Connect(#[source] tokio_postgres::Error),
}

/// A client connected to `url`; its connection runs on a task of its own until the client
/// is dropped (or the server closes it: logged).
pub async fn connect_client(url: &str) -> Result<tokio_postgres::Client, ClientError> {
    let url = parse_url(url)?;
    let tls = url.tls.connector()?;
    let (client, connection) = url.pg.connect(tls).await.map_err(ClientError::Connect)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended with an error");
        }
    });
    Ok(client)
}
