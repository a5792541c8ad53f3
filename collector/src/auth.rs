//! API keys: presented as `Authorization: Bearer <key>`, stored only as SHA-256 hashes.
//! Each key names its app, the event kinds it may post and its rate limit.
use crate::config_error::{ConfigError, config_error};
use crate::rate_limit::RateLimit;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// One API key: an emitter (app) allowed to post.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// A name for the key, in logs, metrics (label `key`) and bad rows. Unique.
    pub id: String,
    /// The app whose events the key may post: events naming another `emitter.app_id` are
    /// rejected, events naming none get this one.
    pub app_id: String,
    /// SHA-256 of the key, in hex (`inlet collector hash-key` prints it). The key itself is
    /// never stored.
    pub sha256: String,
    /// Event kinds the key may post: exact names (`viewing.heartbeat`), families
    /// (`gameplay.*`) or `*` (default: every kind).
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    /// This key's rate limit (default: the top-level `rate_limit`).
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// The SHA-256 of a key, in lower-case hex: what the configuration stores.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Why a request is not authenticated (answered 401; nothing is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("no API key: send it as `Authorization: Bearer <key>`")]
    Missing,
    /// An `Authorization` header that is not `Bearer <key>`.
    #[error("the Authorization header is not `Bearer <key>`")]
    Malformed,
    /// A key the collector does not know.
    #[error("unknown API key")]
    Unknown,
}

/// The event kinds a key may post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindFilter {
    /// Every kind.
    All,
    /// Kinds equal to one of the exact names or starting with one of the family prefixes
    /// (`viewing.` for `viewing.*`).
    Only {
        /// Exact kind names.
        exact: Vec<String>,
        /// Family prefixes, with their trailing dot.
        families: Vec<String>,
    },
}

impl KindFilter {
    /// From the configuration's patterns; none means every kind.
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        if patterns.is_empty() || patterns.iter().any(|p| p == "*") {
            return Ok(Self::All);
        }
        let (mut exact, mut families) = (Vec::new(), Vec::new());
        for p in patterns {
            let (family, rest) = p.split_once('.').unwrap_or((p, ""));
            if !matches!(family, "viewing" | "gameplay") {
                return Err(format!("{p:?}: kinds start with `viewing.` or `gameplay.`"));
            }
            if rest == "*" {
                families.push(format!("{family}."));
            } else if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                exact.push(p.clone());
            } else {
                return Err(format!(
                    "{p:?}: expected a kind like `viewing.heartbeat` or a family like `gameplay.*`"
                ));
            }
        }
        Ok(Self::Only { exact, families })
    }

    /// Whether `kind` (a [`inlet_schemas::kind::kind_name`]) is allowed.
    pub fn allows(&self, kind: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only { exact, families } => {
                exact.iter().any(|e| e == kind) || families.iter().any(|f| kind.starts_with(f.as_str()))
            }
        }
    }
}

/// One configured key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Its name (logs, metrics, bad rows).
    pub id: String,
    /// The app it posts for.
    pub app_id: String,
    /// The kinds it may post.
    pub kinds: KindFilter,
    /// Its rate limit.
    pub rate_limit: RateLimit,
}

/// The configured keys, found by the hash of the presented key.
#[derive(Debug, Clone)]
pub struct KeyTable {
    keys: Vec<ApiKey>,
    by_hash: HashMap<[u8; 32], usize>,
}

