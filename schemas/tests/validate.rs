//! One test per rule of `validate::validate`: each asserts the exact field path and the
//! reason, plus the limits' boundaries, every valid kind, and how problems are reported.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inlet_schemas::events::{
    BitrateChange, Death, DeviceType, Emitter, Envelope, Gameplay, Heartbeat, Hit, Kill, LevelUp, Pause, Platform,
    PlayStart, PlaybackError, Purchase, RebufferEnd, RebufferStart, Resume, Seek, SessionEnd, SessionStart, Shot, Stop,
    TargetKind, Viewing, envelope::Body, gameplay, viewing,
};
use inlet_schemas::kind::kind_name;
use inlet_schemas::validate::{FieldError, Invalid, Limits, MAX_ID_LEN, MAX_LABEL_LEN, validate};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const UUID_V7: &str = "01890a5d-ac96-774b-bcce-b302099a8057";
const FIVE_MIN: i64 = 5 * 60_000;
const SEVEN_DAYS: i64 = 7 * 24 * 3_600_000;

fn emitter() -> Emitter {
    Emitter {
        app_id: "tv-app".into(),
        app_version: "5.1.0".into(),
        device_type: DeviceType::Tv as i32,
        platform: Platform::AndroidTv as i32,
        country: "US".into(),
    }
}

fn envelope(body: Body) -> Envelope {
    Envelope {
        event_id: UUID_V7.into(),
        event_time_ms: T0,
        receive_time_ms: T0 + 1_000,
        emitter: Some(emitter()),
        schema_version: 1,
        body: Some(body),
    }
}

fn viewing_event(kind: viewing::Kind) -> Envelope {
    envelope(Body::Viewing(Viewing {
        profile_id: "profile-1".into(),
        playback_session_id: "play-1".into(),
        title_id: "title-0001".into(),
        kind: Some(kind),
    }))
}

fn gameplay_event(kind: gameplay::Kind) -> Envelope {
    envelope(Body::Gameplay(Gameplay {
        player_id: "player-1".into(),
        game_session_id: "game-1".into(),
        game_id: "game-001".into(),
        kind: Some(kind),
    }))
}

/// A valid instance of every viewing kind.
fn viewing_kinds() -> Vec<viewing::Kind> {
    use viewing::Kind as K;
    vec![
        K::PlayStart(PlayStart { startup_ms: 850 }),
        K::Heartbeat(Heartbeat {
            position_ms: 10_000,
            bitrate_kbps: 4_500,
            watched_ms: 10_000,
        }),
        K::Pause(Pause { position_ms: 12_000 }),
        K::Resume(Resume { position_ms: 12_000 }),
        K::Seek(Seek {
            from_ms: 12_000,
            to_ms: 60_000,
        }),
        K::RebufferStart(RebufferStart { position_ms: 60_000 }),
        K::RebufferEnd(RebufferEnd {
            position_ms: 60_000,
            duration_ms: 700,
        }),
        K::BitrateChange(BitrateChange {
            from_kbps: 4_500,
            to_kbps: 2_000,
        }),
        K::Error(PlaybackError {
            code: "E_DRM".into(),
            fatal: true,
        }),
        K::Stop(Stop { position_ms: 61_000 }),
    ]
}

/// A valid instance of every gameplay kind.
fn gameplay_kinds() -> Vec<gameplay::Kind> {
    use gameplay::Kind as K;
    vec![
        K::SessionStart(SessionStart { map_id: "dust".into() }),
        K::SessionEnd(SessionEnd { duration_ms: 600_000 }),
        K::Shot(Shot { weapon: "bow".into() }),
        K::Hit(Hit {
            damage: 12,
            target_kind: TargetKind::Goblin as i32,
        }),
        K::Kill(Kill {
            target_kind: TargetKind::Dragon as i32,
        }),
        K::Death(Death { cause: "lava".into() }),
        K::LevelUp(LevelUp { level: 2 }),
        K::Purchase(Purchase {
            item_id: "sword".into(),
            amount_cents: 499,
            currency: "EUR".into(),
        }),
    ]
}

fn check(event: &Envelope) -> Result<(), Invalid> {
    validate(event, &Limits::default())
}

fn errors(event: &Envelope) -> Vec<FieldError> {
    match check(event) {
        Ok(()) => panic!("expected {event:?} to be invalid"),
        Err(Invalid(errors)) => errors,
    }
}

