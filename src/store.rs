//! Local trial store: `<state>/trials/<name>/` with `trial.toml` and key files.
//! Directories 0700, files 0600, every write atomic (temp file in the same dir + rename).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::trial::Trial;

pub const RECORD_FILE: &str = "trial.toml";

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// `--state-dir` > `MUNERO_STATE_DIR` > `$XDG_DATA_HOME/munero-infra` > `~/.local/share/munero-infra`.
    pub fn resolve(flag: Option<&Path>) -> Result<Store> {
        if let Some(p) = flag {
            return Ok(Store::at(p));
        }
        if let Some(p) = std::env::var_os("MUNERO_STATE_DIR").filter(|v| !v.is_empty()) {
            return Ok(Store::at(Path::new(&p)));
        }
        if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Ok(Store::at(&Path::new(&p).join("munero-infra")));
        }
        let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).context(
            "cannot find a state directory: set --state-dir, MUNERO_STATE_DIR or HOME",
        )?;
        Ok(Store::at(&Path::new(&home).join(".local/share/munero-infra")))
    }

    pub fn at(root: &Path) -> Store {
        Store { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn trials_dir(&self) -> PathBuf {
        self.root.join("trials")
    }

    pub fn trial_dir(&self, name: &str) -> PathBuf {
        self.trials_dir().join(name)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.trial_dir(name).join(RECORD_FILE).exists()
    }

    /// Create the trial's directory (and parents) with mode 0700.
    pub fn ensure_dir(&self, name: &str) -> Result<PathBuf> {
        for d in [self.root.clone(), self.trials_dir(), self.trial_dir(name)] {
            if !d.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&d)
                    .with_context(|| format!("creating {}", d.display()))?;
            }
        }
        let d = self.trial_dir(name);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("setting 0700 on {}", d.display()))?;
        Ok(d)
    }

    pub fn load(&self, name: &str) -> Result<Option<Trial>> {
        let p = self.trial_dir(name).join(RECORD_FILE);
        if !p.exists() {
            return Ok(None);
        }
        let s = fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let t: Trial = toml::from_str(&s).with_context(|| format!("parsing {}", p.display()))?;
        Ok(Some(t))
    }

    pub fn save(&self, t: &Trial) -> Result<PathBuf> {
        let s = toml::to_string_pretty(t).context("encoding the trial record")?;
        self.write_secret(&t.name, RECORD_FILE, s.as_bytes())
    }

    /// Write a file of the trial atomically with mode 0600.
    pub fn write_secret(&self, name: &str, file: &str, contents: &[u8]) -> Result<PathBuf> {
        let dir = self.ensure_dir(name)?;
        let dest = dir.join(file);
        atomic_write(&dest, contents, 0o600)?;
        Ok(dest)
    }

    pub fn read_file(&self, name: &str, file: &str) -> Result<String> {
        let p = self.trial_dir(name).join(file);
        fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    }

    /// Every trial record (sorted by name); unreadable ones are reported, not fatal.
    pub fn list(&self) -> Result<Vec<Trial>> {
        let dir = self.trials_dir();
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        let mut names: Vec<String> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in names {
            match self.load(&n) {
                Ok(Some(t)) => out.push(t),
                Ok(None) => {}
                Err(e) => tracing::warn!("skipping trial record {n}: {e:#}"),
            }
        }
        Ok(out)
    }

    /// Remove the trial's directory with its secrets.
    pub fn remove(&self, name: &str) -> Result<()> {
        let d = self.trial_dir(name);
        if d.exists() {
            fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
        }
        Ok(())
    }
}

/// Write to a temp file beside `dest` (created with `mode`), fsync, rename over `dest`.
pub fn atomic_write(dest: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = dest.parent().context("destination has no parent directory")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        dest.file_name().and_then(|s| s.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    f.write_all(contents).with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dest).with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_trial(name: &str) -> Trial {
        Trial { name: name.into(), provider: munero_provider::ProviderKind::Hetzner, expires_unix: 1_900_000_000, ..Trial::default() }
    }

    #[test]
    fn save_load_roundtrip_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::at(&tmp.path().join("state"));
        let t = fixture_trial("acme-demo");
        let p = s.save(&t).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(s.trial_dir("acme-demo")).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(s.root()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(s.load("acme-demo").unwrap().unwrap(), t);
        assert_eq!(s.list().unwrap().len(), 1);
        s.remove("acme-demo").unwrap();
        assert!(s.load("acme-demo").unwrap().is_none());
        assert!(!s.trial_dir("acme-demo").exists());
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Store::at(tmp.path());
        s.write_secret("t1x", "id_ed25519", b"secret").unwrap();
        s.write_secret("t1x", "id_ed25519", b"secret2").unwrap();
        let names: Vec<_> = fs::read_dir(s.trial_dir("t1x")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(s.read_file("t1x", "id_ed25519").unwrap(), "secret2");
    }

    #[test]
    fn state_dir_flag_wins() {
        let s = Store::resolve(Some(Path::new("/tmp/x-flag"))).unwrap();
        assert_eq!(s.root(), Path::new("/tmp/x-flag"));
    }
}
