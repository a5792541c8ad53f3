//! The client: one `aws-sdk-kinesis` client per stream, built from a [`KinesisLocation`].
use crate::location::KinesisLocation;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kinesis::config::{Credentials, Region};
use std::time::Duration;

/// The longest one connection attempt of a call may take (shorter if the location's
/// `connect_timeout` is).
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// A Kinesis data stream: writer, reader and admin calls for one stream name.
#[derive(Debug, Clone)]
pub struct KinesisStream {
    pub(crate) client: aws_sdk_kinesis::Client,
    pub(crate) location: KinesisLocation,
}

/// The SDK's shared configuration for `location`: its region, or the usual chain's
/// (environment, profile, instance metadata); the usual credential chain (environment,
/// profile, SSO, web identity, container and instance metadata), resolved on first use.
pub(crate) async fn sdk_config(location: &KinesisLocation) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &location.region {
        loader = loader.region(Region::new(region.clone()));
    } else if location.is_local() {
        // Not the default chain: its instance-metadata lookup makes no sense for a local
        // emulator and only adds a warning and a delay.
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        loader = loader.region(Region::new(region));
    }
    if location.is_local()
        && std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
        && std::env::var_os("AWS_PROFILE").is_none()
    {
        loader = loader.credentials_provider(Credentials::new("local", "local", None, None, "inlet-local"));
    }
    loader.load().await
}

impl KinesisStream {
    /// Connects with the SDK's usual credential chain (environment, profile, SSO, web
    /// identity, container and instance metadata). Against a loopback endpoint with no
    /// credentials configured, placeholder credentials are used: the emulator accepts any.
    /// Nothing is checked: a missing region or credentials, or an unreachable endpoint,
    /// shows in the first call's error ([`KinesisStream::connect_checked`] checks first).
    pub async fn connect(location: KinesisLocation) -> Self {
        let shared = sdk_config(&location).await;
        Self::with_config(location, &shared)
    }

    /// The client for `location` on the loaded `shared` configuration.
    pub(crate) fn with_config(location: KinesisLocation, shared: &SdkConfig) -> Self {
        let mut config = aws_sdk_kinesis::config::Builder::from(shared)
            // Data calls are retried by the producer and the consumer, which count attempts
            // and apply their own backoff; an SDK retry underneath would hide them.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_ATTEMPT_TIMEOUT.min(location.connect_timeout))
                    .operation_attempt_timeout(location.call_timeout)
                    .build(),
            );
        if let Some(endpoint) = &location.endpoint {
            config = config.endpoint_url(endpoint.clone());
        }
        Self {
            client: aws_sdk_kinesis::Client::from_conf(config.build()),
            location,
        }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.location.stream
    }

    /// Where it is.
    pub fn location(&self) -> &KinesisLocation {
        &self.location
    }
}

/// Runs one call, recording its time and outcome.
pub(crate) async fn timed<T, E>(op: &'static str, call: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = call.await;
    metrics::histogram!(crate::metrics::CALL_SECONDS, "op" => op).record(started.elapsed().as_secs_f64());
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(crate::metrics::CALLS_TOTAL, "op" => op, "outcome" => outcome).increment(1);
    tracing::debug!(
        op,
        outcome,
        took_ms = started.elapsed().as_millis() as u64,
        "Kinesis call"
    );
    result
}
