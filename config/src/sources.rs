//! The layers, lowest first: defaults, the TOML file, `INLET_` environment variables; the
//! command's flags are applied by the caller on the typed result. Errors name the key and
//! where its value came from.
//!
//! An environment variable names a key by its path with `__` between levels:
//! `INLET_PRODUCER__LINGER=50ms` is `[producer] linger`, `INLET_COLLECTOR__LIMITS__MAX_BODY_BYTES`
//! is `[collector.limits] max_body_bytes`; `INLET_DATA_DIR` is the top-level `data_dir`.
//! Other `INLET_` variables (without `__`) are not settings and are left alone. A value is
//! read as a TOML value when it is one (`10`, `true`, `1.5`, `["a"]`), else as a string
//! (`50ms`, `/var/lib/inlet`).
use crate::error::ConfigError;
use crate::model::InletConfig;
use std::collections::HashMap;
use std::path::Path;
use toml::{Table, Value};

/// The prefix of every setting's environment variable.
pub const ENV_PREFIX: &str = "INLET_";

/// Reads the layers: `file` (if any) under the `INLET_` variables of `env`.
pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<InletConfig, ConfigError> {
    let mut table = match file {
        Some(path) => read_file(path)?,
        None => Table::new(),
    };
    // Each key set from the environment, with its variable, to name in errors and to
    // retry as a string when a TOML-looking value meets a string setting.
    let mut from_env: HashMap<String, (String, String)> = HashMap::new();
    let mut vars: Vec<(String, String)> = env.into_iter().collect();
    vars.sort();
    for (var, raw) in vars {
        let Some(path) = env_key(&var) else { continue };
        let dotted = path.join(".");
        set(&mut table, &path, parse_env_value(&raw)).map_err(|reason| ConfigError::Key {
            key: dotted.clone(),
            origin: Some(var.clone()),
            reason,
        })?;
        from_env.insert(dotted, (var, raw));
    }
    // A value such as `INLET_CONSUMER__WORKER_ID=7` reads as a number; a string setting then
    // refuses it. Each such key is retried once as the string it was written as.
    let mut retried = Vec::new();
    loop {
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(Value::Table(table.clone()), &mut track);
        match <InletConfig as serde::Deserialize>::deserialize(de) {
            Ok(config) => return Ok(config),
            Err(e) => {
                let key = track.path().to_string();
                let reason = e.to_string();
                match from_env.get(&key) {
                    Some((_, raw)) if !retried.contains(&key) && reason.contains("expected a string") => {
                        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
                        set(&mut table, &path, Value::String(raw.clone())).map_err(|r| ConfigError::key(&key, r))?;
                        retried.push(key);
                    }
                    found => {
                        let key = unknown_key(&key, &reason).unwrap_or(key);
                        let origin = found
                            .or_else(|| {
                                from_env
                                    .iter()
                                    .find(|(k, _)| k.starts_with(&format!("{key}.")))
                                    .map(|(_, v)| v)
                            })
                            .or_else(|| from_env.get(&key))
                            .map(|(var, _)| var.clone());
                        return Err(ConfigError::Key { origin, key, reason });
                    }
                }
            }
        }
    }
}

/// The full key of an unknown field: the tracked path ends at its parent.
fn unknown_key(parent: &str, reason: &str) -> Option<String> {
    let name = reason.strip_prefix("unknown field `")?.split('`').next()?;
    Some(match parent {
        "" | "?" | "." => name.to_owned(),
        p if p.rsplit('.').next() == Some(name) => p.to_owned(),
        p => format!("{p}.{name}"),
    })
}

fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    text.parse::<Table>().map_err(|e| ConfigError::File {
        path: path.to_owned(),
        reason: e.to_string().trim_end().to_owned(),
    })
}

/// The key path an environment variable sets, if it is a setting's.
fn env_key(var: &str) -> Option<Vec<String>> {
    let rest = var.strip_prefix(ENV_PREFIX)?;
    if rest == "DATA_DIR" {
        return Some(vec!["data_dir".into()]);
    }
    if !rest.contains("__") {
        return None;
    }
    Some(rest.split("__").map(str::to_ascii_lowercase).collect())
}

fn parse_env_value(raw: &str) -> Value {
    match format!("v = {raw}").parse::<Table>() {
        // A date would not fit any setting: dates are written as strings.
        Ok(mut t) => match t.remove("v") {
            Some(Value::Datetime(_)) | None => Value::String(raw.to_owned()),
            Some(v) => v,
        },
        Err(_) => Value::String(raw.to_owned()),
    }
}

