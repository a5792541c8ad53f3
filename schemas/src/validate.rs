//! Validation of one event: every problem, each with its field path and reason.
//!
//! Pure and allocation-free on the success path (the hot path of the consumer).
use crate::SUPPORTED_SCHEMA_VERSIONS;
use crate::events::{
    DeviceType, Emitter, Envelope, Gameplay, Platform, TargetKind, Viewing, envelope::Body, gameplay, viewing,
};
use std::fmt;

/// Limits that are policy rather than schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How far an event time may be ahead of its receive time (clock skew), in ms.
    pub max_future_ms: i64,
    /// How far an event time may be behind its receive time (offline buffering), in ms.
    pub max_past_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_future_ms: 5 * 60_000,
            max_past_ms: 7 * 24 * 3_600_000,
        }
    }
}

/// Longest id (profile, session, title, player, game) accepted.
pub const MAX_ID_LEN: usize = 128;
/// Longest short label (app id, error code, weapon, ...) accepted.
pub const MAX_LABEL_LEN: usize = 64;

/// One problem with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the proto field names, e.g. `viewing.rebuffer_end.duration_ms`.
    pub field: &'static str,
    /// Why it was refused, for a human.
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Every problem of an event (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: {}", display_all(.0))]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// The first problem: the one a dead letter is filed under.
    pub fn first(&self) -> &FieldError {
        // A non-empty Vec is this type's invariant: only `validate` builds it.
        &self.0[0]
    }
}

impl Invalid {
    /// Whether the event's identity survived validation: its id is a UUIDv7 and its event
    /// time (what places the id in a window) was accepted. Only then can a later copy of it be
    /// recognised as the same event.
    pub fn identity_intact(&self) -> bool {
        !self.0.iter().any(|e| {
            matches!(
                e.field,
                "schema_version" | "event_id" | "event_time_ms" | "receive_time_ms"
            )
        })
    }
}

