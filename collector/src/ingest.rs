//! The pure core of a request: each event decoded, stamped, checked against its key and
//! validated, then accepted (encoded for the stream, with its partition key) or rejected
//! (with its field and reason). No I/O, no clock: the receive time comes in.
use crate::auth::ApiKey;
use crate::body::RawEvent;
use bytes::Bytes;
use inlet_schemas::events::{Emitter, Envelope};
use inlet_schemas::{json, kind, validate};
use prost::Message;

/// What the collector stamps into a request's events.
#[derive(Debug, Clone)]
pub struct Stamp<'a> {
    /// The key the request presented.
    pub key: &'a ApiKey,
    /// When the request arrived, ms since the epoch: every event's `receive_time_ms`.
    pub receive_time_ms: i64,
    /// The country the trusted header named, if any (already checked: two upper-case
    /// letters); fills `emitter.country` when the event has none.
    pub country: Option<String>,
}

/// An event accepted for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its index in the batch.
    pub index: usize,
    /// Its partition key (playback or game session id).
    pub partition_key: String,
    /// The stamped `Envelope`, encoded.
    pub data: Bytes,
}

/// An event refused, with where and why.
#[derive(Debug, Clone)]
pub struct Rejected<'a> {
    /// Its index in the batch.
    pub index: usize,
    /// The field at fault (a proto field path, or the JSON path for a decoding error).
    pub field: String,
    /// Why.
    pub reason: String,
    /// The event as it was sent.
    pub raw: RawEvent<'a>,
}

/// A batch sorted into accepted and rejected events, each in batch order.
#[derive(Debug, Default)]
pub struct Sorted<'a> {
    /// Accepted events.
    pub accepted: Vec<Accepted>,
    /// Rejected events.
    pub rejected: Vec<Rejected<'a>>,
}

/// The country a header names, if it is an ISO 3166-1 alpha-2 code (case-insensitive).
pub fn country_from_header(value: &[u8]) -> Option<String> {
    let code = std::str::from_utf8(value).ok()?.trim();
    (code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic())).then(|| code.to_ascii_uppercase())
}

/// Sorts a batch's events.
pub fn sort<'a>(events: Vec<RawEvent<'a>>, stamp: &Stamp<'_>, limits: &validate::Limits) -> Sorted<'a> {
    let mut sorted = Sorted::default();
    for (index, raw) in events.into_iter().enumerate() {
        match check(&raw, stamp, limits) {
            Ok((partition_key, data)) => sorted.accepted.push(Accepted {
                index,
                partition_key,
                data,
            }),
            Err((field, reason)) => sorted.rejected.push(Rejected {
                index,
                field,
                reason,
                raw,
            }),
        }
    }
    sorted
}

fn check(
    raw: &RawEvent<'_>,
    stamp: &Stamp<'_>,
    limits: &validate::Limits,
) -> Result<(String, Bytes), (String, String)> {
    let mut event = match raw {
        RawEvent::Json(text) => json::decode_event(text.get().as_bytes()).map_err(|e| {
            let field = e.field.trim_start_matches('.');
            (if field.is_empty() { "." } else { field }.to_owned(), e.reason)
        })?,
        RawEvent::Protobuf(bytes) => {
            Envelope::decode(bytes.clone()).map_err(|e| (".".to_owned(), format!("not a protobuf Envelope: {e}")))?
        }
    };
    stamp_event(&mut event, stamp)?;
    validate::validate(&event, limits).map_err(|invalid| {
        let first = invalid.first();
        let mut reason = first.reason.clone();
        if invalid.0.len() > 1 {
            let others: Vec<_> = invalid.0[1..].iter().map(ToString::to_string).collect();
            reason.push_str(&format!(" (also: {})", others.join("; ")));
        }
        (first.field.to_owned(), reason)
    })?;
    // After validation, so that an event without a body hears about that instead.
    let kind = kind::kind_name(&event);
    if !stamp.key.kinds.allows(kind) {
        return Err((
            "body".into(),
            format!("kind {kind} is not allowed for key {}", stamp.key.id),
        ));
    }
    let partition_key = kind::partition_key(&event).to_owned();
    Ok((partition_key, Bytes::from(event.encode_to_vec())))
}

