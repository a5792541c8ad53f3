//! Opening a stream with its prerequisites checked first, each within the location's
//! `connect_timeout`: a region, credentials, and an endpoint that answers. Without the checks,
//! a missing region or credentials showed as the SDK's internal structures in the first
//! call's error, and an unreachable endpoint as that call's connection error.
use crate::client::{KinesisStream, sdk_config, timed};
use crate::errors::CallError;
use crate::location::KinesisLocation;
use aws_sdk_kinesis::config::ProvideCredentials;
use inlet_seams::error_chain;
use std::time::{Duration, Instant};

/// Between two attempts at the endpoint's first answer.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Why a stream could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Neither the URL nor the SDK's chain (environment, profile, instance metadata) names a
    /// region.
    #[error(
        "no AWS region is configured: add ?region=REGION to the stream URL, or set AWS_REGION \
         (or a region in the AWS profile)"
    )]
    NoRegion,
    /// The SDK's credential chain found none.
    #[error(
        "no AWS credentials were found (looked in: the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
         variables, the AWS profile files, a web identity token, container and instance \
         metadata): {reason}"
    )]
    NoCredentials {
        /// What the chain said.
        reason: String,
    },
    /// The endpoint did not answer within the connect timeout.
    #[error("Kinesis endpoint {endpoint} unreachable for {} s (last error: {last_error})", waited.as_secs_f64())]
    Unreachable {
        /// The endpoint's URL.
        endpoint: String,
        /// How long it was tried: the connect timeout.
        waited: Duration,
        /// The last attempt's error.
        last_error: String,
    },
}

impl KinesisStream {
    /// Connects as [`KinesisStream::connect`] does, after checking, within the location's
    /// `connect_timeout` for each, that a region is configured, that credentials are found,
    /// and that the endpoint answers (any answer, even "no such stream").
    pub async fn connect_checked(location: KinesisLocation) -> Result<Self, ConnectError> {
        let limit = location.connect_timeout;
        // Without a region in the URL or the environment, the chain asks instance metadata,
        // which off EC2 may take a while to fail.
        let shared = tokio::time::timeout(limit, sdk_config(&location))
            .await
            .map_err(|_| ConnectError::NoRegion)?;
        let region = shared.region().ok_or(ConnectError::NoRegion)?.to_string();
        let provider = shared
            .credentials_provider()
            .ok_or_else(|| ConnectError::NoCredentials {
                reason: "no credential provider is configured".into(),
            })?;
        match tokio::time::timeout(limit, provider.provide_credentials()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                // The chain lists each provider on a line of its own: one line here.
                let reason = error_chain(&e).lines().map(str::trim).collect::<Vec<_>>().join("; ");
                return Err(ConnectError::NoCredentials { reason });
            }
            Err(_) => {
                return Err(ConnectError::NoCredentials {
                    reason: format!("none within {} s", limit.as_secs_f64()),
                });
            }
        }
        let endpoint = location
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://kinesis.{region}.amazonaws.com"));
        let stream = Self::with_config(location, &shared);
        stream.first_answer(endpoint).await?;
        Ok(stream)
    }

    /// Waits for the endpoint's first answer, trying again while it cannot be reached, until
    /// the connect timeout.
    async fn first_answer(&self, endpoint: String) -> Result<(), ConnectError> {
        let limit = self.location.connect_timeout;
        let started = Instant::now();
        let mut last_error = "no answer".to_owned();
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(ConnectError::Unreachable {
                    endpoint,
                    waited: limit,
                    last_error,
                });
            }
            let call = timed(
                "DescribeStreamSummary",
                self.client.describe_stream_summary().stream_name(self.name()).send(),
            );
            match tokio::time::timeout(left, call).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => {
                    let e = CallError::from_sdk("DescribeStreamSummary", e);
                    // A service error is an answer: what it means is the next call's to say.
                    if !(e.is_code("Unreachable") || e.is_code("Timeout")) {
                        return Ok(());
                    }
                    last_error = e.message;
                }
                Err(_) => last_error = format!("no answer within {} s", limit.as_secs_f64()),
            }
            tokio::time::sleep(RETRY_PAUSE.min(limit.saturating_sub(started.elapsed()))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listens on port 1 of loopback: the opening gives up after the connect timeout
    /// (placeholder credentials and a region are used for a local endpoint).
    #[tokio::test]
    async fn an_unreachable_endpoint_fails_after_the_connect_timeout() {
        let location = KinesisLocation::parse("kinesis://s?endpoint=http://127.0.0.1:1&connect_timeout=1s").unwrap();
        let started = Instant::now();
        let e = KinesisStream::connect_checked(location).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(20),
            "{took:?}"
        );
        let ConnectError::Unreachable { endpoint, waited, .. } = &e else {
            panic!("{e}");
        };
        assert_eq!(
            (endpoint.as_str(), *waited),
            ("http://127.0.0.1:1", Duration::from_secs(1))
        );
        assert!(
            e.to_string()
                .starts_with("Kinesis endpoint http://127.0.0.1:1 unreachable for 1 s"),
            "{e}"
        );
    }
}
