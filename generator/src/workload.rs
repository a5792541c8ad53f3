//! The workload: an iterator of encoded events, each with its ground truth.
use crate::rng::{Rng, Zipf};
use crate::sessions::{GameSession, ViewingSession};
use bytes::Bytes;
use inlet_schemas::events::{DeviceType, Emitter, Envelope, Platform, envelope::Body, gameplay, viewing};
use prost::Message;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// The seed: the same seed and settings give the same events.
    pub seed: u64,
    /// How many events.
    pub events: u64,
    /// Titles in the catalogue (Zipf popularity).
    pub titles: u32,
    /// Games in the catalogue (Zipf popularity).
    pub games: u32,
    /// Zipf exponent of popularity.
    pub zipf_exponent: f64,
    /// Playback sessions running at once.
    pub viewing_sessions: u32,
    /// Game sessions running at once.
    pub game_sessions: u32,
    /// Distinct viewer profiles.
    pub profiles: u32,
    /// Distinct players.
    pub players: u32,
    /// Share of events that are gameplay (the rest are viewing).
    pub game_share: f64,
    /// Share of events sent 6 to 20 minutes after they happened (most end up late).
    pub late_share: f64,
    /// Share of events that are invalid (each with one known problem) or malformed.
    pub invalid_share: f64,
    /// Event time of the first event, ms since the epoch.
    pub start_ms: i64,
    /// Mean simulated time between two events, microseconds.
    pub mean_gap_us: u64,
    /// Share of valid events sent a second time, the same bytes with the same id, as a
    /// retrying emitter or producer would (each copy counts towards `events`; copies still
    /// waiting for their time when `events` is reached are not sent).
    pub duplicate_share: f64,
    /// Each copy follows its original after a random delay of simulated time up to this, ms
    /// (default 10 minutes: the consumer's default dedupe horizon).
    pub duplicate_max_delay_ms: i64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            events: 100_000,
            titles: 500,
            games: 40,
            zipf_exponent: 1.1,
            viewing_sessions: 2_000,
            game_sessions: 600,
            profiles: 200_000,
            players: 50_000,
            game_share: 0.4,
            late_share: 0.002,
            invalid_share: 0.002,
            // 2026-01-01T00:00:00Z
            start_ms: 1_767_225_600_000,
            mean_gap_us: 1_000,
            duplicate_share: 0.0,
            duplicate_max_delay_ms: 10 * 60_000,
        }
    }
}

/// What an event is, for whoever checks the pipeline's results.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// A valid event (it may still turn out late for its shard).
    Valid(Box<Envelope>),
    /// An event with exactly one problem, at `field`.
    Invalid {
        /// The field validation must name.
        field: &'static str,
    },
    /// Bytes that are not a protobuf event.
    Malformed,
    /// A copy of an earlier valid event (same partition key, bytes and id).
    Copy(Box<Envelope>),
}

/// One generated record.
#[derive(Debug, Clone)]
pub struct GenEvent {
    /// The partition key (the session id).
    pub partition_key: String,
    /// The encoded event.
    pub data: Bytes,
    /// What it is.
    pub truth: Truth,
}

/// The kinds of invalid input the workload produces; each has exactly one problem.
pub const INVALID_KINDS: [&str; 7] = [
    "viewing.title_id",
    "viewing.rebuffer_end.duration_ms",
    "event_time_ms",
    "schema_version",
    "emitter.app_id",
    "gameplay.hit.target_kind",
    "gameplay.player_id",
];

/// The generator. An iterator of [`GenEvent`]s.
#[derive(Debug)]
pub struct Generator {
    cfg: GeneratorConfig,
    rng: Rng,
    titles: Zipf,
    games: Zipf,
    viewing: Vec<ViewingSession>,
    gaming: Vec<GameSession>,
    emitted: u64,
    next_session: u64,
    clock_us: i64,
    copies: std::collections::BinaryHeap<Pending>,
    scheduled: u64,
}

/// A copy waiting for its time (the heap pops the earliest; ties in scheduling order).
#[derive(Debug)]
struct Pending {
    due_us: i64,
    order: u64,
    event: GenEvent,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due_us, self.order) == (other.due_us, other.order)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due_us, other.order).cmp(&(self.due_us, self.order))
    }
}

