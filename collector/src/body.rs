//! A request body: its format and encoding from the headers, read within a size limit and a
//! deadline, decompressed under a cap on the decompressed size (decompression bombs), split
//! into its events (each kept raw, for the bad rows).
use crate::config::LimitsConfig;
use crate::error::ApiError;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::value::RawValue;
use std::io::Read;
use std::time::Duration;

pub use inlet_schemas::wire::Format;

/// How the body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
    /// `Content-Encoding: zstd`.
    Zstd,
}

/// The format and encoding the headers announce.
pub fn format_and_encoding(headers: &HeaderMap) -> Result<(Format, Encoding), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some(format) = Format::from_content_type(&mime) else {
        return Err(ApiError::Unsupported(format!(
            "Content-Type {content_type:?}: send application/json or application/x-protobuf"
        )));
    };
    let encoding = match headers.get(header::CONTENT_ENCODING).map(|v| v.to_str()) {
        None => Encoding::Identity,
        Some(Ok(e)) => match e.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Encoding::Identity,
            "gzip" | "x-gzip" => Encoding::Gzip,
            "zstd" => Encoding::Zstd,
            other => {
                return Err(ApiError::Unsupported(format!(
                    "Content-Encoding {other:?}: send gzip, zstd or none"
                )));
            }
        },
        Some(Err(_)) => return Err(ApiError::Unsupported("Content-Encoding is not ASCII".into())),
    };
    Ok((format, encoding))
}

fn too_large_body(limits: &LimitsConfig, size: Option<u64>) -> ApiError {
    ApiError::TooLarge {
        limit: "limits.max_body_bytes",
        value: limits.max_body_bytes,
        what: match size {
            Some(n) => format!("request body of {n} bytes"),
            None => "request body".into(),
        },
    }
}

/// Reads the whole body, refusing it past `limits.max_body_bytes` (at once when its
/// `Content-Length` says so) or when it is not all there within `timeout`.
pub async fn read(
    body: axum::body::Body,
    headers: &HeaderMap,
    limits: &LimitsConfig,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limits.max_body_bytes) {
        return Err(too_large_body(limits, Some(n)));
    }
    // The limit fits in usize: it was read from the config as u64 on a 64-bit target, and
    // on a 32-bit one a larger value only means "no smaller limit than memory".
    let limit = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    match collected {
        Err(_) => Err(ApiError::Timeout(timeout)),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large_body(limits, None)),
        Ok(Err(e)) => Err(ApiError::malformed(
            ".",
            format!("reading the request body failed: {e}"),
        )),
    }
}

/// Decompresses `body`, refusing output over `limits.max_decompressed_bytes`.
pub fn decompress(encoding: Encoding, body: Bytes, limits: &LimitsConfig) -> Result<Bytes, ApiError> {
    let cap = limits.max_decompressed_bytes;
    let (name, reader): (&str, Box<dyn Read + '_>) = match encoding {
        Encoding::Identity => {
            if body.len() as u64 > cap {
                return Err(too_large_decompressed(limits));
            }
            return Ok(body);
        }
        Encoding::Gzip => ("gzip", Box::new(flate2::read::MultiGzDecoder::new(&body[..]))),
        Encoding::Zstd => (
            "zstd",
            Box::new(
                zstd::stream::read::Decoder::with_buffer(&body[..])
                    .map_err(|e| ApiError::malformed(".", format!("zstd: {e}")))?,
            ),
        ),
    };
    let mut out = Vec::with_capacity((body.len() * 4).min(cap as usize));
    // Read one byte past the cap: reaching it means the cap is exceeded, and no more than
    // that is ever decompressed.
    reader
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::malformed(".", format!("{name}: {e}")))?;
    if out.len() as u64 > cap {
        return Err(too_large_decompressed(limits));
    }
    Ok(Bytes::from(out))
}

fn too_large_decompressed(limits: &LimitsConfig) -> ApiError {
    ApiError::TooLarge {
        limit: "limits.max_decompressed_bytes",
        value: limits.max_decompressed_bytes,
        what: "decompressed request body".into(),
    }
}

/// One event of a batch, as sent.
#[derive(Debug, Clone)]
pub enum RawEvent<'a> {
    /// Its JSON text.
    Json(&'a RawValue),
    /// Its protobuf bytes.
    Protobuf(Bytes),
}

