//! Why a request was refused, and how that is answered: status, `Retry-After`, JSON body.
use crate::auth::AuthError;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use std::time::Duration;

/// A refused request. Nothing of it was written (no event to the stream, no bad row),
/// except for [`ApiError::Unavailable`] after the events were handed to the producer: some
/// may still be written, and a retry may then write them twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 401: no key, or one the collector does not know.
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// 413: over a limit, named by its setting.
    #[error("{what} exceeds {limit} = {value}")]
    TooLarge {
        /// The setting (`limits.max_body_bytes`, ...).
        limit: &'static str,
        /// Its value.
        value: u64,
        /// What was over it, e.g. `request body of 2000000 bytes`.
        what: String,
    },
    /// 400: a body that is not a batch, with where and why.
    #[error("{field}: {reason}")]
    Malformed {
        /// Where (`.` for the document itself).
        field: String,
        /// Why.
        reason: String,
    },
    /// 415: a content type or encoding the collector does not read.
    #[error("{0}")]
    Unsupported(String),
    /// 408: the body did not arrive in time.
    #[error("the request body did not arrive within {0:?}")]
    Timeout(Duration),
    /// 429: the key is over its rate limit.
    #[error("the key is over its rate limit; retry after {0:?}")]
    RateLimited(Duration),
    /// 503: the stream did not take or confirm the events, or the collector is saturated.
    #[error("{reason}")]
    Unavailable {
        /// Why.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// 500: a bug; the message says which.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Malformed { .. } => StatusCode::BAD_REQUEST,
            Self::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable name, for the JSON body and the `outcome` metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::TooLarge { .. } => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::Unsupported(_) => "unsupported",
            Self::Timeout(_) => "timeout",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(d) | Self::Unavailable { retry_after: d, .. } => Some(*d),
            _ => None,
        }
    }

    pub(crate) fn malformed(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Malformed {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    (status, content_type, body.to_string()).into_response()
}

/// `Retry-After` in whole seconds (HTTP allows no fraction), rounded up, at least 1.
pub(crate) fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        match &self {
            Self::TooLarge { limit, value, .. } => {
                body["limit"] = (*limit).into();
                body["limit_value"] = (*value).into();
            }
            Self::Malformed { field, reason } => {
                body["field"] = field.as_str().into();
                body["reason"] = reason.as_str().into();
            }
            _ => {}
        }
        let retry_after = self.retry_after().map(retry_after_secs);
        if let Some(secs) = retry_after {
            body["retry_after_s"] = secs.into();
        }
        let mut response = json_response(self.status(), &body);
        let headers = response.headers_mut();
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        match self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of a slow or oversized body is not worth reading: close.
            Self::Timeout(_) | Self::TooLarge { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2_001)), 3);
    }
}