impl KeyTable {
    pub(crate) fn from_config(
        configs: &[KeyConfig],
        default_rate: RateLimit,
        max_batch_events: usize,
    ) -> Result<Self, ConfigError> {
        if configs.is_empty() {
            return Err(config_error("keys", "no API key is configured: add a [[keys]] entry"));
        }
        let mut keys = Vec::with_capacity(configs.len());
        let mut by_hash = HashMap::new();
        for (i, k) in configs.iter().enumerate() {
            let at = |field: &str| format!("keys[{i}].{field}");
            let id_ok = !k.id.is_empty()
                && k.id.len() <= 64
                && k.id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !id_ok {
                return Err(config_error(at("id"), "1 to 64 letters, digits, `-`, `_` or `.`"));
            }
            if keys.iter().any(|other: &ApiKey| other.id == k.id) {
                return Err(config_error(at("id"), format!("{:?} is used by another key", k.id)));
            }
            if k.app_id.is_empty() || k.app_id.chars().count() > inlet_schemas::validate::MAX_LABEL_LEN {
                return Err(config_error(at("app_id"), "1 to 64 characters"));
            }
            let mut hash = [0u8; 32];
            hex::decode_to_slice(k.sha256.trim(), &mut hash).map_err(|_| {
                config_error(
                    at("sha256"),
                    "not 64 hex digits (`inlet collector hash-key` prints them)",
                )
            })?;
            if by_hash.insert(hash, i).is_some() {
                return Err(config_error(at("sha256"), "the same key hash appears twice"));
            }
            let kinds =
                KindFilter::parse(k.kinds.as_deref().unwrap_or(&[])).map_err(|r| config_error(at("kinds"), r))?;
            let rate_limit = match k.rate_limit {
                Some(r) => {
                    r.check(&at("rate_limit"), max_batch_events)?;
                    r
                }
                None => default_rate,
            };
            keys.push(ApiKey {
                id: k.id.clone(),
                app_id: k.app_id.clone(),
                kinds,
                rate_limit,
            });
        }
        Ok(Self { keys, by_hash })
    }

    /// The keys, in configuration order (their index is their number).
    pub fn keys(&self) -> &[ApiKey] {
        &self.keys
    }

    /// The index of the key a request presents.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<usize, AuthError> {
        let value = headers.get(http::header::AUTHORIZATION).ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::Malformed)?;
        let (scheme, key) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        let key = key.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
            return Err(AuthError::Malformed);
        }
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.by_hash.get(&hash).copied().ok_or(AuthError::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn table() -> KeyTable {
        let k = |id: &str, key: &str, kinds: Option<Vec<&str>>| KeyConfig {
            id: id.into(),
            app_id: format!("{id}-app"),
            sha256: hash_key(key),
            kinds: kinds.map(|v| v.into_iter().map(String::from).collect()),
            rate_limit: None,
        };
        KeyTable::from_config(
            &[
                k("tv", "secret-1", None),
                k("game", "secret-2", Some(vec!["gameplay.*"])),
            ],
            RateLimit::default(),
            100,
        )
        .unwrap()
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn finds_keys_by_hash_and_refuses_the_rest() {
        let t = table();
        assert_eq!(t.authenticate(&headers("Bearer secret-1")), Ok(0));
        assert_eq!(t.authenticate(&headers("bearer  secret-2 ")), Ok(1));
        assert_eq!(t.authenticate(&HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(t.authenticate(&headers("Basic secret-1")), Err(AuthError::Malformed));
        assert_eq!(t.authenticate(&headers("Bearer")), Err(AuthError::Malformed));
        assert_eq!(t.authenticate(&headers("Bearer secret-3")), Err(AuthError::Unknown));
        assert_eq!(t.keys()[1].app_id, "game-app");
    }

    #[test]
    fn kind_filters() {
        let t = table();
        assert!(t.keys()[0].kinds.allows("viewing.heartbeat"));
        assert!(t.keys()[1].kinds.allows("gameplay.hit"));
        assert!(!t.keys()[1].kinds.allows("viewing.heartbeat"));
        let f = KindFilter::parse(&["viewing.play_start".into()]).unwrap();
        assert!(f.allows("viewing.play_start") && !f.allows("viewing.play_start_x"));
        assert!(KindFilter::parse(&["video.*".into()]).is_err());
        assert!(KindFilter::parse(&["viewing.Heartbeat".into()]).is_err());
        assert_eq!(KindFilter::parse(&["*".into()]).unwrap(), KindFilter::All);
    }

    #[test]
    fn refuses_bad_key_configs() {
        let good = KeyConfig {
            id: "a".into(),
            app_id: "app".into(),
            sha256: hash_key("k"),
            kinds: None,
            rate_limit: None,
        };
        let check = |keys: &[KeyConfig]| KeyTable::from_config(keys, RateLimit::default(), 10).map(|_| ());
        assert!(check(std::slice::from_ref(&good)).is_ok());
        let e = check(&[good.clone(), good.clone()]).unwrap_err();
        assert_eq!(e.setting, "keys[1].id");
        let e = check(&[KeyConfig {
            sha256: "abc".into(),
            ..good.clone()
        }])
        .unwrap_err();
        assert_eq!(e.setting, "keys[0].sha256");
        let e = check(&[KeyConfig {
            id: "has space".into(),
            ..good
        }])
        .unwrap_err();
        assert_eq!(e.setting, "keys[0].id");
    }
}
