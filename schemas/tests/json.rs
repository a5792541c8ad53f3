//! The proto3 JSON mapping of events: round trips, the shape of the JSON (camelCase names,
//! int64 as strings, enums as names), and errors that name the field; batches.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inlet_schemas::events::{
    BitrateChange, Death, DeviceType, Emitter, Envelope, Gameplay, Heartbeat, Hit, Kill, LevelUp, Pause, Platform,
    PlayStart, PlaybackError, Purchase, RebufferEnd, RebufferStart, Resume, Seek, SessionEnd, SessionStart, Shot, Stop,
    TargetKind, Viewing, envelope::Body, gameplay, viewing,
};
use inlet_schemas::json::{JsonError, decode_batch, decode_event, encode_event};
use serde_json::{Value, json};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn envelope(body: Option<Body>) -> Envelope {
    Envelope {
        event_id: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
        event_time_ms: T0,
        receive_time_ms: T0 + 1_234,
        emitter: Some(Emitter {
            app_id: "tv-app".into(),
            app_version: "5.1.0".into(),
            device_type: DeviceType::Tv as i32,
            platform: Platform::AndroidTv as i32,
            country: "US".into(),
        }),
        schema_version: 1,
        body,
    }
}

fn viewing_event(kind: viewing::Kind) -> Envelope {
    envelope(Some(Body::Viewing(Viewing {
        profile_id: "profile-1".into(),
        playback_session_id: "play-1".into(),
        title_id: "title-0001".into(),
        kind: Some(kind),
    })))
}

fn gameplay_event(kind: gameplay::Kind) -> Envelope {
    envelope(Some(Body::Gameplay(Gameplay {
        player_id: "player-1".into(),
        game_session_id: "game-1".into(),
        game_id: "game-001".into(),
        kind: Some(kind),
    })))
}

/// One event of every body kind (and a few edge cases: empty kinds, huge and negative int64).
fn every_kind() -> Vec<Envelope> {
    use gameplay::Kind as G;
    use viewing::Kind as V;
    let mut events: Vec<Envelope> = [
        V::PlayStart(PlayStart { startup_ms: 850 }),
        V::Heartbeat(Heartbeat {
            position_ms: 10_000,
            bitrate_kbps: 4_500,
            watched_ms: 10_000,
        }),
        V::Heartbeat(Heartbeat::default()),
        V::Pause(Pause { position_ms: 12_000 }),
        V::Resume(Resume { position_ms: 12_000 }),
        V::Seek(Seek {
            from_ms: 12_000,
            to_ms: i64::MAX,
        }),
        V::RebufferStart(RebufferStart { position_ms: 60_000 }),
        V::RebufferEnd(RebufferEnd {
            position_ms: 60_000,
            duration_ms: 700,
        }),
        V::BitrateChange(BitrateChange {
            from_kbps: 4_500,
            to_kbps: -2_000,
        }),
        V::Error(PlaybackError {
            code: "E_DRM".into(),
            fatal: true,
        }),
        V::Error(PlaybackError {
            code: "E_NET".into(),
            fatal: false,
        }),
        V::Stop(Stop { position_ms: i64::MIN }),
    ]
    .into_iter()
    .map(viewing_event)
    .collect();
    events.extend(
        [
            G::SessionStart(SessionStart { map_id: "dust".into() }),
            G::SessionStart(SessionStart::default()),
            G::SessionEnd(SessionEnd { duration_ms: 600_000 }),
            G::Shot(Shot {
                weapon: "bow \"long\" ✓".into(),
            }),
            G::Hit(Hit {
                damage: 12,
                target_kind: TargetKind::Goblin as i32,
            }),
            G::Kill(Kill {
                target_kind: TargetKind::Dragon as i32,
            }),
            G::Death(Death { cause: "lava".into() }),
            G::LevelUp(LevelUp { level: 2 }),
            G::Purchase(Purchase {
                item_id: "sword".into(),
                amount_cents: 499,
                currency: "EUR".into(),
            }),
        ]
        .into_iter()
        .map(gameplay_event),
    );
    // A viewing and a gameplay body without a kind, and an envelope without a body.
    let mut no_kind = viewing_event(viewing::Kind::Pause(Pause::default()));
    if let Some(Body::Viewing(v)) = &mut no_kind.body {
        v.kind = None;
    }
    events.push(no_kind);
    let mut no_kind = gameplay_event(gameplay::Kind::Shot(Shot::default()));
    if let Some(Body::Gameplay(g)) = &mut no_kind.body {
        g.kind = None;
    }
    events.push(no_kind);
    events.push(envelope(None));
    events
}

