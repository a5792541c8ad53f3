//! The producer's dead-letter file: one JSON line per user record given up on, with the
//! stream's error code, the reason and the record itself (base64), so it can be sent again.
use crate::batcher::Ready;
use base64::Engine;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Debug)]
pub(crate) struct DeadLetterFile {
    out: BufWriter<File>,
}

impl DeadLetterFile {
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            out: BufWriter::new(file),
        })
    }

    /// Writes the user records inside `ready` and flushes: giving up is rare, losing the
    /// line would be worse than the syscall.
    pub(crate) fn write<A>(
        &mut self,
        ready: &Ready<A>,
        code: &str,
        message: &str,
        reason: &str,
    ) -> std::io::Result<()> {
        let r = &ready.record;
        let users = inlet_schemas::kpl::decode(&r.partition_key, r.explicit_hash_key, &r.data).unwrap_or_else(|_| {
            vec![inlet_schemas::kpl::UserRecord {
                partition_key: r.partition_key.clone(),
                explicit_hash_key: r.explicit_hash_key,
                data: r.data.clone(),
            }]
        });
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for u in users {
            let line = serde_json::json!({
                "at_ms": at_ms,
                "reason": reason,
                "code": code,
                "message": message,
                "attempts": ready.attempts,
                "partition_key": u.partition_key,
                "explicit_hash_key": u.explicit_hash_key.map(|k| k.to_string()),
                "data_base64": base64::engine::general_purpose::STANDARD.encode(&u.data),
            });
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }
}
