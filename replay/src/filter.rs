//! Which events a replay keeps: event-time range, kind, title or game, emitter, session.
use inlet_schemas::events::{Envelope, envelope::Body};
use inlet_schemas::kind::{kind_name, partition_key};

/// Criteria; an empty list accepts everything. Lists are alternatives (OR), criteria must all
/// hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Event time at or after this, ms since the epoch.
    pub from_ms: Option<i64>,
    /// Event time before this.
    pub to_ms: Option<i64>,
    /// Kinds: `viewing.heartbeat`, `heartbeat` or a whole family, `viewing`/`gameplay`.
    pub kinds: Vec<String>,
    /// Viewing events of these titles...
    pub titles: Vec<String>,
    /// ... or gameplay events of these games.
    pub games: Vec<String>,
    /// Emitter app ids.
    pub apps: Vec<String>,
    /// Playback or game session ids.
    pub sessions: Vec<String>,
}

impl Filter {
    /// Whether it looks at anything besides the time range.
    pub fn selects_events(&self) -> bool {
        !(self.kinds.is_empty()
            && self.titles.is_empty()
            && self.games.is_empty()
            && self.apps.is_empty()
            && self.sessions.is_empty())
    }

    /// Whether it accepts records that are not events (malformed bytes): only when it
    /// selects nothing.
    pub fn accepts_non_events(&self) -> bool {
        !self.selects_events() && self.from_ms.is_none() && self.to_ms.is_none()
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Envelope) -> bool {
        let t = event.event_time_ms;
        if self.from_ms.is_some_and(|f| t < f) || self.to_ms.is_some_and(|e| t >= e) {
            return false;
        }
        let kind = kind_name(event);
        let kind_ok = self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                kind == k
                    || kind
                        .split_once('.')
                        .is_some_and(|(family, short)| family == k || short == k)
            });
        let content_ok = (self.titles.is_empty() && self.games.is_empty())
            || match &event.body {
                Some(Body::Viewing(v)) => self.titles.contains(&v.title_id),
                Some(Body::Gameplay(g)) => self.games.contains(&g.game_id),
                None => false,
            };
        let app_ok = self.apps.is_empty() || event.emitter.as_ref().is_some_and(|e| self.apps.contains(&e.app_id));
        let session_ok = self.sessions.is_empty() || self.sessions.iter().any(|s| s == partition_key(event));
        kind_ok && content_ok && app_ok && session_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_schemas::events::{Emitter, Heartbeat, Viewing, viewing};

    fn heartbeat(title: &str, t: i64) -> Envelope {
        Envelope {
            event_time_ms: t,
            emitter: Some(Emitter {
                app_id: "tv-app".into(),
                ..Default::default()
            }),
            body: Some(Body::Viewing(Viewing {
                title_id: title.into(),
                playback_session_id: "play-1".into(),
                kind: Some(viewing::Kind::Heartbeat(Heartbeat::default())),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn criteria_and_together_alternatives_or() {
        let e = heartbeat("title-0001", 1_000);
        assert!(Filter::default().matches(&e));
        for kinds in [["heartbeat"], ["viewing"], ["viewing.heartbeat"]] {
            let f = Filter {
                kinds: kinds.iter().map(|k| k.to_string()).collect(),
                ..Default::default()
            };
            assert!(f.matches(&e), "{kinds:?}");
        }
        let f = Filter {
            kinds: vec!["gameplay".into()],
            ..Default::default()
        };
        assert!(!f.matches(&e));
        let f = Filter {
            titles: vec!["title-0002".into()],
            games: vec!["game-001".into()],
            ..Default::default()
        };
        assert!(!f.matches(&e));
        let f = Filter {
            titles: vec!["title-0002".into(), "title-0001".into()],
            apps: vec!["tv-app".into()],
            sessions: vec!["play-1".into()],
            from_ms: Some(1_000),
            to_ms: Some(1_001),
            ..Default::default()
        };
        assert!(f.matches(&e));
        let f = Filter {
            to_ms: Some(1_000),
            ..Default::default()
        };
        assert!(!f.matches(&e));
    }
}
