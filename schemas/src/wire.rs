//! How a batch of events travels from an emitter to the collector: the body formats and
//! their content types, shared by the collector and the emitter client.

/// How the batch is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: `{"events": [...]}` or `[...]` of proto3-JSON envelopes.
    Json,
    /// `application/x-protobuf`: an `EventBatch`.
    Protobuf,
}

impl Format {
    /// Its name in bad rows and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Protobuf => "protobuf",
        }
    }

    /// The content type an emitter sends it with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/x-protobuf",
        }
    }

    /// The format a content type (without parameters, lower case) names, if any.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type {
            "application/json" => Some(Format::Json),
            "application/x-protobuf" | "application/protobuf" | "application/vnd.google.protobuf" => {
                Some(Format::Protobuf)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_round_trip() {
        for f in [Format::Json, Format::Protobuf] {
            assert_eq!(Format::from_content_type(f.content_type()), Some(f));
        }
        assert_eq!(Format::from_content_type("text/plain"), None);
    }
}