const APPS: [(&str, DeviceType, Platform); 6] = [
    ("tv-app", DeviceType::Tv, Platform::AndroidTv),
    ("ios-app", DeviceType::Phone, Platform::Ios),
    ("android-app", DeviceType::Phone, Platform::Android),
    ("web-player", DeviceType::Web, Platform::Web),
    ("console-game", DeviceType::Console, Platform::Playstation),
    ("pc-game", DeviceType::Desktop, Platform::Windows),
];
const COUNTRIES: [&str; 8] = ["US", "GB", "DE", "FR", "BR", "JP", "IN", "KR"];

impl Generator {
    /// A generator for `cfg`.
    pub fn new(cfg: GeneratorConfig) -> Self {
        let rng = Rng::new(cfg.seed);
        Self {
            titles: Zipf::new(cfg.titles, cfg.zipf_exponent),
            games: Zipf::new(cfg.games, cfg.zipf_exponent),
            rng,
            viewing: Vec::new(),
            gaming: Vec::new(),
            emitted: 0,
            next_session: 0,
            clock_us: cfg.start_ms * 1_000,
            copies: std::collections::BinaryHeap::new(),
            scheduled: 0,
            cfg,
        }
    }

    /// The simulated time now, ms since the epoch.
    pub fn clock_ms(&self) -> i64 {
        self.clock_us / 1_000
    }

    fn session_id(&mut self, prefix: &str) -> String {
        self.next_session += 1;
        format!("{prefix}-{:x}-{}", self.cfg.seed, self.next_session)
    }

    fn new_viewing(&mut self) -> ViewingSession {
        let id = self.session_id("play");
        let profile = format!("profile-{}", self.rng.below(u64::from(self.cfg.profiles)));
        let title = format!("title-{:04}", self.titles.sample(&mut self.rng));
        let length = 5 + self.rng.below(120) as u32;
        ViewingSession::new(id, profile, title, length, &mut self.rng)
    }

    fn new_game(&mut self) -> GameSession {
        let id = self.session_id("game");
        let player = format!("player-{}", self.rng.below(u64::from(self.cfg.players)));
        let game = format!("game-{:03}", self.games.sample(&mut self.rng));
        let length = 3 + self.rng.below(150) as u32;
        GameSession::new(id, player, game, length)
    }

    fn next_body(&mut self) -> Body {
        if self.rng.chance(self.cfg.game_share) {
            if self.gaming.len() < self.cfg.game_sessions as usize {
                let s = self.new_game();
                self.gaming.push(s);
            }
            let i = self.rng.below(self.gaming.len() as u64) as usize;
            loop {
                if let Some(body) = self.gaming[i].next(&mut self.rng) {
                    return Body::Gameplay(body);
                }
                self.gaming[i] = self.new_game();
            }
        } else {
            if self.viewing.len() < self.cfg.viewing_sessions as usize {
                let s = self.new_viewing();
                self.viewing.push(s);
            }
            let i = self.rng.below(self.viewing.len() as u64) as usize;
            loop {
                if let Some(body) = self.viewing[i].next(&mut self.rng) {
                    return Body::Viewing(body);
                }
                self.viewing[i] = self.new_viewing();
            }
        }
    }

    /// A UUIDv7 from the simulated time and the generator's randomness.
    fn uuid_v7(&mut self, ms: i64) -> String {
        let r = self.rng.next_u64();
        let r2 = self.rng.next_u64();
        let ms = ms as u64 & 0xFFFF_FFFF_FFFF;
        format!(
            "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
            ms >> 16,
            ms & 0xFFFF,
            r & 0xFFF,
            0x8000 | ((r >> 12) & 0x3FFF),
            r2 & 0xFFFF_FFFF_FFFF
        )
    }

    fn envelope(&mut self, body: Body) -> Envelope {
        let receive = self.clock_ms();
        let late = self.rng.chance(self.cfg.late_share);
        let event_time = if late {
            receive - self.rng.range(6 * 60_000, 20 * 60_000)
        } else {
            receive - self.rng.range(0, 2_000)
        };
        let (app, device, platform) = APPS[match &body {
            Body::Viewing(_) => self.rng.below(4) as usize,
            Body::Gameplay(_) => 4 + self.rng.below(2) as usize,
        }];
        let emitter = Emitter {
            app_id: app.into(),
            app_version: format!("5.{}.0", self.rng.below(4)),
            device_type: device as i32,
            platform: platform as i32,
            country: COUNTRIES[self.rng.below(COUNTRIES.len() as u64) as usize].into(),
        };
        Envelope {
            event_id: self.uuid_v7(event_time),
            event_time_ms: event_time,
            receive_time_ms: receive,
            emitter: Some(emitter),
            schema_version: inlet_schemas::CURRENT_SCHEMA_VERSION,
            body: Some(body),
        }
    }