/// Stamps the receive time, the key's app id (refusing another one) and the country.
fn stamp_event(event: &mut Envelope, stamp: &Stamp<'_>) -> Result<(), (String, String)> {
    event.receive_time_ms = stamp.receive_time_ms;
    let emitter = event.emitter.get_or_insert_with(Emitter::default);
    if emitter.app_id.is_empty() {
        emitter.app_id.clone_from(&stamp.key.app_id);
    } else if emitter.app_id != stamp.key.app_id {
        return Err((
            "emitter.app_id".into(),
            format!(
                "key {} posts for app {:?}, not {:?}",
                stamp.key.id,
                stamp.key.app_id,
                truncate(&emitter.app_id)
            ),
        ));
    }
    if emitter.country.is_empty()
        && let Some(country) = &stamp.country
    {
        emitter.country.clone_from(country);
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    s.char_indices().nth(40).map_or(s, |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KindFilter;
    use crate::rate_limit::RateLimit;
    use inlet_schemas::events::{Heartbeat, Viewing, envelope::Body, viewing};
    use serde_json::value::RawValue;

    const NOW: i64 = 1_790_000_000_000;

    fn key(kinds: KindFilter) -> ApiKey {
        ApiKey {
            id: "tv-key".into(),
            app_id: "tv-app".into(),
            kinds,
            rate_limit: RateLimit::default(),
        }
    }

    fn heartbeat() -> Envelope {
        Envelope {
            event_id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
            event_time_ms: NOW - 1_000,
            receive_time_ms: 0,
            emitter: None,
            schema_version: 1,
            body: Some(Body::Viewing(Viewing {
                profile_id: "p".into(),
                playback_session_id: "s1".into(),
                title_id: "t".into(),
                kind: Some(viewing::Kind::Heartbeat(Heartbeat {
                    position_ms: 1,
                    bitrate_kbps: 2,
                    watched_ms: 3,
                })),
            })),
        }
    }

    fn sort_one(raw: RawEvent<'_>, key: &ApiKey, country: Option<&str>) -> Result<Accepted, (String, String)> {
        let stamp = Stamp {
            key,
            receive_time_ms: NOW,
            country: country.map(String::from),
        };
        let mut sorted = sort(vec![raw], &stamp, &validate::Limits::default());
        match sorted.rejected.pop() {
            Some(r) => Err((r.field, r.reason)),
            None => Ok(sorted.accepted.remove(0)),
        }
    }

    #[test]
    fn stamps_receive_time_app_and_country() {
        let k = key(KindFilter::All);
        let bytes = Bytes::from(heartbeat().encode_to_vec());
        let a = sort_one(RawEvent::Protobuf(bytes), &k, Some("DE")).unwrap();
        assert_eq!(a.partition_key, "s1");
        let e = Envelope::decode(a.data).unwrap();
        assert_eq!(e.receive_time_ms, NOW);
        let em = e.emitter.unwrap();
        assert_eq!((em.app_id.as_str(), em.country.as_str()), ("tv-app", "DE"));

        // A country the event names itself is kept.
        let mut h = heartbeat();
        h.emitter = Some(Emitter {
            app_id: "tv-app".into(),
            country: "FR".into(),
            ..Emitter::default()
        });
        let text = json::encode_event(&h);
        let raw: &RawValue = serde_json::from_str(&text).unwrap();
        let a = sort_one(RawEvent::Json(raw), &k, Some("DE")).unwrap();
        assert_eq!(Envelope::decode(a.data).unwrap().emitter.unwrap().country, "FR");
    }

    #[test]
    fn rejects_with_field_and_reason() {
        let k = key(KindFilter::All);
        let mut other_app = heartbeat();
        other_app.emitter = Some(Emitter {
            app_id: "game-app".into(),
            ..Emitter::default()
        });
        let (field, reason) = sort_one(RawEvent::Protobuf(other_app.encode_to_vec().into()), &k, None).unwrap_err();
        assert_eq!(field, "emitter.app_id");
        assert!(reason.contains("game-app"), "{reason}");

        let mut invalid = heartbeat();
        invalid.event_time_ms = NOW + 3_600_000;
        if let Some(Body::Viewing(v)) = &mut invalid.body {
            v.title_id.clear();
        }
        let (field, reason) = sort_one(RawEvent::Protobuf(invalid.encode_to_vec().into()), &k, None).unwrap_err();
        assert_eq!(field, "event_time_ms");
        assert!(
            reason.contains("ahead of receive time") && reason.contains("viewing.title_id: missing"),
            "{reason}"
        );

        let raw: &RawValue = serde_json::from_str(r#"{"eventTimeMs": "soon"}"#).unwrap();
        let (field, reason) = sort_one(RawEvent::Json(raw), &k, None).unwrap_err();
        assert_eq!(field, "eventTimeMs");
        assert!(!reason.is_empty());

        let (field, _) = sort_one(RawEvent::Protobuf(Bytes::from_static(&[0xFF, 0x01])), &k, None).unwrap_err();
        assert_eq!(field, ".");

        let games_only = key(KindFilter::parse(&["gameplay.*".into()]).unwrap());
        let (field, reason) = sort_one(
            RawEvent::Protobuf(heartbeat().encode_to_vec().into()),
            &games_only,
            None,
        )
        .unwrap_err();
        assert_eq!(
            (field.as_str(), reason.as_str()),
            ("body", "kind viewing.heartbeat is not allowed for key tv-key")
        );
    }

    #[test]
    fn country_headers() {
        assert_eq!(country_from_header(b"de"), Some("DE".into()));
        assert_eq!(country_from_header(b" US "), Some("US".into()));
        assert_eq!(country_from_header(b"T1"), None);
        assert_eq!(country_from_header(b"USA"), None);
        assert_eq!(country_from_header(&[0xC3, 0xA9]), None);
    }
}
