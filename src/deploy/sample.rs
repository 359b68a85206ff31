//! The bundled sample dataset: generated on first use with the backend's own generator (embedded
//! in this binary) into the state dir, so no large binary lives in git.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub const SAMPLE_ROWS: &str = "300000";

/// The sample's path under the state dir; generated there when `create` and missing.
pub fn sample_dataset(state_root: &Path, create: bool, progress: impl Fn(String)) -> Result<PathBuf> {
    let dir = state_root.join("sample");
    let path = dir.join(format!("munero-sample-{SAMPLE_ROWS}.sqlite"));
    if path.exists() || !create {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("make_sample_db.py");
    std::fs::write(&script, include_str!("../../backend/scripts/make_sample_db.py"))?;
    progress(format!("generating the sample dataset ({SAMPLE_ROWS} orders) -> {}", path.display()));
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(["--rows", SAMPLE_ROWS, "--seed", "42", "--end", "2025-12-31", "--out"])
        .arg(&path)
        .output()
        .context("running python3 to generate the sample dataset (or pass --data FILE.sqlite)")?;
    if !out.status.success() {
        bail!(
            "generating the sample dataset failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(path)
}