    /// Breaks a valid event in one way, or returns `None` when that way does not apply to
    /// its body (the caller then keeps it valid).
    fn break_event(&mut self, e: &mut Envelope) -> Option<Truth> {
        let field = INVALID_KINDS[self.rng.below(INVALID_KINDS.len() as u64) as usize];
        if self.rng.chance(1.0 / 8.0) {
            return Some(Truth::Malformed);
        }
        match (field, &mut e.body) {
            ("viewing.title_id", Some(Body::Viewing(v))) => v.title_id.clear(),
            ("viewing.rebuffer_end.duration_ms", Some(Body::Viewing(v))) => {
                v.kind = Some(viewing::Kind::RebufferEnd(inlet_schemas::events::RebufferEnd {
                    position_ms: 0,
                    duration_ms: -self.rng.range(1, 5_000),
                }))
            }
            ("event_time_ms", _) => e.event_time_ms = e.receive_time_ms + self.rng.range(6 * 60_000, 60 * 60_000),
            ("schema_version", _) => e.schema_version = 2 + self.rng.below(5) as u32,
            ("emitter.app_id", _) => {
                if let Some(em) = e.emitter.as_mut() {
                    em.app_id = "x".repeat(65 + self.rng.below(100) as usize);
                }
            }
            ("gameplay.hit.target_kind", Some(Body::Gameplay(g))) => {
                g.kind = Some(gameplay::Kind::Hit(inlet_schemas::events::Hit {
                    damage: 10,
                    target_kind: 50 + self.rng.below(50) as i32,
                }))
            }
            ("gameplay.player_id", Some(Body::Gameplay(g))) => g.player_id.clear(),
            _ => return None,
        }
        Some(Truth::Invalid { field })
    }
}

impl Iterator for Generator {
    type Item = GenEvent;

    fn next(&mut self) -> Option<GenEvent> {
        if self.emitted >= self.cfg.events {
            return None;
        }
        self.emitted += 1;
        if self.copies.peek().is_some_and(|p| p.due_us <= self.clock_us) {
            return self.copies.pop().map(|p| p.event);
        }
        self.clock_us += self.rng.below(2 * self.cfg.mean_gap_us + 1) as i64;
        let body = self.next_body();
        let partition_key = match &body {
            Body::Viewing(v) => v.playback_session_id.clone(),
            Body::Gameplay(g) => g.game_session_id.clone(),
        };
        let mut event = self.envelope(body);
        let broken = if self.rng.chance(self.cfg.invalid_share) {
            self.break_event(&mut event)
        } else {
            None
        };
        let (data, truth) = match broken {
            Some(Truth::Malformed) => {
                // 0xFF opens a field with wire type 7, which no protobuf decoder accepts.
                let mut raw = vec![0xFF, 0xFF, 0x01];
                raw.extend_from_slice(partition_key.as_bytes());
                (Bytes::from(raw), Truth::Malformed)
            }
            Some(truth) => (Bytes::from(event.encode_to_vec()), truth),
            None => {
                let data = Bytes::from(event.encode_to_vec());
                // Only drawn when copies are asked for, so other workloads stay as they were.
                if self.cfg.duplicate_share > 0.0 && self.rng.chance(self.cfg.duplicate_share) {
                    let delay_ms = self.rng.range(0, self.cfg.duplicate_max_delay_ms.max(1));
                    self.scheduled += 1;
                    self.copies.push(Pending {
                        due_us: self.clock_us + delay_ms * 1_000,
                        order: self.scheduled,
                        event: GenEvent {
                            partition_key: partition_key.clone(),
                            data: data.clone(),
                            truth: Truth::Copy(Box::new(event.clone())),
                        },
                    });
                }
                (data, Truth::Valid(Box::new(event)))
            }
        };
        Some(GenEvent {
            partition_key,
            data,
            truth,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.cfg.events - self.emitted) as usize;
        (left, Some(left))
    }
}