fn to_value(event: &Envelope) -> Value {
    serde_json::from_str(&encode_event(event)).unwrap()
}

/// Every object key in `v`, recursively.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn err(json: &str) -> JsonError {
    match decode_event(json.as_bytes()) {
        Ok(e) => panic!("{json} decoded to {e:?}"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip and shape

#[test]
fn round_trip_every_kind() {
    let events = every_kind();
    assert_eq!(events.len(), 24);
    for event in events {
        let text = encode_event(&event);
        assert_eq!(decode_event(text.as_bytes()), Ok(event.clone()), "{text}");
        // The JSON is deterministic: encoding the decoded event gives the same text.
        assert_eq!(encode_event(&decode_event(text.as_bytes()).unwrap()), text);
    }
}

#[test]
fn json_uses_camel_case_names_int64_strings_and_enum_names() {
    let event = viewing_event(viewing::Kind::RebufferEnd(RebufferEnd {
        position_ms: 60_000,
        duration_ms: 700,
    }));
    let text = encode_event(&event);
    assert!(text.contains(r#""eventTimeMs":"1767225600000""#), "{text}");
    let v = to_value(&event);
    assert_eq!(
        v,
        json!({
            "eventId": "01890a5d-ac96-774b-bcce-b302099a8057",
            "eventTimeMs": "1767225600000",
            "receiveTimeMs": "1767225601234",
            "emitter": {
                "appId": "tv-app",
                "appVersion": "5.1.0",
                "deviceType": "DEVICE_TYPE_TV",
                "platform": "PLATFORM_ANDROID_TV",
                "country": "US",
            },
            // uint32 is a JSON number in the proto3 mapping.
            "schemaVersion": 1,
            "viewing": {
                "profileId": "profile-1",
                "playbackSessionId": "play-1",
                "titleId": "title-0001",
                "rebufferEnd": { "positionMs": "60000", "durationMs": "700" },
            },
        })
    );
}

#[test]
fn gameplay_json_shape() {
    let v = to_value(&gameplay_event(gameplay::Kind::Hit(Hit {
        damage: 12,
        target_kind: TargetKind::Goblin as i32,
    })));
    assert_eq!(
        v["gameplay"],
        json!({
            "playerId": "player-1",
            "gameSessionId": "game-1",
            "gameId": "game-001",
            "hit": { "damage": "12", "targetKind": "TARGET_KIND_GOBLIN" },
        })
    );
    let v = to_value(&gameplay_event(gameplay::Kind::LevelUp(LevelUp { level: 7 })));
    // int32 is a JSON number.
    assert_eq!(v["gameplay"]["levelUp"], json!({ "level": 7 }));
}

#[test]
fn no_snake_case_key_in_any_kind() {
    for event in every_kind() {
        let mut all = Vec::new();
        keys(&to_value(&event), &mut all);
        assert!(all.iter().all(|k| !k.contains('_')), "{all:?}");
    }
}

#[test]
fn int64_are_strings_for_every_kind() {
    let v = to_value(&viewing_event(viewing::Kind::Heartbeat(Heartbeat {
        position_ms: 1,
        bitrate_kbps: 2,
        watched_ms: 3,
    })));
    assert_eq!(
        v["viewing"]["heartbeat"],
        json!({ "positionMs": "1", "bitrateKbps": "2", "watchedMs": "3" })
    );
    let v = to_value(&viewing_event(viewing::Kind::Stop(Stop { position_ms: i64::MIN })));
    assert_eq!(v["viewing"]["stop"]["positionMs"], json!("-9223372036854775808"));
}

#[test]
fn decoding_accepts_int64_as_numbers_and_both_name_styles() {
    let expected = viewing_event(viewing::Kind::RebufferEnd(RebufferEnd {
        position_ms: 60_000,
        duration_ms: 700,
    }));
    let doc = json!({
        "eventId": "01890a5d-ac96-774b-bcce-b302099a8057",
        "eventTimeMs": 1_767_225_600_000i64,
        "receiveTimeMs": 1_767_225_601_234i64,
        "emitter": {
            "appId": "tv-app",
            "appVersion": "5.1.0",
            "deviceType": "DEVICE_TYPE_TV",
            "platform": "PLATFORM_ANDROID_TV",
            "country": "US",
        },
        "schemaVersion": 1,
        "viewing": {
            "profileId": "profile-1",
            "playbackSessionId": "play-1",
            "titleId": "title-0001",
            "rebufferEnd": { "positionMs": 60000, "durationMs": 700 },
        },
    });
    assert_eq!(decode_event(doc.to_string().as_bytes()), Ok(expected.clone()));
    // The proto field names are accepted too (the proto3 JSON mapping says parsers must).
    let snake = json!({
        "event_id": "01890a5d-ac96-774b-bcce-b302099a8057",
        "event_time_ms": "1767225600000",
        "receive_time_ms": 1_767_225_601_234i64,
        "emitter": {
            "app_id": "tv-app",
            "app_version": "5.1.0",
            "device_type": "DEVICE_TYPE_TV",
            "platform": "PLATFORM_ANDROID_TV",
            "country": "US",
        },
        "schema_version": 1,
        "viewing": {
            "profile_id": "profile-1",
            "playback_session_id": "play-1",
            "title_id": "title-0001",
            "rebuffer_end": { "position_ms": 60000, "duration_ms": "700" },
        },
    });
    assert_eq!(decode_event(snake.to_string().as_bytes()), Ok(expected));
}

#[test]
fn missing_fields_decode_to_defaults() {
    assert_eq!(decode_event(b"{}"), Ok(Envelope::default()));
}

// ---------------------------------------------------------------------------------------------
// Errors name the field

#[test]
fn unknown_field_is_an_error_naming_it() {
    let e = err(r#"{"eventId":"x","bogus":1}"#);
    assert_eq!(e.field, "bogus");
    assert!(e.reason.starts_with("unknown field `bogus`"), "{e:?}");
    // Nested: the path goes through the parents.
    let e = err(r#"{"emitter":{"appId":"a","colour":"red"}}"#);
    assert_eq!(e.field, "emitter.colour");
    assert!(e.reason.starts_with("unknown field `colour`"), "{e:?}");
    let e = err(r#"{"viewing":{"titleId":"t","heartbeat":{"positionMs":"1","extra":true}}}"#);
    assert_eq!(e.field, "viewing.heartbeat.extra");
    assert!(e.reason.starts_with("unknown field `extra`"), "{e:?}");
}

#[test]
fn wrong_type_names_the_field_path() {
    let e = err(r#"{"emitter":{"appId":5}}"#);
    assert_eq!(
        e,
        JsonError {
            field: "emitter.appId".into(),
            reason: "invalid type: integer `5`, expected a string".into()
        }
    );
    // The reason does not carry serde_json's " at line L column C".
    assert!(!e.to_string().contains(" at line "), "{e}");
    assert_eq!(
        e.to_string(),
        "emitter.appId: invalid type: integer `5`, expected a string"
    );

    let e = err(r#"{"eventTimeMs":"abc"}"#);
    assert_eq!(e.field, "eventTimeMs");
    assert_eq!(e.reason, "invalid digit found in string");

    let e = err(r#"{"gameplay":{"hit":{"damage":"1","targetKind":"TARGET_KIND_UNICORN"}}}"#);
    assert_eq!(e.field, "gameplay.hit.targetKind");
    assert!(e.reason.starts_with("unknown variant `TARGET_KIND_UNICORN`"), "{e:?}");

    let e = err(r#"{"emitter":{"deviceType":"NOPE"}}"#);
    assert_eq!(e.field, "emitter.deviceType");
    assert!(e.reason.starts_with("unknown variant `NOPE`"), "{e:?}");

    let e = err(r#"{"viewing":{"heartbeat":{"positionMs":true}}}"#);
    assert_eq!(e.field, "viewing.heartbeat.positionMs");
}

#[test]
fn not_an_object_and_broken_json() {
    let e = err("5");
    assert_eq!(e.field, ".");
    assert!(e.reason.starts_with("invalid type: integer `5`"), "{e:?}");
    // Syntax errors have no path.
    let e = err(r#"{"eventId":"x""#);
    assert_eq!(e.field, "?");
    assert_eq!(e.reason, "EOF while parsing an object");
}

#[test]
fn two_bodies_are_an_error() {
    let e = err(r#"{"viewing":{"titleId":"t"},"gameplay":{"gameId":"g"}}"#);
    assert!(e.reason.contains("duplicate field `gameplay`"), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// Batches

fn good(i: usize) -> Envelope {
    let mut e = viewing_event(viewing::Kind::PlayStart(PlayStart { startup_ms: i as i64 }));
    e.event_time_ms += i as i64;
    e
}

fn batch_items(bad: &str) -> String {
    format!("{},{bad},{}", encode_event(&good(0)), encode_event(&good(2)))
}

#[track_caller]
fn assert_one_bad_in_the_middle(results: Vec<Result<Envelope, JsonError>>, field: &str) {
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], Ok(good(0)));
    assert_eq!(results[2], Ok(good(2)));
    let e = results[1].clone().unwrap_err();
    assert!(e.field.starts_with("[1]"), "{e:?}");
    assert_eq!(e.field, field);
}

#[test]
fn batch_array_with_one_bad_event() {
    let doc = format!("[{}]", batch_items(r#"{"emitter":{"appId":5}}"#));
    let results = decode_batch(doc.as_bytes()).unwrap();
    assert_one_bad_in_the_middle(results, "[1].emitter.appId");
    assert_eq!(
        decode_batch(doc.as_bytes()).unwrap()[1].clone().unwrap_err().reason,
        "invalid type: integer `5`, expected a string"
    );
}

#[test]
fn batch_object_with_one_bad_event() {
    let doc = format!(r#"{{"events":[{}]}}"#, batch_items(r#"{"bogus":1}"#));
    let results = decode_batch(doc.as_bytes()).unwrap();
    assert_one_bad_in_the_middle(results, "[1].bogus");
}

#[test]
fn batch_element_that_is_not_an_object() {
    let doc = format!("[{}]", batch_items("5"));
    let results = decode_batch(doc.as_bytes()).unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], Ok(good(0)));
    assert_eq!(results[2], Ok(good(2)));
    let e = results[1].clone().unwrap_err();
    assert!(e.field.starts_with("[1]"), "{e:?}");
    assert!(e.reason.starts_with("invalid type: integer `5`"), "{e:?}");
}

#[test]
fn batch_of_valid_events() {
    let events: Vec<Envelope> = every_kind();
    let array = format!("[{}]", events.iter().map(encode_event).collect::<Vec<_>>().join(","));
    let got = decode_batch(array.as_bytes()).unwrap();
    assert_eq!(got, events.iter().cloned().map(Ok).collect::<Vec<_>>());
    let object = format!(r#"{{"events":{array}}}"#);
    let got = decode_batch(object.as_bytes()).unwrap();
    assert_eq!(got, events.into_iter().map(Ok).collect::<Vec<_>>());
}

#[test]
fn empty_batches() {
    assert_eq!(decode_batch(b"[]"), Ok(vec![]));
    assert_eq!(decode_batch(br#"{"events":[]}"#), Ok(vec![]));
    assert_eq!(decode_batch(b" [ ] "), Ok(vec![]));
}

#[test]
fn a_document_that_is_not_a_batch_is_an_outer_error() {
    for doc in ["5", r#""events""#, r#"{"foo":[]}"#, r#"{"events":5}"#, "[1", "", "null"] {
        let e = decode_batch(doc.as_bytes()).unwrap_err();
        assert_eq!(e.field, ".", "{doc}");
        assert!(
            e.reason
                .starts_with(r#"not a batch (a JSON array of events or {"events": [...]}): "#),
            "{doc}: {e:?}"
        );
    }
}
