//! A stable, short name for each event kind.
use crate::events::{Envelope, envelope::Body, gameplay, viewing};

/// The kind of an event, as `viewing.play_start`, `gameplay.hit`, ... or `unknown`.
pub fn kind_name(event: &Envelope) -> &'static str {
    match &event.body {
        Some(Body::Viewing(v)) => match &v.kind {
            Some(viewing::Kind::PlayStart(_)) => "viewing.play_start",
            Some(viewing::Kind::Heartbeat(_)) => "viewing.heartbeat",
            Some(viewing::Kind::Pause(_)) => "viewing.pause",
            Some(viewing::Kind::Resume(_)) => "viewing.resume",
            Some(viewing::Kind::Seek(_)) => "viewing.seek",
            Some(viewing::Kind::RebufferStart(_)) => "viewing.rebuffer_start",
            Some(viewing::Kind::RebufferEnd(_)) => "viewing.rebuffer_end",
            Some(viewing::Kind::BitrateChange(_)) => "viewing.bitrate_change",
            Some(viewing::Kind::Error(_)) => "viewing.error",
            Some(viewing::Kind::Stop(_)) => "viewing.stop",
            None => "viewing.unknown",
        },
        Some(Body::Gameplay(g)) => match &g.kind {
            Some(gameplay::Kind::SessionStart(_)) => "gameplay.session_start",
            Some(gameplay::Kind::SessionEnd(_)) => "gameplay.session_end",
            Some(gameplay::Kind::Shot(_)) => "gameplay.shot",
            Some(gameplay::Kind::Hit(_)) => "gameplay.hit",
            Some(gameplay::Kind::Kill(_)) => "gameplay.kill",
            Some(gameplay::Kind::Death(_)) => "gameplay.death",
            Some(gameplay::Kind::LevelUp(_)) => "gameplay.level_up",
            Some(gameplay::Kind::Purchase(_)) => "gameplay.purchase",
            None => "gameplay.unknown",
        },
        None => "unknown",
    }
}

/// The partition key of an event: its playback or game session id, so that a session's
/// events stay in order on one shard.
pub fn partition_key(event: &Envelope) -> &str {
    match &event.body {
        Some(Body::Viewing(v)) => &v.playback_session_id,
        Some(Body::Gameplay(g)) => &g.game_session_id,
        None => &event.event_id,
    }
}
