//! Which events a replay keeps: event-time range, kind, title or game, emitter, session.
use inlet_schemas::events::{Envelope, envelope::Body};
use inlet_schemas::kind::{kind_name, partition_key};

/// Every kind [`Filter::kinds`] can name in full, as [`kind_name`] spells them; the part after
/// the dot alone names the same kind (each is unique).
pub const KINDS: [&str; 18] = [
    "viewing.play_start",
    "viewing.heartbeat",
    "viewing.pause",
    "viewing.resume",
    "viewing.seek",
    "viewing.rebuffer_start",
    "viewing.rebuffer_end",
    "viewing.bitrate_change",
    "viewing.error",
    "viewing.stop",
    "gameplay.session_start",
    "gameplay.session_end",
    "gameplay.shot",
    "gameplay.hit",
    "gameplay.kill",
    "gameplay.death",
    "gameplay.level_up",
    "gameplay.purchase",
];

/// The families of [`KINDS`]: each names all of its kinds.
pub const FAMILIES: [&str; 2] = ["viewing", "gameplay"];

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
    fn every_kind_can_be_named_short_and_each_short_name_is_one_kind() {
        let short = |k: &'static str| k.split_once('.').map(|(_, s)| s);
        let mut shorts: Vec<_> = KINDS.iter().filter_map(|k| short(k)).collect();
        assert_eq!(shorts.len(), KINDS.len());
        shorts.sort_unstable();
        shorts.dedup();
        assert_eq!(shorts.len(), KINDS.len(), "a short name is ambiguous");
        for k in KINDS {
            assert!(FAMILIES.iter().any(|f| k.starts_with(&format!("{f}."))), "{k}");
            assert!(!FAMILIES.contains(&short(k).unwrap_or_default()), "{k}");
        }
    }

    #[test]
    fn the_kinds_listed_are_the_kinds_events_have() {
        use gameplay::Kind as G;
        use inlet_schemas::events::{Gameplay, gameplay, viewing::Kind as V};
        let viewing = [
            V::PlayStart(Default::default()),
            V::Heartbeat(Default::default()),
            V::Pause(Default::default()),
            V::Resume(Default::default()),
            V::Seek(Default::default()),
            V::RebufferStart(Default::default()),
            V::RebufferEnd(Default::default()),
            V::BitrateChange(Default::default()),
            V::Error(Default::default()),
            V::Stop(Default::default()),
        ]
        .map(|k| {
            Body::Viewing(Viewing {
                kind: Some(k),
                ..Default::default()
            })
        });
        let games = [
            G::SessionStart(Default::default()),
            G::SessionEnd(Default::default()),
            G::Shot(Default::default()),
            G::Hit(Default::default()),
            G::Kill(Default::default()),
            G::Death(Default::default()),
            G::LevelUp(Default::default()),
            G::Purchase(Default::default()),
        ]
        .map(|k| {
            Body::Gameplay(Gameplay {
                kind: Some(k),
                ..Default::default()
            })
        });
        let names: Vec<&str> = viewing
            .into_iter()
            .chain(games)
            .map(|body| {
                kind_name(&Envelope {
                    body: Some(body),
                    ..Default::default()
                })
            })
            .collect();
        assert_eq!(names, KINDS);
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