fn set(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("an empty key".into());
    };
    let mut at = table;
    for (i, p) in parents.iter().enumerate() {
        let entry = at.entry(p.clone()).or_insert_with(|| Value::Table(Table::new()));
        at = match entry {
            Value::Table(t) => t,
            _ => return Err(format!("{} is not a section", parents[..=i].join("."))),
        };
    }
    at.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(f.path(), text).unwrap_or_else(|e| panic!("{e}"));
        f
    }

    #[test]
    fn defaults_come_from_the_libraries() {
        let c = load(None, []).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.producer.buffer_bytes,
            inlet_producer::ProducerConfig::default().max_buffered_bytes
        );
        assert_eq!(c.consumer.failover, Duration::from_secs(10));
    }

    #[test]
    fn the_environment_beats_the_file() {
        let f = file("[producer]\nlinger = \"50ms\"\nmax_in_flight = 3\n");
        let c = load(
            Some(f.path()),
            env(&[
                ("INLET_PRODUCER__LINGER", "70ms"),
                ("INLET_CONSUMER__WORKER_ID", "7"),
                ("INLET_COLLECTOR__LIMITS__MAX_BODY_BYTES", "4096"),
                ("INLET_DATA_DIR", "/tmp/x"),
                ("INLET_PG_URL", "not a setting"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.producer.linger, Duration::from_millis(70));
        assert_eq!(c.producer.max_in_flight, 3);
        assert_eq!(c.consumer.worker_id.as_deref(), Some("7"));
        assert_eq!(c.collector.limits.max_body_bytes, 4096);
        assert_eq!(c.data_dir, Path::new("/tmp/x"));
    }

    #[test]
    fn errors_name_the_key_and_where_it_came_from() {
        let f = file("[producer]\nlingr = \"50ms\"\n");
        let e = load(Some(f.path()), []).unwrap_err().to_string();
        assert!(e.contains("producer") && e.contains("lingr"), "{e}");

        let e = load(None, env(&[("INLET_PRODUCER__MAX_IN_FLIGHT", "many")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("producer.max_in_flight (from INLET_PRODUCER__MAX_IN_FLIGHT):"),
            "{e}"
        );

        let e = load(None, env(&[("INLET_CONSUMER__FAILOVER", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("consumer.failover") && e.contains("INLET_CONSUMER__FAILOVER"),
            "{e}"
        );

        let e = load(None, env(&[("INLET_NOPE__X", "1")])).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("INLET_NOPE__X"), "{e}");

        let f = file("[producer\n");
        let e = load(Some(f.path()), []).unwrap_err();
        assert!(matches!(e, ConfigError::File { .. }), "{e}");
    }

    #[test]
    fn the_example_file_loads_and_shows_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inlet.example.toml");
        let example = load(Some(&path), []).unwrap_or_else(|e| panic!("{e}"));
        let d = InletConfig::default();
        let shown = |c: &InletConfig| {
            let mut c = c.clone();
            c.collector.keys.clear();
            toml::to_string(&c).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(shown(&example), shown(&d));
        assert_eq!(example.collector.keys.len(), 2);
        assert_eq!(example.check(), Ok(()));
    }

    #[test]
    fn the_reference_names_every_key() {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut c = InletConfig::default();
        // Unset settings are left out of the TOML: set them all so that every key shows.
        c.stream.location = Some("x".into());
        c.warehouse.location = Some("x".into());
        c.producer.dead_letter = Some("x".into());
        c.producer.spool = Some("x".into());
        c.consumer.worker_id = Some("x".into());
        c.consumer.renew_interval = Some(std::time::Duration::from_secs(1));
        c.consumer.max_leases = Some(1);
        c.consumer.archive = Some("x".into());
        c.dashboard.access_token = Some("x".into());
        c.dashboard.basic_auth = Some("x:y".into());
        c.metrics.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 1)));
        c.log.level = Some("info".into());
        c.collector.stamping.country_header = Some("x".into());
        c.collector.bad_rows.path = Some("x".into());
        let table: Table = toml::to_string(&c)
            .unwrap_or_else(|e| panic!("{e}"))
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        fn leaves(t: &Table, out: &mut Vec<String>) {
            for (k, v) in t {
                match v {
                    Value::Table(inner) => leaves(inner, out),
                    _ => out.push(k.clone()),
                }
            }
        }
        let mut keys = Vec::new();
        leaves(&table, &mut keys);
        let missing: Vec<_> = keys
            .iter()
            .filter(|k| {
                ![format!("`{k}"), format!(".{k}`"), format!(".{k}]]`")]
                    .iter()
                    .any(|n| doc.contains(n.as_str()))
            })
            .collect();
        assert!(missing.is_empty(), "docs/configuration.md does not name {missing:?}");
    }
}
