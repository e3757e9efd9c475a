//! Output files: checked before any work, written whole or not at all.

use std::fs;
use std::path::{Path, PathBuf};

/// Checks, before a long solve, that `path` can be written: its directory exists and
/// it is not itself a directory.
pub fn check_writable(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!("cannot write {}: directory {} does not exist", path.display(), dir.display()));
    }
    if path.is_dir() {
        return Err(format!("cannot write {}: it is a directory", path.display()));
    }
    let meta = fs::metadata(&dir).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if meta.permissions().readonly() {
        return Err(format!("cannot write {}: directory {} is read-only", path.display(), dir.display()));
    }
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all ([`write_atomic`](solver_host::model::write_atomic)).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    solver_host::model::write_atomic(path, bytes).map_err(|e| e.to_string())
}
