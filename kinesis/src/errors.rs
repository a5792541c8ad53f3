//! Turning SDK errors into ours: a code, a message and whether trying again can help.
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use inlet_seams::error_chain;
use std::fmt;

/// An SDK error, classified.
#[derive(Debug)]
pub(crate) struct CallError {
    pub(crate) op: &'static str,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}: {}", self.op, self.code, self.message)
    }
}

impl std::error::Error for CallError {}

/// Codes worth retrying: throttling and the service's transient failures. Anything about
/// the request itself (a missing stream, a bad argument, access denied, a disabled KMS
/// key) fails the same way every time.
pub(crate) fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "LimitExceededException"
            | "InternalFailure"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "KMSThrottlingException"
            | "ResourceInUseException"
            | "RequestTimeout"
            | "RequestExpired"
    )
}

impl CallError {
    pub(crate) fn from_sdk<E, R>(op: &'static str, e: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug,
    {
        let err = match &e {
            SdkError::ServiceError(se) => {
                let code = se.err().code().unwrap_or("Unknown").to_owned();
                let message = se.err().message().unwrap_or("").to_owned();
                let retryable = retryable_code(&code);
                Self {
                    op,
                    code,
                    message,
                    retryable,
                }
            }
            SdkError::TimeoutError(_) => Self {
                op,
                code: "Timeout".into(),
                message: "no answer within the call timeout".into(),
                retryable: true,
            },
            SdkError::DispatchFailure(_) => Self {
                op,
                code: "Unreachable".into(),
                message: error_chain(&e),
                retryable: true,
            },
            SdkError::ResponseError(_) => Self {
                op,
                code: "BadResponse".into(),
                message: error_chain(&e),
                retryable: true,
            },
            SdkError::ConstructionFailure(_) => Self {
                op,
                code: "BadRequest".into(),
                message: error_chain(&e),
                retryable: false,
            },
            _ => Self {
                op,
                code: "Unknown".into(),
                message: error_chain(&e),
                retryable: true,
            },
        };
        metrics::counter!(crate::metrics::ERRORS_TOTAL, "op" => op, "code" => err.code.clone()).increment(1);
        err
    }

    pub(crate) fn is_code(&self, code: &str) -> bool {
        self.code == code
    }
}
