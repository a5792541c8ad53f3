//! What the fuzz targets share.
use std::path::Path;
use std::sync::OnceLock;

/// A directory of this process's own for targets whose decoder reads files.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path()
}
