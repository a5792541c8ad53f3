//! The stream consumer: registered on first use (`DescribeStreamSummary`,
//! `RegisterStreamConsumer`, then `DescribeStreamConsumer` until `ACTIVE`), its ARN remembered
//! per process; listing and deregistering consumers.
use super::errors::SetupError;
use super::timings::CONSUMER_ACTIVE_TIMEOUT;
use crate::admin::AdminError;
use crate::client::{KinesisStream, timed};
use crate::errors::CallError;
use crate::location::KinesisLocation;
use aws_sdk_kinesis::types::ConsumerStatus;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// A registered stream consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConsumer {
    /// Its name.
    pub name: String,
    /// Its ARN, which `SubscribeToShard` takes.
    pub arn: String,
    /// `CREATING`, `ACTIVE` or `DELETING`.
    pub status: String,
}

/// Consumer ARNs found or registered by this process, by stream location and consumer
/// name; one lock each, so readers of many shards opening at once register once.
type Slot = Arc<tokio::sync::Mutex<Option<String>>>;
static CONSUMER_ARNS: LazyLock<Mutex<HashMap<String, Slot>>> = LazyLock::new(Mutex::default);

fn slot(loc: &KinesisLocation) -> Slot {
    let key = format!(
        "{}|{}|{}|{}",
        loc.endpoint.as_deref().unwrap_or(""),
        loc.region.as_deref().unwrap_or(""),
        loc.stream,
        loc.consumer
    );
    let mut map = CONSUMER_ARNS.lock().unwrap_or_else(PoisonError::into_inner);
    map.entry(key).or_default().clone()
}

fn bad_response(op: &'static str, message: &str) -> CallError {
    CallError {
        op,
        code: "BadResponse".into(),
        message: message.into(),
        retryable: true,
    }
}

