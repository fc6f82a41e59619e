//! What the CLI's test files share.

use std::path::{Path, PathBuf};

/// The repository root (reports name files relative to it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
