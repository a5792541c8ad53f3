//! This process's resource use, read from `/proc` (Linux; elsewhere nothing is known), for
//! the standard `process_*` series and for `inlet bench`'s per-process report.

/// What the system says about this process; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// CPU seconds in user mode, all threads.
    pub user_seconds: Option<f64>,
    /// CPU seconds in the kernel, all threads.
    pub system_seconds: Option<f64>,
    /// Resident memory now, bytes.
    pub resident_bytes: Option<u64>,
    /// Peak resident memory (high-water mark), bytes.
    pub peak_resident_bytes: Option<u64>,
    /// Virtual memory, bytes.
    pub virtual_bytes: Option<u64>,
    /// Threads.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit of open file descriptors.
    pub max_fds: Option<u64>,
    /// When the process started, seconds since the epoch.
    pub start_time_seconds: Option<f64>,
}

impl Usage {
    /// Reads it now.
    pub fn read() -> Self {
        #[cfg(target_os = "linux")]
        {
            linux::read()
        }
        #[cfg(not(target_os = "linux"))]
        {
            Self::default()
        }
    }

    /// CPU seconds `(user, system)`, if known.
    pub fn cpu(&self) -> Option<(f64, f64)> {
        Some((self.user_seconds?, self.system_seconds?))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Usage;

    /// Clock ticks per second of `/proc/*/stat` (USER_HZ: 100 on every architecture Linux
    /// runs this on).
    const TICKS: f64 = 100.0;

    pub(super) fn read() -> Usage {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        // The command name (field 2) may hold spaces: count from its closing parenthesis.
        let fields: Vec<&str> = stat
            .rfind(')')
            .and_then(|i| stat.get(i + 1..))
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let status_kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb * 1024)
        };
        Usage {
            user_seconds: field(11).map(|t| t / TICKS),
            system_seconds: field(12).map(|t| t / TICKS),
            resident_bytes: status_kb("VmRSS:"),
            peak_resident_bytes: status_kb("VmHWM:"),
            virtual_bytes: field(20).map(|b| b as u64),
            threads: field(17).map(|n| n as u64),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64),
            max_fds: max_fds(),
            start_time_seconds: field(19).and_then(|ticks| Some(boot_time()? + ticks / TICKS)),
        }
    }

    fn max_fds() -> Option<u64> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    fn boot_time() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_on_linux() {
        let u = Usage::read();
        assert!(u.cpu().is_some());
        let rss = u.resident_bytes.unwrap_or(0);
        assert!(rss > 0 && u.peak_resident_bytes.unwrap_or(0) >= rss, "{u:?}");
        assert!(u.threads.unwrap_or(0) >= 1 && u.open_fds.unwrap_or(0) >= 3, "{u:?}");
        assert!(u.max_fds.unwrap_or(0) >= u.open_fds.unwrap_or(0), "{u:?}");
        // Started within the last day, after 2020.
        let start = u.start_time_seconds.unwrap_or(0.0);
        assert!(start > 1.6e9, "{u:?}");
    }
}