impl RawEvent<'_> {
    /// Its size as sent, bytes.
    pub fn len(&self) -> usize {
        match self {
            RawEvent::Json(raw) => raw.get().len(),
            RawEvent::Protobuf(bytes) => bytes.len(),
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `EventBatch` read with each event left as bytes (the same wire format: field 1,
/// length-delimited), so that one malformed event does not sink its neighbours.
#[derive(Clone, PartialEq, prost::Message)]
struct RawBatch {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    events: Vec<Bytes>,
}

/// Splits a batch into its events, refusing a body that is not a batch (400, with where and
/// why), that holds more than `limits.max_batch_events` events or an event over
/// `limits.max_event_bytes` (413).
pub fn split<'a>(format: Format, body: &'a Bytes, limits: &LimitsConfig) -> Result<Vec<RawEvent<'a>>, ApiError> {
    let events = match format {
        Format::Json => split_json(body)?.into_iter().map(RawEvent::Json).collect::<Vec<_>>(),
        Format::Protobuf => {
            let batch = <RawBatch as prost::Message>::decode(body.clone())
                .map_err(|e| ApiError::malformed(".", format!("not a protobuf EventBatch: {e}")))?;
            batch.events.into_iter().map(RawEvent::Protobuf).collect()
        }
    };
    if events.len() > limits.max_batch_events {
        return Err(ApiError::TooLarge {
            limit: "limits.max_batch_events",
            value: limits.max_batch_events as u64,
            what: format!("batch of {} events", events.len()),
        });
    }
    if let Some((index, e)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| e.len() as u64 > limits.max_event_bytes)
    {
        return Err(ApiError::TooLarge {
            limit: "limits.max_event_bytes",
            value: limits.max_event_bytes,
            what: format!("event [{index}] of {} bytes", e.len()),
        });
    }
    Ok(events)
}

/// A JSON array of events, or `{"events": [...]}`; the events are left unparsed.
fn split_json(body: &[u8]) -> Result<Vec<&RawValue>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        events: Vec<&'a RawValue>,
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let mut de = serde_json::Deserializer::from_slice(body);
    let items = match first {
        Some(b'[') => serde_path_to_error::deserialize::<_, Vec<&RawValue>>(&mut de),
        _ => serde_path_to_error::deserialize::<_, Wrapped<'_>>(&mut de).map(|w| w.events),
    };
    let items = items.map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        // serde_json appends " at line L column C", which helps find it in a big document.
        ApiError::malformed(
            field,
            format!("not a batch (a JSON array of events or {{\"events\": [...]}}): {inner}"),
        )
    })?;
    de.end()
        .map_err(|e| ApiError::malformed(".", format!("trailing characters after the batch: {e}")))?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn limits() -> LimitsConfig {
        LimitsConfig {
            max_body_bytes: 1_000,
            max_decompressed_bytes: 10_000,
            max_batch_events: 3,
            max_event_bytes: 20,
            ..LimitsConfig::default()
        }
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn decompresses_under_the_cap_and_refuses_bombs() {
        let l = limits();
        let small = b"{\"events\": []}".repeat(10);
        assert_eq!(
            decompress(Encoding::Gzip, gzip(&small), &l).unwrap(),
            Bytes::from(small.clone())
        );
        let z = Bytes::from(zstd::encode_all(&small[..], 3).unwrap());
        assert_eq!(decompress(Encoding::Zstd, z, &l).unwrap(), Bytes::from(small));
        // 10 MB of zeros compress to about 10 KB: refused at the 10,000-byte cap.
        let bomb = gzip(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 20_000);
        let e = decompress(Encoding::Gzip, bomb, &l).unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::TooLarge {
                    limit: "limits.max_decompressed_bytes",
                    ..
                }
            ),
            "{e}"
        );
        let exact = gzip(&[b' '; 10_000]);
        assert_eq!(decompress(Encoding::Gzip, exact, &l).unwrap().len(), 10_000);
        let e = decompress(Encoding::Gzip, Bytes::from_static(b"not gzip"), &l).unwrap_err();
        assert!(matches!(e, ApiError::Malformed { .. }), "{e}");
    }

    #[test]
    fn splits_json_and_protobuf_batches() {
        let l = limits();
        let body = Bytes::from_static(br#"{"events": [{"eventId": "a"}, 7, {"x": [1, 2]}]}"#);
        let events = split(Format::Json, &body, &l).unwrap();
        let texts: Vec<_> = events
            .iter()
            .map(|e| match e {
                RawEvent::Json(r) => r.get(),
                RawEvent::Protobuf(_) => unreachable!(),
            })
            .collect();
        assert_eq!(texts, [r#"{"eventId": "a"}"#, "7", r#"{"x": [1, 2]}"#]);
        let body = Bytes::from_static(b" [ {} ] ");
        assert_eq!(split(Format::Json, &body, &l).unwrap().len(), 1);

        let batch = inlet_schemas::events::EventBatch {
            events: vec![inlet_schemas::events::Envelope::default(); 2],
        };
        let body = Bytes::from(prost::Message::encode_to_vec(&batch));
        assert_eq!(split(Format::Protobuf, &body, &l).unwrap().len(), 2);
    }

    #[test]
    fn refuses_what_is_not_a_batch_with_where_and_why() {
        let l = limits();
        let err = |body: &'static [u8]| split(Format::Json, &Bytes::from_static(body), &l).unwrap_err();
        let ApiError::Malformed { field, reason } = err(br#"{"events": [1, 2"#) else {
            panic!()
        };
        assert_eq!(field, "events");
        assert!(reason.contains("EOF"), "{reason}");
        let ApiError::Malformed { field, reason } = err(br#"{"evnts": []}"#) else {
            panic!()
        };
        assert_eq!(field, "evnts");
        assert!(reason.contains("unknown field `evnts`"), "{reason}");
        assert!(matches!(err(b"[] []"), ApiError::Malformed { .. }));
        assert!(matches!(
            err(b"[1, 2, 3, 4]"),
            ApiError::TooLarge {
                limit: "limits.max_batch_events",
                ..
            }
        ));
        let e = split(Format::Json, &Bytes::from_static(b"[1, \"nineteen characters\"]"), &l).unwrap_err();
        assert_eq!(
            e.to_string(),
            "event [1] of 21 bytes exceeds limits.max_event_bytes = 20"
        );
        let e = split(Format::Protobuf, &Bytes::from_static(&[0xFF, 0xFF]), &l).unwrap_err();
        assert!(matches!(e, ApiError::Malformed { .. }), "{e}");
    }
}
