//! The configuration a command runs with: defaults, then the file (`--config`), then
//! `INLET_…` variables, then the command's flags; checked once. Every command's arguments
//! say which settings their flags set ([`Overrides::apply`]) and take the resolved locations
//! back ([`Overrides::resolve`]), so a flag beats the environment, which beats the file.
use crate::backends::Locations;
use inlet_config::{ConfigError, InletConfig};
use inlet_ops::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// The configuration file (TOML; every key in docs/configuration.md). Settings can also
    /// be given as INLET_<SECTION>__<KEY> environment variables; flags beat both.
    #[arg(long, global = true, value_name = "FILE", env = "INLET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve /metrics, /healthz and /readyz on this address (port 0: any free port; the
    /// address is logged) [config: metrics.listen].
    #[arg(long, global = true, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log lines as `text` or `json` [config: log.format].
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Print the effective configuration (secrets redacted) and exit instead of running.
    #[arg(long, global = true)]
    pub print_config: bool,
}

/// What a command's flags say about the configuration.
pub trait Overrides {
    /// Writes the flags that were given into `config`.
    fn apply(&self, config: &mut InletConfig);
    /// Takes the effective locations back (the command reads them from its arguments).
    fn resolve(&mut self, _config: &InletConfig) {}
    /// Refuses flags the command takes but would ignore.
    fn refuse_ignored(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

impl Overrides for Locations {
    fn apply(&self, c: &mut InletConfig) {
        if let Some(dir) = &self.data_dir {
            c.data_dir = dir.clone();
        }
        if let Some(s) = &self.stream {
            c.stream.location = Some(s.clone());
        }
        if let Some(w) = &self.warehouse {
            c.warehouse.location = Some(w.clone());
        }
    }

    fn resolve(&mut self, c: &InletConfig) {
        self.data_dir = Some(c.data_dir.clone());
        self.stream = c.stream.location.clone();
        self.warehouse = c.warehouse.location.clone();
    }
}

/// Layers and checks the configuration for `command`.
pub fn effective(global: &GlobalArgs, command: &mut dyn Overrides) -> Result<InletConfig, ConfigError> {
    let mut config = inlet_config::load(global.config.as_deref(), std::env::vars())?;
    if let Some(addr) = global.metrics_listen {
        config.metrics.listen = Some(addr);
    }
    if let Some(format) = global.log_format {
        config.log.format = format;
    }
    command.refuse_ignored()?;
    command.apply(&mut config);
    config.check()?;
    command.resolve(&config);
    Ok(config)
}

/// `inlet config`: prints the effective configuration.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub locations: Locations,
}

/// Commands whose only settings are the locations.
macro_rules! locations_only {
    ($($args:ty),*) => {$(
        impl Overrides for $args {
            fn apply(&self, c: &mut InletConfig) {
                self.locations.apply(c);
            }
            fn resolve(&mut self, c: &InletConfig) {
                self.locations.resolve(c);
            }
        }
    )*};
}
locations_only!(
    ConfigArgs,
    crate::pipeline::VerifyArgs,
    crate::report::ReportArgs,
    crate::warehouse_admin::WarehouseArgs,
    crate::replay::ReplayArgs
);

/// Commands that make their own world (a data directory of their own, or a stream named by
/// `--stream` alone): the configuration only reaches them through the environment.
macro_rules! no_settings {
    ($($args:ty),*) => {$(
        impl Overrides for $args {
            fn apply(&self, _: &mut InletConfig) {}
        }
    )*};
}
no_settings!(
    crate::demo::DemoArgs,
    crate::bench::BenchArgs,
    crate::streams::StreamsArgs,
    crate::spool::SpoolArgs
);
