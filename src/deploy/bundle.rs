//! The deploy bundle (deploy/) embedded at build time (see build.rs), and the app's build
//! contexts (backend/, frontend/) taken from a checkout.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/deploy_bundle.rs"));
}

#[derive(Debug, Clone, Copy)]
pub struct BundleFile {
    pub path: &'static str,
    pub contents: &'static [u8],
    pub mode: u32,
}

pub fn files() -> Vec<BundleFile> {
    embedded::DEPLOY_FILES
        .iter()
        .map(|(path, contents, mode)| BundleFile { path, contents, mode: *mode })
        .collect()
}

pub fn get(path: &str) -> Option<BundleFile> {
    files().into_iter().find(|f| f.path == path)
}

pub fn env_example() -> &'static str {
    get(".env.example").map(|f| std::str::from_utf8(f.contents).unwrap_or("")).unwrap_or("")
}

/// Directories excluded from the build contexts sent to the host.
pub const CONTEXT_EXCLUDES: &[&str] = &[
    "node_modules",
    ".next",
    ".venv",
    "venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "*.sqlite",
    "*.sqlite-*",
    ".env",
    ".env.*",
];

/// `--app-dir`, else the checkout this binary was built from, else the nearest parent of the
/// current directory with backend/ and frontend/.
pub fn find_app_dir(flag: Option<&Path>) -> Result<PathBuf> {
    let ok = |d: &Path| d.join("backend").is_dir() && d.join("frontend").is_dir();
    if let Some(d) = flag {
        if !ok(d) {
            bail!("--app-dir {}: expected backend/ and frontend/ in it", d.display());
        }
        return Ok(d.to_path_buf());
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    if ok(built) {
        return Ok(built.to_path_buf());
    }
    let mut cur = std::env::current_dir()?;
    loop {
        if ok(&cur) {
            return Ok(cur);
        }
        if !cur.pop() {
            break;
        }
    }
    bail!(
        "cannot find the app's build contexts (backend/ and frontend/): pass --app-dir CHECKOUT, \
         or --ship-images from a machine that has the checkout"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_carries_the_stack_files_but_no_credentials() {
        let names: Vec<&str> = files().iter().map(|f| f.path).collect();
        for want in ["docker-compose.yml", "docker-compose.gpu.yml", "Caddyfile", ".env.example", "wipe_client_data.sh", "load_client_data.sh"] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| *n == ".env" || n.starts_with("receipts/")));
        assert_eq!(get("wipe_client_data.sh").unwrap().mode, 0o755);
        assert!(env_example().contains("BASIC_AUTH_HASH"));
    }
}
