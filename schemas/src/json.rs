//! JSON in and out: the proto3 JSON mapping of [`Envelope`], with errors naming the field.
use crate::events::Envelope;

/// A JSON document that is not an event, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct JsonError {
    /// JSON path of the offending field (`.` for the document itself).
    pub field: String,
    /// What is wrong there.
    pub reason: String,
}

fn from_path_error(e: serde_path_to_error::Error<serde_json::Error>) -> JsonError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    // serde_json appends " at line L column C": keep the reason only, the path says where.
    let mut reason = inner.to_string();
    if let Some(i) = reason.find(" at line ") {
        reason.truncate(i);
    }
    JsonError { field: path, reason }
}

/// Decodes one event from its JSON form.
pub fn decode_event(json: &[u8]) -> Result<Envelope, JsonError> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    let event = serde_path_to_error::deserialize(de).map_err(from_path_error)?;
    Ok(event)
}

/// Decodes a batch: a JSON array of events, or an object `{"events": [...]}`.
///
/// The outer `Err` is a document that is not a batch at all; each element is decoded on its
/// own, so one bad event does not reject its neighbours.
pub fn decode_batch(json: &[u8]) -> Result<Vec<Result<Envelope, JsonError>>, JsonError> {
    type Raw = Box<serde_json::value::RawValue>;
    #[derive(serde::Deserialize)]
    struct Wrapped {
        events: Vec<Raw>,
    }
    // Dispatch on the first byte rather than with `#[serde(untagged)]`: untagged buffers
    // its input, and `RawValue` only deserializes from serde_json's own deserializer.
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    let items: Result<Vec<Raw>, _> = match first {
        Some(b'[') => serde_json::from_slice(json),
        _ => serde_json::from_slice::<Wrapped>(json).map(|w| w.events),
    };
    let items = items.map_err(|e| JsonError {
        field: ".".into(),
        reason: format!("not a batch (a JSON array of events or {{\"events\": [...]}}): {e}"),
    })?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            decode_event(raw.get().as_bytes()).map_err(|e| {
                let inner = e.field.trim_start_matches('.');
                let field = if inner.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("[{i}].{inner}")
                };
                JsonError {
                    field,
                    reason: e.reason,
                }
            })
        })
        .collect())
}

/// Encodes one event in its JSON form.
pub fn encode_event(event: &Envelope) -> String {
    // Serializing generated pbjson types into a String cannot fail: no maps with non-string
    // keys, no I/O.
    serde_json::to_string(event).unwrap_or_default()
}