fn display_all(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Validates an event against its schema version and `limits`.
pub fn validate(event: &Envelope, limits: &Limits) -> Result<(), Invalid> {
    let mut v = Checker::default();
    if !SUPPORTED_SCHEMA_VERSIONS.contains(&event.schema_version) {
        // The other fields mean nothing under an unknown version: report only this.
        v.push(
            "schema_version",
            format!(
                "unknown schema version {} (this build reads {}..={})",
                event.schema_version,
                SUPPORTED_SCHEMA_VERSIONS.start(),
                SUPPORTED_SCHEMA_VERSIONS.end()
            ),
        );
        return v.finish();
    }
    if event.event_id.is_empty() {
        v.push("event_id", "missing".into());
    } else if !is_uuid_v7(&event.event_id) {
        v.push(
            "event_id",
            format!("{:?} is not a UUIDv7 in canonical form", truncate(&event.event_id)),
        );
    }
    check_times(&mut v, event, limits);
    match &event.emitter {
        None => v.push("emitter", "missing".into()),
        Some(e) => check_emitter(&mut v, e),
    }
    match &event.body {
        None => v.push("body", "missing: one of viewing or gameplay is required".into()),
        Some(Body::Viewing(b)) => check_viewing(&mut v, b),
        Some(Body::Gameplay(b)) => check_gameplay(&mut v, b),
    }
    v.finish()
}

fn check_times(v: &mut Checker, e: &Envelope, limits: &Limits) {
    if e.receive_time_ms <= 0 {
        v.push("receive_time_ms", "missing".into());
    }
    if e.event_time_ms <= 0 {
        v.push("event_time_ms", "missing".into());
        return;
    }
    if e.receive_time_ms <= 0 {
        return;
    }
    let ahead = e.event_time_ms.saturating_sub(e.receive_time_ms);
    if ahead > limits.max_future_ms {
        v.push(
            "event_time_ms",
            format!("{ahead} ms ahead of receive time (limit {} ms)", limits.max_future_ms),
        );
    }
    let behind = e.receive_time_ms.saturating_sub(e.event_time_ms);
    if behind > limits.max_past_ms {
        v.push(
            "event_time_ms",
            format!("{behind} ms behind receive time (limit {} ms)", limits.max_past_ms),
        );
    }
}

fn check_emitter(v: &mut Checker, e: &Emitter) {
    v.required("emitter.app_id", &e.app_id, MAX_LABEL_LEN);
    v.max_len("emitter.app_version", &e.app_version, 32);
    v.enum_value(
        "emitter.device_type",
        e.device_type,
        DeviceType::try_from(e.device_type).is_ok(),
    );
    v.enum_value("emitter.platform", e.platform, Platform::try_from(e.platform).is_ok());
    let iso = e.country.len() == 2 && e.country.bytes().all(|b| b.is_ascii_uppercase());
    if !e.country.is_empty() && !iso {
        v.push(
            "emitter.country",
            format!("{:?} is not an ISO 3166-1 alpha-2 code", truncate(&e.country)),
        );
    }
}

fn check_viewing(v: &mut Checker, b: &Viewing) {
    v.required("viewing.profile_id", &b.profile_id, MAX_ID_LEN);
    v.required("viewing.playback_session_id", &b.playback_session_id, MAX_ID_LEN);
    v.required("viewing.title_id", &b.title_id, MAX_ID_LEN);
    use viewing::Kind as K;
    match &b.kind {
        None => v.push("viewing.kind", "missing: no viewing event kind is set".into()),
        Some(K::PlayStart(p)) => v.non_negative("viewing.play_start.startup_ms", p.startup_ms),
        Some(K::Heartbeat(h)) => {
            v.non_negative("viewing.heartbeat.position_ms", h.position_ms);
            v.non_negative("viewing.heartbeat.bitrate_kbps", h.bitrate_kbps);
            v.non_negative("viewing.heartbeat.watched_ms", h.watched_ms);
        }
        Some(K::Pause(p)) => v.non_negative("viewing.pause.position_ms", p.position_ms),
        Some(K::Resume(p)) => v.non_negative("viewing.resume.position_ms", p.position_ms),
        Some(K::Seek(s)) => {
            v.non_negative("viewing.seek.from_ms", s.from_ms);
            v.non_negative("viewing.seek.to_ms", s.to_ms);
        }
        Some(K::RebufferStart(r)) => v.non_negative("viewing.rebuffer_start.position_ms", r.position_ms),
        Some(K::RebufferEnd(r)) => {
            v.non_negative("viewing.rebuffer_end.position_ms", r.position_ms);
            v.non_negative("viewing.rebuffer_end.duration_ms", r.duration_ms);
        }
        Some(K::BitrateChange(c)) => {
            v.non_negative("viewing.bitrate_change.from_kbps", c.from_kbps);
            v.non_negative("viewing.bitrate_change.to_kbps", c.to_kbps);
        }
        Some(K::Error(e)) => v.required("viewing.error.code", &e.code, MAX_LABEL_LEN),
        Some(K::Stop(s)) => v.non_negative("viewing.stop.position_ms", s.position_ms),
    }
}

fn check_gameplay(v: &mut Checker, b: &Gameplay) {
    v.required("gameplay.player_id", &b.player_id, MAX_ID_LEN);
    v.required("gameplay.game_session_id", &b.game_session_id, MAX_ID_LEN);
    v.required("gameplay.game_id", &b.game_id, MAX_ID_LEN);
    use gameplay::Kind as K;
    match &b.kind {
        None => v.push("gameplay.kind", "missing: no gameplay event kind is set".into()),
        Some(K::SessionStart(s)) => v.max_len("gameplay.session_start.map_id", &s.map_id, MAX_LABEL_LEN),
        Some(K::SessionEnd(s)) => v.non_negative("gameplay.session_end.duration_ms", s.duration_ms),
        Some(K::Shot(s)) => v.max_len("gameplay.shot.weapon", &s.weapon, MAX_LABEL_LEN),
        Some(K::Hit(h)) => {
            v.non_negative("gameplay.hit.damage", h.damage);
            v.enum_value(
                "gameplay.hit.target_kind",
                h.target_kind,
                TargetKind::try_from(h.target_kind).is_ok(),
            );
        }
        Some(K::Kill(k)) => v.enum_value(
            "gameplay.kill.target_kind",
            k.target_kind,
            TargetKind::try_from(k.target_kind).is_ok(),
        ),
        Some(K::Death(d)) => v.max_len("gameplay.death.cause", &d.cause, MAX_LABEL_LEN),
        Some(K::LevelUp(l)) => {
            if l.level < 1 {
                v.push("gameplay.level_up.level", format!("{} is below 1", l.level));
            }
        }
        Some(K::Purchase(p)) => {
            v.required("gameplay.purchase.item_id", &p.item_id, MAX_LABEL_LEN);
            v.non_negative("gameplay.purchase.amount_cents", p.amount_cents);
            if !(p.currency.len() == 3 && p.currency.bytes().all(|b| b.is_ascii_uppercase())) {
                v.push(
                    "gameplay.purchase.currency",
                    format!("{:?} is not an ISO 4217 code", truncate(&p.currency)),
                );
            }
        }
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn push(&mut self, field: &'static str, reason: String) {
        self.errors.push(FieldError { field, reason });
    }
    fn required(&mut self, field: &'static str, value: &str, max: usize) {
        if value.is_empty() {
            self.push(field, "missing".into());
        } else {
            self.max_len(field, value, max);
        }
    }
    fn max_len(&mut self, field: &'static str, value: &str, max: usize) {
        let chars = value.chars().count();
        if value.len() > max && chars > max {
            self.push(field, format!("{chars} characters, over the limit of {max}"));
        }
    }
    fn non_negative(&mut self, field: &'static str, value: i64) {
        if value < 0 {
            self.push(field, format!("{value} is negative"));
        }
    }
    fn enum_value(&mut self, field: &'static str, value: i32, known: bool) {
        if !known {
            self.push(field, format!("unknown enum value {value}"));
        }
    }
    fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}

/// Canonical lower- or upper-case hex UUID with version nibble 7 and the RFC 4122 variant.
fn is_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return false;
        }
    }
    b[14] == b'7' && matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// The 128 bits of a canonical UUIDv7 (either case), or `None` for anything else. Never 0:
/// the version nibble is 7.
pub fn uuid_v7_bits(s: &str) -> Option<u128> {
    if !is_uuid_v7(s) {
        return None;
    }
    let mut v: u128 = 0;
    for c in s.bytes().filter(|c| *c != b'-') {
        // is_uuid_v7 admitted only hex digits here.
        v = (v << 4) | u128::from((c as char).to_digit(16)?);
    }
    Some(v)
}

/// Keeps error messages short when the offending value is huge.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