/// Exactly one problem, at `field`, whose reason contains `reason`.
#[track_caller]
fn assert_only(event: &Envelope, field: &str, reason: &str) {
    let errors = errors(event);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:?}");
    assert_eq!(errors[0].field, field, "{errors:?}");
    assert!(
        errors[0].reason.contains(reason),
        "reason {:?} should contain {reason:?}",
        errors[0].reason
    );
}

#[track_caller]
fn assert_valid(event: &Envelope) {
    assert_eq!(check(event), Ok(()), "{event:?}");
}

fn with_viewing(f: impl FnOnce(&mut Viewing)) -> Envelope {
    let mut e = viewing_event(viewing_kinds().remove(0));
    match &mut e.body {
        Some(Body::Viewing(v)) => f(v),
        _ => unreachable!(),
    }
    e
}

fn with_gameplay(f: impl FnOnce(&mut Gameplay)) -> Envelope {
    let mut e = gameplay_event(gameplay_kinds().remove(0));
    match &mut e.body {
        Some(Body::Gameplay(g)) => f(g),
        _ => unreachable!(),
    }
    e
}

fn with_emitter(f: impl FnOnce(&mut Emitter)) -> Envelope {
    let mut e = viewing_event(viewing_kinds().remove(0));
    f(e.emitter.as_mut().unwrap());
    e
}

// ---------------------------------------------------------------------------------------------
// Valid events

#[test]
fn every_viewing_kind_is_valid() {
    let mut names = std::collections::BTreeSet::new();
    for kind in viewing_kinds() {
        let event = viewing_event(kind);
        assert_valid(&event);
        names.insert(kind_name(&event));
    }
    // One per viewing kind of the proto.
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(!names.contains("viewing.unknown"));
}

#[test]
fn every_gameplay_kind_is_valid() {
    let mut names = std::collections::BTreeSet::new();
    for kind in gameplay_kinds() {
        let event = gameplay_event(kind);
        assert_valid(&event);
        names.insert(kind_name(&event));
    }
    // One per gameplay kind of the proto.
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(!names.contains("gameplay.unknown"));
}

#[test]
fn zero_values_are_valid_where_only_negatives_are_refused() {
    use viewing::Kind as V;
    assert_valid(&viewing_event(V::Heartbeat(Heartbeat::default())));
    assert_valid(&viewing_event(V::RebufferEnd(RebufferEnd::default())));
    assert_valid(&gameplay_event(gameplay::Kind::Hit(Hit::default())));
    assert_valid(&gameplay_event(gameplay::Kind::SessionStart(SessionStart::default())));
    // Unspecified enums, an empty country and empty app version are allowed.
    assert_valid(&with_emitter(|e| {
        e.device_type = 0;
        e.platform = 0;
        e.country.clear();
        e.app_version.clear();
    }));
}

// ---------------------------------------------------------------------------------------------
// Schema version

