//! The error of a configuration that cannot be used, naming the setting at fault: a leaf
//! that the settings, the key table and the rate limits all report with.

/// A configuration that cannot be used, with the setting at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The setting, as a TOML path (`limits.max_body_bytes`, `keys[2].sha256`).
    pub setting: String,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn config_error(setting: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        reason: reason.into(),
    }
}
