//! Versioned schema migrations, applied in order, each once, under an advisory lock so that
//! workers starting together do not race. Versions are never edited once released: a change
//! is a new version.
use crate::views;
use inlet_sketches::QuantileSketch;
use tokio_postgres::Client;

/// Key of the advisory lock that serializes migrations (any constant unique to Inlet).
const LOCK_KEY: i64 = 0x1e1e_7a11_0000_0001;

/// One migration.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Its version, from 1, in order.
    pub version: i32,
    /// What it does.
    pub name: &'static str,
    /// The SQL (several statements).
    pub sql: String,
}

const TABLES: &str = "
CREATE TABLE inlet_leases (
    shard_id VARCHAR(256) PRIMARY KEY,
    owner VARCHAR(256),
    counter BIGINT NOT NULL DEFAULT 0,
    expires_at_ms BIGINT NOT NULL DEFAULT 0,
    checkpoint_seq VARCHAR(128),
    checkpoint_sub INTEGER,
    watermark_ms BIGINT,
    parents VARCHAR(1024) NOT NULL DEFAULT '',
    finished BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE inlet_viewing_partials (
    minute BIGINT NOT NULL,
    title_id VARCHAR(128) NOT NULL,
    shard_id VARCHAR(256) NOT NULL,
    events BIGINT NOT NULL,
    plays BIGINT NOT NULL,
    watch_ms BIGINT NOT NULL,
    rebuffers BIGINT NOT NULL,
    rebuffer_ms BIGINT NOT NULL,
    bitrate_sum_kbps BIGINT NOT NULL,
    bitrate_samples BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    startup_count BIGINT NOT NULL,
    startup_min BIGINT NOT NULL,
    startup_max BIGINT NOT NULL,
    viewers BYTEA NOT NULL,
    startup_ms BYTEA NOT NULL,
    PRIMARY KEY (minute, title_id, shard_id)
);
CREATE INDEX inlet_viewing_partials_shard ON inlet_viewing_partials (shard_id, minute);
CREATE INDEX inlet_viewing_partials_title ON inlet_viewing_partials (title_id, minute);
CREATE TABLE inlet_viewing_viewers (
    minute BIGINT NOT NULL,
    title_id VARCHAR(128) NOT NULL,
    shard_id VARCHAR(256) NOT NULL,
    reg SMALLINT NOT NULL,
    rank SMALLINT NOT NULL,
    PRIMARY KEY (minute, title_id, shard_id, reg)
);
CREATE TABLE inlet_viewing_startup (
    minute BIGINT NOT NULL,
    title_id VARCHAR(128) NOT NULL,
    shard_id VARCHAR(256) NOT NULL,
    bucket INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (minute, title_id, shard_id, bucket)
);
CREATE TABLE inlet_game_partials (
    minute BIGINT NOT NULL,
    game_id VARCHAR(128) NOT NULL,
    shard_id VARCHAR(256) NOT NULL,
    events BIGINT NOT NULL,
    sessions BIGINT NOT NULL,
    shots BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    kills BIGINT NOT NULL,
    deaths BIGINT NOT NULL,
    purchases BIGINT NOT NULL,
    damage BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    players BYTEA NOT NULL,
    PRIMARY KEY (minute, game_id, shard_id)
);
CREATE INDEX inlet_game_partials_shard ON inlet_game_partials (shard_id, minute);
CREATE INDEX inlet_game_partials_game ON inlet_game_partials (game_id, minute);
CREATE TABLE inlet_game_players (
    minute BIGINT NOT NULL,
    game_id VARCHAR(128) NOT NULL,
    shard_id VARCHAR(256) NOT NULL,
    reg SMALLINT NOT NULL,
    rank SMALLINT NOT NULL,
    PRIMARY KEY (minute, game_id, shard_id, reg)
);
CREATE TABLE inlet_dead_letters (
    shard_id VARCHAR(256) NOT NULL,
    sequence VARCHAR(128) NOT NULL,
    sub_sequence INTEGER NOT NULL,
    kind VARCHAR(32) NOT NULL,
    field VARCHAR(256),
    reason VARCHAR(4096) NOT NULL,
    app_id VARCHAR(256),
    partition_key VARCHAR(1024) NOT NULL,
    data BYTEA NOT NULL,
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (shard_id, sequence, sub_sequence)
);
CREATE INDEX inlet_dead_letters_kind ON inlet_dead_letters (kind, field);
CREATE TABLE inlet_ddsketch_buckets (
    bucket INTEGER PRIMARY KEY,
    value DOUBLE PRECISION NOT NULL
);
";

/// The value each DDSketch bucket reports, as the Rust sketch computes it, so the SQL
/// quantiles equal the Rust ones bit for bit. Bucket -1 is the zero bucket.
fn bucket_table() -> String {
    let mut sql = String::from("INSERT INTO inlet_ddsketch_buckets (bucket, value) VALUES (-1, 0)");
    for (i, v) in QuantileSketch::bucket_values() {
        // `{:e}` prints the shortest representation that round-trips the f64 exactly.
        sql.push_str(&format!(", ({i}, {v:e})"));
    }
    sql.push(';');
    sql
}

/// The event ids each shard remembers (16 big-endian bytes per id, one row per minute and
/// commit that added some, keyed so a rewritten commit replaces its row) and each shard's
/// duplicates count.
const DEDUPE: &str = "
CREATE TABLE inlet_seen_ids (
    shard_id VARCHAR(256) NOT NULL,
    minute BIGINT NOT NULL,
    part VARCHAR(160) NOT NULL,
    ids BYTEA NOT NULL,
    PRIMARY KEY (shard_id, minute, part)
);
CREATE TABLE inlet_shard_duplicates (
    shard_id VARCHAR(256) PRIMARY KEY,
    duplicates BIGINT NOT NULL
);
";

/// A shard whose task keeps failing, as its holders report it (cleared by its next commit).
const FAILURES: &str = "
CREATE TABLE inlet_shard_failures (
    shard_id VARCHAR(256) PRIMARY KEY,
    failures INTEGER NOT NULL,
    error VARCHAR(4096) NOT NULL,
    since_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL
);
";

/// Compaction's marks on each lease: the first minute its shard can still write (from its
/// last commit) and the minute its rows are folded before.
const FOLDING: &str = "
ALTER TABLE inlet_leases ADD COLUMN open_from_minute BIGINT;
ALTER TABLE inlet_leases ADD COLUMN folded_before_minute BIGINT;
";

/// Every migration, in order.
pub fn all() -> Vec<Migration> {
    vec![
        Migration {
            version: 1,
            name: "tables",
            sql: format!("{TABLES}{}", bucket_table()),
        },
        Migration {
            version: 2,
            name: "final rollup views",
            sql: views::create_all(),
        },
        Migration {
            version: 3,
            name: "dedupe state",
            sql: DEDUPE.to_owned(),
        },
        Migration {
            version: 4,
            name: "shard failures",
            sql: FAILURES.to_owned(),
        },
        Migration {
            version: 5,
            name: "compaction marks",
            sql: FOLDING.to_owned(),
        },
    ]
}

/// Applies the migrations the database lacks, in one transaction per call, holding an
/// advisory lock so concurrent callers apply each exactly once. Returns the versions applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS inlet_schema_migrations (
             version INTEGER PRIMARY KEY,
             name VARCHAR(128) NOT NULL,
             applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
         )",
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM inlet_schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for m in all().into_iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(&m.sql).await?;
        tx.execute(
            "INSERT INTO inlet_schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        applied.push(m.version);
    }
    tx.commit().await?;
    Ok(applied)
}
