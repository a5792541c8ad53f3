//! Session state machines: what a player or a game client plausibly sends next.
use crate::rng::Rng;
use inlet_schemas::events::{
    BitrateChange, Death, Gameplay, Heartbeat, Hit, Kill, LevelUp, Pause, PlayStart, PlaybackError, Purchase,
    RebufferEnd, RebufferStart, Resume, Seek, SessionEnd, SessionStart, Shot, Stop, TargetKind, Viewing, gameplay,
    viewing,
};

/// Interval between heartbeats, and so the watch time each one carries.
pub const HEARTBEAT_MS: i64 = 10_000;
const BITRATES: [i64; 6] = [800, 1_500, 3_000, 4_500, 6_000, 12_000];
const PRICES: [i64; 5] = [99, 199, 499, 999, 1_999];
const ERROR_CODES: [&str; 4] = ["NETWORK_TIMEOUT", "DRM_LICENSE", "DECODER", "CDN_404"];
const WEAPONS: [&str; 4] = ["rifle", "bow", "sword", "staff"];
const MAPS: [&str; 3] = ["forest", "dungeon", "citadel"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlayState {
    Starting,
    Playing,
    Rebuffering,
    Paused,
}

/// One playback session.
#[derive(Debug, Clone)]
pub struct ViewingSession {
    /// Playback session id (the partition key).
    pub session_id: String,
    /// Profile id.
    pub profile_id: String,
    /// Title id.
    pub title_id: String,
    state: PlayState,
    position_ms: i64,
    bitrate_kbps: i64,
    remaining: u32,
}

impl ViewingSession {
    /// A new session that will send about `length` events.
    pub fn new(session_id: String, profile_id: String, title_id: String, length: u32, rng: &mut Rng) -> Self {
        let bitrate_kbps = BITRATES[rng.below(BITRATES.len() as u64) as usize];
        Self {
            session_id,
            profile_id,
            title_id,
            state: PlayState::Starting,
            position_ms: 0,
            bitrate_kbps,
            remaining: length,
        }
    }

    /// The next event body; `None` once the session has ended (after its STOP).
    pub fn next(&mut self, rng: &mut Rng) -> Option<Viewing> {
        use viewing::Kind as K;
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let kind = if self.remaining == 0 {
            K::Stop(Stop {
                position_ms: self.position_ms,
            })
        } else {
            match self.state {
                PlayState::Starting => {
                    self.state = PlayState::Playing;
                    // Mostly sub-second, with a long tail.
                    let startup_ms =
                        200 + rng.below(800) as i64 + if rng.chance(0.1) { rng.below(8_000) as i64 } else { 0 };
                    K::PlayStart(PlayStart { startup_ms })
                }
                PlayState::Rebuffering => {
                    self.state = PlayState::Playing;
                    K::RebufferEnd(RebufferEnd {
                        position_ms: self.position_ms,
                        duration_ms: rng.range(100, 6_000),
                    })
                }
                PlayState::Paused => {
                    self.state = PlayState::Playing;
                    K::Resume(Resume {
                        position_ms: self.position_ms,
                    })
                }
                PlayState::Playing => {
                    let roll = rng.below(100);
                    match roll {
                        0..80 => {
                            self.position_ms += HEARTBEAT_MS;
                            K::Heartbeat(Heartbeat {
                                position_ms: self.position_ms,
                                bitrate_kbps: self.bitrate_kbps,
                                watched_ms: HEARTBEAT_MS,
                            })
                        }
                        80..84 => {
                            self.state = PlayState::Rebuffering;
                            K::RebufferStart(RebufferStart {
                                position_ms: self.position_ms,
                            })
                        }
                        84..89 => {
                            let to = BITRATES[rng.below(BITRATES.len() as u64) as usize];
                            let from = std::mem::replace(&mut self.bitrate_kbps, to);
                            K::BitrateChange(BitrateChange {
                                from_kbps: from,
                                to_kbps: to,
                            })
                        }
                        89..92 => {
                            self.state = PlayState::Paused;
                            K::Pause(Pause {
                                position_ms: self.position_ms,
                            })
                        }
                        92..96 => {
                            let from = self.position_ms;
                            self.position_ms = rng.range(0, from + 600_000);
                            K::Seek(Seek {
                                from_ms: from,
                                to_ms: self.position_ms,
                            })
                        }
                        _ => K::Error(PlaybackError {
                            code: ERROR_CODES[rng.below(ERROR_CODES.len() as u64) as usize].into(),
                            fatal: false,
                        }),
                    }
                }
            }
        };
        Some(Viewing {
            profile_id: self.profile_id.clone(),
            playback_session_id: self.session_id.clone(),
            title_id: self.title_id.clone(),
            kind: Some(kind),
        })
    }
}

/// One game session.
#[derive(Debug, Clone)]
pub struct GameSession {
    /// Game session id (the partition key).
    pub session_id: String,
    /// Player id.
    pub player_id: String,
    /// Game id.
    pub game_id: String,
    started: bool,
    level: i32,
    remaining: u32,
    events: u32,
}

impl GameSession {
    /// A new session that will send about `length` events.
    pub fn new(session_id: String, player_id: String, game_id: String, length: u32) -> Self {
        Self {
            session_id,
            player_id,
            game_id,
            started: false,
            level: 1,
            remaining: length,
            events: 0,
        }
    }

    /// The next event body; `None` once the session has ended.
    pub fn next(&mut self, rng: &mut Rng) -> Option<Gameplay> {
        use gameplay::Kind as K;
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.events += 1;
        let kind = if !self.started {
            self.started = true;
            K::SessionStart(SessionStart {
                map_id: MAPS[rng.below(MAPS.len() as u64) as usize].into(),
            })
        } else if self.remaining == 0 {
            K::SessionEnd(SessionEnd {
                duration_ms: i64::from(self.events) * 1_500,
            })
        } else {
            let target = |rng: &mut Rng| rng.range(TargetKind::Player as i64, TargetKind::Boss as i64) as i32;
            match rng.below(100) {
                0..50 => K::Shot(Shot {
                    weapon: WEAPONS[rng.below(WEAPONS.len() as u64) as usize].into(),
                }),
                50..75 => K::Hit(Hit {
                    damage: rng.range(1, 120),
                    target_kind: target(rng),
                }),
                75..83 => K::Kill(Kill {
                    target_kind: target(rng),
                }),
                83..88 => K::Death(Death { cause: "fell".into() }),
                88..92 => {
                    self.level += 1;
                    K::LevelUp(LevelUp { level: self.level })
                }
                _ => K::Purchase(Purchase {
                    item_id: format!("item-{}", rng.below(40)),
                    amount_cents: PRICES[rng.below(PRICES.len() as u64) as usize],
                    currency: "USD".into(),
                }),
            }
        };
        Some(Gameplay {
            player_id: self.player_id.clone(),
            game_session_id: self.session_id.clone(),
            game_id: self.game_id.clone(),
            kind: Some(kind),
        })
    }
}