impl KinesisStream {
    /// The stream's ARN.
    async fn stream_arn(&self) -> Result<String, CallError> {
        let out = timed(
            "DescribeStreamSummary",
            self.client.describe_stream_summary().stream_name(self.name()).send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DescribeStreamSummary", e))?;
        out.stream_description_summary()
            .map(|s| s.stream_arn().to_owned())
            .ok_or_else(|| bad_response("DescribeStreamSummary", "answered without a summary"))
    }

    async fn describe_consumer(&self, stream_arn: &str) -> Result<StreamConsumer, CallError> {
        let out = timed(
            "DescribeStreamConsumer",
            self.client
                .describe_stream_consumer()
                .stream_arn(stream_arn)
                .consumer_name(&self.location.consumer)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DescribeStreamConsumer", e))?;
        let c = out
            .consumer_description()
            .ok_or_else(|| bad_response("DescribeStreamConsumer", "answered without a description"))?;
        Ok(StreamConsumer {
            name: c.consumer_name().to_owned(),
            arn: c.consumer_arn().to_owned(),
            status: c.consumer_status().as_str().to_owned(),
        })
    }

    async fn register_consumer(&self, stream_arn: &str) -> Result<StreamConsumer, CallError> {
        let out = timed(
            "RegisterStreamConsumer",
            self.client
                .register_stream_consumer()
                .stream_arn(stream_arn)
                .consumer_name(&self.location.consumer)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("RegisterStreamConsumer", e))?;
        metrics::counter!(crate::metrics::FANOUT_CONSUMER_REGISTRATIONS_TOTAL).increment(1);
        tracing::info!(stream = %self.name(), consumer = %self.location.consumer, "registered the stream consumer");
        let c = out
            .consumer()
            .ok_or_else(|| bad_response("RegisterStreamConsumer", "answered without a consumer"))?;
        Ok(StreamConsumer {
            name: c.consumer_name().to_owned(),
            arn: c.consumer_arn().to_owned(),
            status: c.consumer_status().as_str().to_owned(),
        })
    }

    /// Registers the consumer unless it is, and waits until it is `ACTIVE`.
    async fn setup_consumer(&self) -> Result<StreamConsumer, SetupError> {
        let stream_arn = self.stream_arn().await?;
        let started = Instant::now();
        let mut status = String::from("not registered");
        let mut wait = Duration::from_millis(100);
        while started.elapsed() < CONSUMER_ACTIVE_TIMEOUT {
            match self.describe_consumer(&stream_arn).await {
                Ok(c) if c.status == ConsumerStatus::Active.as_str() => return Ok(c),
                // CREATING, or DELETING (then it is gone and registered again).
                Ok(c) => status = c.status,
                Err(e) if e.is_code("ResourceNotFoundException") => match self.register_consumer(&stream_arn).await {
                    Ok(c) if c.status == ConsumerStatus::Active.as_str() => return Ok(c),
                    Ok(c) => status = c.status,
                    // Registered meanwhile (another reader), being deleted, or throttled.
                    Err(e) if e.retryable => status = e.to_string(),
                    Err(e) => return Err(e.into()),
                },
                Err(e) if e.retryable => status = e.to_string(),
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
        Err(SetupError::NotActive {
            stream: self.name().to_owned(),
            consumer: self.location.consumer.clone(),
            status,
            waited: CONSUMER_ACTIVE_TIMEOUT,
        })
    }

    /// The consumer's ARN: remembered, or found (and registered) now.
    pub(super) async fn consumer_arn(&self) -> Result<String, SetupError> {
        let slot = slot(&self.location);
        let mut arn = slot.lock().await;
        if let Some(a) = &*arn {
            return Ok(a.clone());
        }
        let c = self.setup_consumer().await?;
        *arn = Some(c.arn.clone());
        Ok(c.arn)
    }

    /// Forgets a remembered consumer ARN (the consumer was deregistered).
    pub(super) async fn forget_consumer_arn(&self, stale: &str) {
        let slot = slot(&self.location);
        let mut arn = slot.lock().await;
        if arn.as_deref() == Some(stale) {
            *arn = None;
        }
    }

    /// Registers the stream consumer named by the location (`consumer=`, default `inlet`)
    /// unless it is, and waits until it is `ACTIVE`.
    pub async fn ensure_consumer(&self) -> Result<StreamConsumer, AdminError> {
        let c = self.setup_consumer().await?;
        *slot(&self.location).lock().await = Some(c.arn.clone());
        Ok(c)
    }

    /// The stream's registered consumers (`ListStreamConsumers`).
    pub async fn list_consumers(&self) -> Result<Vec<StreamConsumer>, AdminError> {
        let stream_arn = self.stream_arn().await?;
        let mut consumers = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let req = self.client.list_stream_consumers().stream_arn(&stream_arn);
            let req = match next.take() {
                Some(token) => req.next_token(token),
                None => req,
            };
            let out = timed("ListStreamConsumers", req.send())
                .await
                .map_err(|e| CallError::from_sdk("ListStreamConsumers", e))?;
            consumers.extend(out.consumers().iter().map(|c| StreamConsumer {
                name: c.consumer_name().to_owned(),
                arn: c.consumer_arn().to_owned(),
                status: c.consumer_status().as_str().to_owned(),
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => return Ok(consumers),
            }
        }
    }

    /// Deregisters the stream consumer named by the location (`DeregisterStreamConsumer`);
    /// its subscriptions end.
    pub async fn deregister_consumer(&self) -> Result<(), AdminError> {
        let stream_arn = self.stream_arn().await?;
        timed(
            "DeregisterStreamConsumer",
            self.client
                .deregister_stream_consumer()
                .stream_arn(stream_arn)
                .consumer_name(&self.location.consumer)
                .send(),
        )
        .await
        .map_err(|e| CallError::from_sdk("DeregisterStreamConsumer", e))?;
        *slot(&self.location).lock().await = None;
        Ok(())
    }
}
