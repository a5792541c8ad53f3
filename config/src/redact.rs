//! The effective configuration as TOML, secrets replaced: what `inlet config` prints.
use crate::model::InletConfig;

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Query parameters of a location URL whose values are secrets (Kafka's SASL password,
/// anything else named like one).
fn secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "key"].iter().any(|s| name.contains(s))
}

/// `url` with the password of its user info and secret query values replaced.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}{path}"),
                    None => head.to_owned(),
                },
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(q) = query {
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if secret_param(k) => format!("{k}={REDACTED}"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl InletConfig {
    /// This configuration with every secret replaced by [`REDACTED`].
    pub fn redacted(&self) -> Self {
        let mut c = self.clone();
        c.stream.location = c.stream.location.as_deref().map(redact_url);
        c.warehouse.location = c.warehouse.location.as_deref().map(redact_url);
        if c.dashboard.access_token.is_some() {
            c.dashboard.access_token = Some(REDACTED.into());
        }
        if let Some(basic) = &c.dashboard.basic_auth {
            let user = basic.split_once(':').map_or(basic.as_str(), |(u, _)| u);
            c.dashboard.basic_auth = Some(format!("{user}:{REDACTED}"));
        }
        c
    }

    /// The TOML text of this configuration, secrets redacted; it loads back as it prints.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string(&self.redacted()).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets_only() {
        assert_eq!(
            redact_url("postgres://inlet:hunter2@db:5432/inlet?sslmode=verify-full"),
            "postgres://inlet:<redacted>@db:5432/inlet?sslmode=verify-full"
        );
        assert_eq!(redact_url("postgres://inlet@db/inlet"), "postgres://inlet@db/inlet");
        assert_eq!(
            redact_url("kafka://b:9092/t?group=g&sasl.password=pw"),
            "kafka://b:9092/t?group=g&sasl.password=<redacted>"
        );
        assert_eq!(
            redact_url("sqlite:///var/lib/inlet/w.db"),
            "sqlite:///var/lib/inlet/w.db"
        );
    }

    #[test]
    fn the_printed_configuration_hides_secrets_and_loads_back() {
        let mut c = InletConfig::default();
        c.warehouse.location = Some("postgres://u:hunter2@h/db".into());
        c.dashboard.basic_auth = Some("admin:hunter2".into());
        let text = c.to_redacted_toml();
        assert!(!text.contains("hunter2"), "{text}");
        let back: InletConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.dashboard.basic_auth.as_deref(), Some("admin:<redacted>"));
        assert_eq!(back.producer.linger, c.producer.linger);
    }
}
