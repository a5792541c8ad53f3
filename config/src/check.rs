//! Values each setting must have, checked after every layer (flags included) is applied:
//! a value that would hang, livelock or quietly mean something else is refused here,
//! naming the key and the reason. The collector's own section is checked when the
//! collector starts (it needs keys; other commands do not).
use crate::error::ConfigError;
use crate::model::InletConfig;
use std::time::Duration;

/// Kinesis's largest record (1 MiB): a buffer must hold one.
const MAX_RECORD_BYTES: usize = 1 << 20;
/// Kinesis's most records per `PutRecords` call.
const MAX_PUT_RECORDS: usize = 500;
/// Kinesis's most bytes per `PutRecords` call.
const MAX_PUT_BYTES: usize = 5 << 20;
/// Kinesis's most records per `GetRecords` call.
const MAX_READ_BATCH: usize = 10_000;

type Check = Result<(), ConfigError>;

fn at_least<T: PartialOrd + std::fmt::Display>(key: &str, value: T, min: T) -> Check {
    if value < min {
        return Err(ConfigError::key(
            key,
            format!("{value} is below the least allowed, {min}"),
        ));
    }
    Ok(())
}

fn at_most<T: PartialOrd + std::fmt::Display>(key: &str, value: T, max: T) -> Check {
    if value > max {
        return Err(ConfigError::key(
            key,
            format!("{value} is above the most allowed, {max}"),
        ));
    }
    Ok(())
}

fn positive(key: &str, d: Duration) -> Check {
    if d.is_zero() {
        return Err(ConfigError::key(key, "must be longer than 0"));
    }
    Ok(())
}

impl InletConfig {
    /// Checks every value (except the collector's section).
    pub fn check(&self) -> Check {
        at_least("stream.shards", self.stream.shards, 1)?;
        let p = &self.producer;
        at_least("producer.buffer_bytes", p.buffer_bytes, MAX_RECORD_BYTES)?;
        at_least("producer.max_in_flight", p.max_in_flight, 1)?;
        positive("producer.record_ttl", p.record_ttl)?;
        at_least("producer.max_attempts", p.max_attempts, 1)?;
        positive("producer.initial_backoff", p.initial_backoff)?;
        if p.max_backoff < p.initial_backoff {
            return Err(ConfigError::key(
                "producer.max_backoff",
                "is shorter than producer.initial_backoff",
            ));
        }
        if !(p.rate_headroom > 0.0 && p.rate_headroom <= 1.0) {
            return Err(ConfigError::key(
                "producer.rate_headroom",
                format!("{} is not a fraction above 0 and at most 1", p.rate_headroom),
            ));
        }
        positive("producer.shard_map_refresh", p.shard_map_refresh)?;
        at_least("producer.max_aggregate_bytes", p.max_aggregate_bytes, 1)?;
        at_most("producer.max_aggregate_bytes", p.max_aggregate_bytes, MAX_RECORD_BYTES)?;
        at_least("producer.max_aggregate_records", p.max_aggregate_records, 1)?;
        at_least("producer.max_put_records", p.max_put_records, 1)?;
        at_most("producer.max_put_records", p.max_put_records, MAX_PUT_RECORDS)?;
        at_least("producer.max_put_bytes", p.max_put_bytes, MAX_RECORD_BYTES)?;
        at_most("producer.max_put_bytes", p.max_put_bytes, MAX_PUT_BYTES)?;
        at_least("producer.spool_max_bytes", p.spool_max_bytes, MAX_RECORD_BYTES as u64)?;
        positive("producer.spool_after", p.spool_after)?;

        let c = &self.consumer;
        // Below a second, renewals (a third of it) race the lease table's round trips:
        // workers take and lose leases in a loop.
        if c.failover < Duration::from_secs(1) {
            return Err(ConfigError::key(
                "consumer.failover",
                "must be at least 1s (workers would take and lose leases in a loop)",
            ));
        }
        if let Some(every) = c.renew_interval {
            positive("consumer.renew_interval", every)?;
            if every >= c.failover {
                return Err(ConfigError::key(
                    "consumer.renew_interval",
                    "must be shorter than consumer.failover, or leases lapse between renewals",
                ));
            }
        }
        positive("consumer.shard_sync_interval", c.shard_sync_interval)?;
        if let Some(n) = c.max_leases {
            at_least("consumer.max_leases", n, 1)?;
        }
        at_least("consumer.commit_every_records", c.commit_every_records, 1)?;
        positive("consumer.commit_interval", c.commit_interval)?;
        at_least("consumer.read_batch", c.read_batch, 1)?;
        at_most("consumer.read_batch", c.read_batch, MAX_READ_BATCH)?;
        positive("consumer.idle_wait", c.idle_wait)?;

        let d = &self.dashboard;
        if d.access_token.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::key("dashboard.access_token", "is empty"));
        }
        if let Some(basic) = &d.basic_auth
            && !basic
                .split_once(':')
                .is_some_and(|(u, p)| !u.is_empty() && !p.is_empty())
        {
            return Err(ConfigError::key("dashboard.basic_auth", "must be user:password"));
        }
        if d.access_token.is_some() && d.basic_auth.is_some() {
            return Err(ConfigError::key(
                "dashboard.basic_auth",
                "set either it or dashboard.access_token",
            ));
        }
        if let Some(level) = &self.log.level {
            inlet_ops::logging::check_filter(level).map_err(|reason| ConfigError::key("log.level", reason))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(change: impl FnOnce(&mut InletConfig), key: &str) {
        let mut c = InletConfig::default();
        change(&mut c);
        match c.check() {
            Err(ConfigError::Key { key: k, reason, .. }) => assert_eq!(k, key, "{reason}"),
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn the_defaults_pass() {
        assert_eq!(InletConfig::default().check(), Ok(()));
    }

    #[test]
    fn values_that_hang_or_livelock_are_refused() {
        refused(|c| c.stream.shards = 0, "stream.shards");
        refused(|c| c.producer.buffer_bytes = 0, "producer.buffer_bytes");
        refused(|c| c.producer.buffer_bytes = 100, "producer.buffer_bytes");
        refused(|c| c.producer.max_in_flight = 0, "producer.max_in_flight");
        refused(|c| c.producer.record_ttl = Duration::ZERO, "producer.record_ttl");
        refused(|c| c.producer.rate_headroom = f64::NAN, "producer.rate_headroom");
        refused(|c| c.producer.rate_headroom = 2.0, "producer.rate_headroom");
        refused(|c| c.producer.max_put_records = 501, "producer.max_put_records");
        refused(
            |c| c.producer.max_backoff = Duration::from_millis(1),
            "producer.max_backoff",
        );
        refused(|c| c.consumer.failover = Duration::ZERO, "consumer.failover");
        refused(
            |c| c.consumer.renew_interval = Some(Duration::from_secs(10)),
            "consumer.renew_interval",
        );
        refused(|c| c.consumer.max_leases = Some(0), "consumer.max_leases");
        refused(|c| c.consumer.read_batch = 10_001, "consumer.read_batch");
        refused(|c| c.consumer.idle_wait = Duration::ZERO, "consumer.idle_wait");
        refused(
            |c| c.dashboard.basic_auth = Some("admin".into()),
            "dashboard.basic_auth",
        );
        refused(|c| c.log.level = Some("inlet=loud".into()), "log.level");
    }
}