#[test]
fn unknown_schema_version_is_the_only_error_reported() {
    for version in [0u32, 2, 99] {
        let mut e = viewing_event(viewing_kinds().remove(0));
        e.schema_version = version;
        // Everything else is bad too: none of it is reported.
        e.event_id.clear();
        e.receive_time_ms = 0;
        e.emitter = None;
        e.body = None;
        let errors = errors(&e);
        assert_eq!(
            errors,
            vec![FieldError {
                field: "schema_version",
                reason: format!("unknown schema version {version} (this build reads 1..=1)"),
            }]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Event id

#[test]
fn missing_event_id() {
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.event_id.clear();
    assert_only(&e, "event_id", "missing");
}

#[test]
fn event_id_must_be_a_canonical_uuid_v7() {
    let bad = [
        // version 4
        "01890a5d-ac96-474b-bcce-b302099a8057",
        // variant not RFC 4122 (c)
        "01890a5d-ac96-774b-ccce-b302099a8057",
        // no hyphens
        "01890a5dac96774bbcceb302099a8057",
        // braces
        "{01890a5d-ac96-774b-bcce-b302099a8057}",
        // a hyphen moved
        "01890a5-dac96-774b-bcce-b302099a8057",
        // not hex
        "01890a5d-ac96-774b-bcce-b302099a805g",
        // one character short
        "01890a5d-ac96-774b-bcce-b302099a805",
        "not-a-uuid",
    ];
    for id in bad {
        let mut e = viewing_event(viewing_kinds().remove(0));
        e.event_id = id.into();
        assert_only(&e, "event_id", "is not a UUIDv7 in canonical form");
        assert_eq!(
            errors(&e)[0].reason,
            format!("{id:?} is not a UUIDv7 in canonical form")
        );
    }
    // Upper case and every RFC 4122 variant nibble are fine.
    for id in [
        "01890A5D-AC96-774B-BCCE-B302099A8057",
        "01890a5d-ac96-774b-8cce-b302099a8057",
        "01890a5d-ac96-774b-9cce-b302099a8057",
        "01890a5d-ac96-774b-acce-b302099a8057",
        "01890a5d-ac96-774b-Bcce-b302099a8057",
    ] {
        let mut e = viewing_event(viewing_kinds().remove(0));
        e.event_id = id.into();
        assert_valid(&e);
    }
}

#[test]
fn a_huge_event_id_is_truncated_in_the_reason() {
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.event_id = "x".repeat(10_000);
    let errors = errors(&e);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "event_id");
    assert_eq!(
        errors[0].reason,
        format!("{:?} is not a UUIDv7 in canonical form", "x".repeat(40))
    );
}

// ---------------------------------------------------------------------------------------------
// Times

#[test]
fn missing_receive_time() {
    for receive in [0, -5] {
        let mut e = viewing_event(viewing_kinds().remove(0));
        e.receive_time_ms = receive;
        // Without a receive time, skew is not checked: only one error.
        assert_only(&e, "receive_time_ms", "missing");
    }
}

#[test]
fn missing_event_time() {
    for event in [0, -1] {
        let mut e = viewing_event(viewing_kinds().remove(0));
        e.event_time_ms = event;
        assert_only(&e, "event_time_ms", "missing");
    }
}

#[test]
fn both_times_missing_are_two_errors() {
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.event_time_ms = 0;
    e.receive_time_ms = 0;
    let fields: Vec<_> = errors(&e).into_iter().map(|f| (f.field, f.reason)).collect();
    assert_eq!(
        fields,
        vec![
            ("receive_time_ms", "missing".to_owned()),
            ("event_time_ms", "missing".to_owned())
        ]
    );
}

#[test]
fn event_time_too_far_ahead_of_receive_time() {
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.receive_time_ms = T0;
    e.event_time_ms = T0 + FIVE_MIN;
    assert_valid(&e); // exactly the limit
    e.event_time_ms = T0 + FIVE_MIN + 1;
    assert_eq!(
        errors(&e),
        vec![FieldError {
            field: "event_time_ms",
            reason: "300001 ms ahead of receive time (limit 300000 ms)".into(),
        }]
    );
    e.event_time_ms = i64::MAX;
    assert_only(&e, "event_time_ms", "ms ahead of receive time (limit 300000 ms)");
}

#[test]
fn event_time_too_far_behind_receive_time() {
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.receive_time_ms = T0;
    e.event_time_ms = T0 - SEVEN_DAYS;
    assert_valid(&e); // exactly the limit
    e.event_time_ms = T0 - SEVEN_DAYS - 1;
    assert_eq!(
        errors(&e),
        vec![FieldError {
            field: "event_time_ms",
            reason: "604800001 ms behind receive time (limit 604800000 ms)".into(),
        }]
    );
}

#[test]
fn time_limits_come_from_the_limits_argument() {
    let limits = Limits {
        max_future_ms: 10,
        max_past_ms: 20,
    };
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.receive_time_ms = T0;
    e.event_time_ms = T0 + 10;
    assert_eq!(validate(&e, &limits), Ok(()));
    e.event_time_ms = T0 + 11;
    let err = validate(&e, &limits).unwrap_err();
    assert_eq!(err.first().reason, "11 ms ahead of receive time (limit 10 ms)");
    e.event_time_ms = T0 - 20;
    assert_eq!(validate(&e, &limits), Ok(()));
    e.event_time_ms = T0 - 21;
    let err = validate(&e, &limits).unwrap_err();
    assert_eq!(err.first().reason, "21 ms behind receive time (limit 20 ms)");
}

// ---------------------------------------------------------------------------------------------
// Emitter

#[test]
fn missing_emitter() {
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.emitter = None;
    assert_only(&e, "emitter", "missing");
}

#[test]
fn app_id_missing() {
    assert_only(&with_emitter(|e| e.app_id.clear()), "emitter.app_id", "missing");
}

#[test]
fn app_id_over_64_characters() {
    assert_eq!(MAX_LABEL_LEN, 64);
    assert_valid(&with_emitter(|e| e.app_id = "a".repeat(64)));
    // The limit is in characters, not bytes: 64 two-byte characters are fine.
    assert_valid(&with_emitter(|e| e.app_id = "é".repeat(64)));
    assert_only(
        &with_emitter(|e| e.app_id = "a".repeat(65)),
        "emitter.app_id",
        "65 characters, over the limit of 64",
    );
    assert_only(
        &with_emitter(|e| e.app_id = "é".repeat(65)),
        "emitter.app_id",
        "65 characters, over the limit of 64",
    );
}

#[test]
fn app_version_over_32_characters() {
    assert_valid(&with_emitter(|e| e.app_version = "1".repeat(32)));
    assert_only(
        &with_emitter(|e| e.app_version = "1".repeat(33)),
        "emitter.app_version",
        "33 characters, over the limit of 32",
    );
}

#[test]
fn unknown_device_type() {
    assert_only(
        &with_emitter(|e| e.device_type = 99),
        "emitter.device_type",
        "unknown enum value 99",
    );
    assert_only(
        &with_emitter(|e| e.device_type = -1),
        "emitter.device_type",
        "unknown enum value -1",
    );
    assert_valid(&with_emitter(|e| e.device_type = DeviceType::Web as i32));
}

#[test]
fn unknown_platform() {
    assert_only(
        &with_emitter(|e| e.platform = 99),
        "emitter.platform",
        "unknown enum value 99",
    );
    assert_valid(&with_emitter(|e| e.platform = Platform::Switch as i32));
}

#[test]
fn bad_country() {
    for country in ["us", "USA", "U", "U1", "Üs", "GBR"] {
        let e = with_emitter(|e| e.country = country.into());
        assert_eq!(
            errors(&e),
            vec![FieldError {
                field: "emitter.country",
                reason: format!("{country:?} is not an ISO 3166-1 alpha-2 code"),
            }]
        );
    }
    assert_valid(&with_emitter(|e| e.country = "JP".into()));
}

// ---------------------------------------------------------------------------------------------
// Body

#[test]
fn missing_body() {
    let mut e = viewing_event(viewing_kinds().remove(0));
    e.body = None;
    assert_only(&e, "body", "missing: one of viewing or gameplay is required");
}

/// Picks one id field of a body.
type IdOf<B> = fn(&mut B) -> &mut String;

#[test]
fn viewing_required_ids() {
    let cases: [(&str, IdOf<Viewing>); 3] = [
        ("viewing.profile_id", |v| &mut v.profile_id),
        ("viewing.playback_session_id", |v| &mut v.playback_session_id),
        ("viewing.title_id", |v| &mut v.title_id),
    ];
    for (field, get) in cases {
        assert_only(&with_viewing(|v| get(v).clear()), field, "missing");
        assert_valid(&with_viewing(|v| *get(v) = "i".repeat(MAX_ID_LEN)));
        assert_only(
            &with_viewing(|v| *get(v) = "i".repeat(MAX_ID_LEN + 1)),
            field,
            "129 characters, over the limit of 128",
        );
    }
}

#[test]
fn gameplay_required_ids() {
    let cases: [(&str, IdOf<Gameplay>); 3] = [
        ("gameplay.player_id", |g| &mut g.player_id),
        ("gameplay.game_session_id", |g| &mut g.game_session_id),
        ("gameplay.game_id", |g| &mut g.game_id),
    ];
    for (field, get) in cases {
        assert_only(&with_gameplay(|g| get(g).clear()), field, "missing");
        assert_valid(&with_gameplay(|g| *get(g) = "i".repeat(MAX_ID_LEN)));
        assert_only(
            &with_gameplay(|g| *get(g) = "i".repeat(MAX_ID_LEN + 1)),
            field,
            "129 characters, over the limit of 128",
        );
    }
}

#[test]
fn missing_viewing_kind() {
    assert_only(
        &with_viewing(|v| v.kind = None),
        "viewing.kind",
        "missing: no viewing event kind is set",
    );
}

#[test]
fn missing_gameplay_kind() {
    assert_only(
        &with_gameplay(|g| g.kind = None),
        "gameplay.kind",
        "missing: no gameplay event kind is set",
    );
}

#[test]
fn negative_values_of_every_non_negative_field() {
    use gameplay::Kind as G;
    use viewing::Kind as V;
    let cases: Vec<(&str, Envelope)> = vec![
        (
            "viewing.play_start.startup_ms",
            viewing_event(V::PlayStart(PlayStart { startup_ms: -1 })),
        ),
        (
            "viewing.heartbeat.position_ms",
            viewing_event(V::Heartbeat(Heartbeat {
                position_ms: -1,
                bitrate_kbps: 1,
                watched_ms: 1,
            })),
        ),
        (
            "viewing.heartbeat.bitrate_kbps",
            viewing_event(V::Heartbeat(Heartbeat {
                position_ms: 1,
                bitrate_kbps: -1,
                watched_ms: 1,
            })),
        ),
        (
            "viewing.heartbeat.watched_ms",
            viewing_event(V::Heartbeat(Heartbeat {
                position_ms: 1,
                bitrate_kbps: 1,
                watched_ms: -1,
            })),
        ),
        (
            "viewing.pause.position_ms",
            viewing_event(V::Pause(Pause { position_ms: -1 })),
        ),
        (
            "viewing.resume.position_ms",
            viewing_event(V::Resume(Resume { position_ms: -1 })),
        ),
        (
            "viewing.seek.from_ms",
            viewing_event(V::Seek(Seek { from_ms: -1, to_ms: 1 })),
        ),
        (
            "viewing.seek.to_ms",
            viewing_event(V::Seek(Seek { from_ms: 1, to_ms: -1 })),
        ),
        (
            "viewing.rebuffer_start.position_ms",
            viewing_event(V::RebufferStart(RebufferStart { position_ms: -1 })),
        ),
        (
            "viewing.rebuffer_end.position_ms",
            viewing_event(V::RebufferEnd(RebufferEnd {
                position_ms: -1,
                duration_ms: 1,
            })),
        ),
        (
            "viewing.rebuffer_end.duration_ms",
            viewing_event(V::RebufferEnd(RebufferEnd {
                position_ms: 1,
                duration_ms: -1,
            })),
        ),
        (
            "viewing.bitrate_change.from_kbps",
            viewing_event(V::BitrateChange(BitrateChange {
                from_kbps: -1,
                to_kbps: 1,
            })),
        ),
        (
            "viewing.bitrate_change.to_kbps",
            viewing_event(V::BitrateChange(BitrateChange {
                from_kbps: 1,
                to_kbps: -1,
            })),
        ),
        (
            "viewing.stop.position_ms",
            viewing_event(V::Stop(Stop { position_ms: -1 })),
        ),
        (
            "gameplay.session_end.duration_ms",
            gameplay_event(G::SessionEnd(SessionEnd { duration_ms: -1 })),
        ),
        (
            "gameplay.hit.damage",
            gameplay_event(G::Hit(Hit {
                damage: -1,
                target_kind: 1,
            })),
        ),
        (
            "gameplay.purchase.amount_cents",
            gameplay_event(G::Purchase(Purchase {
                item_id: "sword".into(),
                amount_cents: -1,
                currency: "USD".into(),
            })),
        ),
    ];
    for (field, event) in &cases {
        assert_eq!(
            errors(event),
            vec![FieldError {
                field,
                reason: "-1 is negative".into()
            }],
            "{field}"
        );
    }
    // i64::MIN is reported too (no overflow).
    let e = viewing_event(V::RebufferEnd(RebufferEnd {
        position_ms: 0,
        duration_ms: i64::MIN,
    }));
    assert_only(
        &e,
        "viewing.rebuffer_end.duration_ms",
        &format!("{} is negative", i64::MIN),
    );
}

#[test]
fn two_negative_fields_of_one_kind_are_both_reported() {
    let e = viewing_event(viewing::Kind::Heartbeat(Heartbeat {
        position_ms: -1,
        bitrate_kbps: -2,
        watched_ms: -3,
    }));
    let got: Vec<_> = errors(&e).into_iter().map(|f| (f.field, f.reason)).collect();
    assert_eq!(
        got,
        vec![
            ("viewing.heartbeat.position_ms", "-1 is negative".to_owned()),
            ("viewing.heartbeat.bitrate_kbps", "-2 is negative".to_owned()),
            ("viewing.heartbeat.watched_ms", "-3 is negative".to_owned()),
        ]
    );
}

#[test]
fn playback_error_code_required() {
    let e = viewing_event(viewing::Kind::Error(PlaybackError {
        code: String::new(),
        fatal: false,
    }));
    assert_only(&e, "viewing.error.code", "missing");
    let e = viewing_event(viewing::Kind::Error(PlaybackError {
        code: "c".repeat(65),
        fatal: false,
    }));
    assert_only(&e, "viewing.error.code", "65 characters, over the limit of 64");
}

#[test]
fn unknown_target_kind() {
    let e = gameplay_event(gameplay::Kind::Hit(Hit {
        damage: 5,
        target_kind: 99,
    }));
    assert_only(&e, "gameplay.hit.target_kind", "unknown enum value 99");
    let e = gameplay_event(gameplay::Kind::Kill(Kill { target_kind: 99 }));
    assert_only(&e, "gameplay.kill.target_kind", "unknown enum value 99");
    let e = gameplay_event(gameplay::Kind::Kill(Kill {
        target_kind: TargetKind::Boss as i32,
    }));
    assert_valid(&e);
}

#[test]
fn level_below_one() {
    for level in [0, -3, i32::MIN] {
        let e = gameplay_event(gameplay::Kind::LevelUp(LevelUp { level }));
        assert_eq!(
            errors(&e),
            vec![FieldError {
                field: "gameplay.level_up.level",
                reason: format!("{level} is below 1")
            }]
        );
    }
    assert_valid(&gameplay_event(gameplay::Kind::LevelUp(LevelUp { level: 1 })));
}

#[test]
fn purchase_item_id() {
    let p = |item_id: String| {
        gameplay_event(gameplay::Kind::Purchase(Purchase {
            item_id,
            amount_cents: 1,
            currency: "USD".into(),
        }))
    };
    assert_only(&p(String::new()), "gameplay.purchase.item_id", "missing");
    assert_only(
        &p("i".repeat(65)),
        "gameplay.purchase.item_id",
        "65 characters, over the limit of 64",
    );
    assert_valid(&p("i".repeat(64)));
}

#[test]
fn purchase_currency() {
    let p = |currency: &str| {
        gameplay_event(gameplay::Kind::Purchase(Purchase {
            item_id: "sword".into(),
            amount_cents: 1,
            currency: currency.into(),
        }))
    };
    for currency in ["", "usd", "US", "USDT", "U5D"] {
        assert_eq!(
            errors(&p(currency)),
            vec![FieldError {
                field: "gameplay.purchase.currency",
                reason: format!("{currency:?} is not an ISO 4217 code"),
            }],
            "{currency:?}"
        );
    }
    assert_valid(&p("JPY"));
}

#[test]
fn gameplay_labels_over_64_characters() {
    use gameplay::Kind as G;
    let long = "l".repeat(65);
    let cases = [
        (
            "gameplay.session_start.map_id",
            G::SessionStart(SessionStart { map_id: long.clone() }),
        ),
        ("gameplay.shot.weapon", G::Shot(Shot { weapon: long.clone() })),
        ("gameplay.death.cause", G::Death(Death { cause: long.clone() })),
    ];
    for (field, kind) in cases {
        assert_only(&gameplay_event(kind), field, "65 characters, over the limit of 64");
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting

#[test]
fn three_problems_are_reported_in_order() {
    let mut e = viewing_event(viewing::Kind::RebufferEnd(RebufferEnd {
        position_ms: 0,
        duration_ms: -5,
    }));
    e.event_id.clear();
    e.emitter.as_mut().unwrap().country = "usa".into();
    let errors = errors(&e);
    assert_eq!(
        errors,
        vec![
            FieldError {
                field: "event_id",
                reason: "missing".into()
            },
            FieldError {
                field: "emitter.country",
                reason: "\"usa\" is not an ISO 3166-1 alpha-2 code".into()
            },
            FieldError {
                field: "viewing.rebuffer_end.duration_ms",
                reason: "-5 is negative".into()
            },
        ]
    );
}

#[test]
fn first_and_display() {
    let mut e = with_gameplay(|g| g.game_id.clear());
    e.emitter = None;
    let invalid = check(&e).unwrap_err();
    assert_eq!(invalid.0.len(), 2);
    assert_eq!(
        invalid.first(),
        &FieldError {
            field: "emitter",
            reason: "missing".into()
        }
    );
    assert_eq!(invalid.first().to_string(), "emitter: missing");
    assert_eq!(
        invalid.to_string(),
        "invalid event: emitter: missing; gameplay.game_id: missing"
    );
}
