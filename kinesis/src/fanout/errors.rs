//! Errors of enhanced fan-out: a consumer that could not be set up, and the event stream's
//! errors classified into a [`CallError`] (code and retryability).
use crate::admin::AdminError;
use crate::errors::{CallError, retryable_code};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use std::fmt;
use std::time::Duration;

/// A consumer that could not be set up.
#[derive(Debug, thiserror::Error)]
pub(super) enum SetupError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("stream consumer {consumer} of stream {stream} is not ACTIVE after {waited:?} (last seen: {status})")]
    NotActive {
        stream: String,
        consumer: String,
        status: String,
        waited: Duration,
    },
}

impl SetupError {
    pub(super) fn retryable(&self) -> bool {
        match self {
            SetupError::Call(e) => e.retryable,
            SetupError::NotActive { .. } => true,
        }
    }
}

impl From<SetupError> for AdminError {
    fn from(e: SetupError) -> Self {
        AdminError::Call(e.to_string())
    }
}

/// An error of the event stream, classified. Exceptions in the stream name their type in a
/// header, and their payload need not repeat it (the emulator's do not): the SDK then picks
/// the right variant but reports no code, so the code comes from the variant.
pub(super) fn event_stream_error<R: fmt::Debug>(e: SdkError<SubscribeToShardEventStreamError, R>) -> CallError {
    use SubscribeToShardEventStreamError as E;
    const OP: &str = "SubscribeToShard";
    if let SdkError::ServiceError(se) = &e
        && se.err().code().is_none()
    {
        let code = match se.err() {
            E::ResourceInUseException(_) => Some("ResourceInUseException"),
            E::ResourceNotFoundException(_) => Some("ResourceNotFoundException"),
            E::InternalFailureException(_) => Some("InternalFailureException"),
            E::KmsThrottlingException(_) => Some("KMSThrottlingException"),
            E::KmsDisabledException(_) => Some("KMSDisabledException"),
            E::KmsInvalidStateException(_) => Some("KMSInvalidStateException"),
            E::KmsAccessDeniedException(_) => Some("KMSAccessDeniedException"),
            E::KmsNotFoundException(_) => Some("KMSNotFoundException"),
            E::KmsOptInRequired(_) => Some("KMSOptInRequired"),
            _ => None,
        };
        if let Some(code) = code {
            metrics::counter!(crate::metrics::ERRORS_TOTAL, "op" => OP, "code" => code).increment(1);
            return CallError {
                op: OP,
                code: code.to_owned(),
                message: se.err().message().unwrap_or_default().to_owned(),
                retryable: retryable_code(code) || code == "InternalFailureException",
            };
        }
    }
    CallError::from_sdk(OP, e)
}
