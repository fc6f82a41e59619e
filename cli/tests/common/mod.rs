//! What the CLI's test files share.

// Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (reports name files relative to it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs the built `obguard <subcommand> <args>` from the repository root (paths in reports
/// are as given).
pub fn obguard<S: AsRef<OsStr>>(subcommand: &str, args: &[S]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_obguard"))
        .current_dir(repo())
        .arg(subcommand)
        .args(args)
        .output()
    {
        Ok(output) => output,
        Err(err) => panic!("cannot run obguard {subcommand}: {err}"),
    }
}

/// A command's standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
