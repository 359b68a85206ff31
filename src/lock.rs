//! One mutating command per trial at a time: an exclusive flock(2) on `<state>/locks/<trial>.lock`.
//!
//! Two `create` runs of one trial that overlap each generate keys and race to write them, so the
//! stored keys end up not matching the server. Every command that changes a trial (create, deploy,
//! wipe, destroy, and teardown for each trial it destroys) holds this lock for its whole run.
//!
//! - The lock files live outside `trials/`, so destroying a trial (which removes its directory)
//!   cannot delete a lock another process is waiting on; they are never removed (a few bytes each).
//! - flock is released by the kernel when the holder exits, however it exits: no stale locks.
//! - The holder writes its pid, command and start time into the file so a waiting run can say who
//!   it waits for.
//! - The file is opened close-on-exec (Rust's default), so child processes never inherit the lock.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

/// How long a second run waits for the lock unless `MUNERO_LOCK_WAIT_S` says otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// Held while it lives; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct TrialLock {
    file: fs::File,
    path: PathBuf,
}

impl TrialLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TrialLock {
    fn drop(&mut self) {
        // Clear the holder line first so a reader never names a process that no longer holds it.
        let _ = self.file.set_len(0);
        // SAFETY: the fd is owned by `self.file`, open until after this call.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

pub fn lock_path(store_root: &Path, trial: &str) -> PathBuf {
    store_root.join("locks").join(format!("{trial}.lock"))
}

/// The lock for a mutating command, or none for a dry run (it changes nothing, so it never waits).
pub fn for_command(ctx: &crate::ctx::Ctx, trial: &str, what: &str, dry_run: bool) -> Result<Option<TrialLock>> {
    if dry_run {
        return Ok(None);
    }
    crate::validate::trial_name(trial)?;
    lock_trial(ctx.store.root(), trial, what, |m| ctx.out.progress(m)).map(Some)
}

/// Take the trial's lock, waiting up to `MUNERO_LOCK_WAIT_S` (default 10 s) for another run.
pub fn lock_trial(store_root: &Path, trial: &str, what: &str, out: impl Fn(&str)) -> Result<TrialLock> {
    let wait = std::env::var("MUNERO_LOCK_WAIT_S")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_WAIT);
    lock_trial_within(store_root, trial, what, wait, out)
}

pub fn lock_trial_within(store_root: &Path, trial: &str, what: &str, wait: Duration, out: impl Fn(&str)) -> Result<TrialLock> {
    // The name becomes a file name: anything that could leave the locks dir is refused.
    if trial.is_empty() || trial.starts_with('.') || trial.contains('/') || trial.contains('\0') {
        return Err(anyhow!("cannot lock trial {trial:?}: not a usable trial name"));
    }
    let dir = store_root.join("locks");
    if !dir.exists() {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let path = lock_path(store_root, trial);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));

    let start = Instant::now();
    let mut said = false;
    loop {
        // SAFETY: a plain syscall on an fd `file` owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) && err.raw_os_error() != Some(libc::EINTR) {
            return Err(anyhow!(err).context(format!("locking {}", path.display())));
        }
        let holder = read_holder(&mut file);
        if start.elapsed() >= wait {
            return Err(anyhow!(
                "trial {trial} is busy: {holder} holds its lock {}; wait for it to finish and run {what} again \
                 (MUNERO_LOCK_WAIT_S sets how long to wait, now {} s)",
                path.display(),
                wait.as_secs_f64()
            ));
        }
        if !said {
            out(&format!(
                "waiting up to {} s for trial {trial}: {holder} is changing it",
                wait.as_secs_f64().ceil()
            ));
            said = true;
        }
        std::thread::sleep(POLL.min(wait.saturating_sub(start.elapsed())).max(Duration::from_millis(1)));
    }

    let started = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let holder = format!("pid {} (munero-infra {what} {trial}, started {started})\n", std::process::id());
    file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0))).and_then(|_| file.write_all(holder.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    let _ = file.sync_data();
    Ok(TrialLock { file, path })
}

/// Who holds the lock, from what the holder wrote (it may not have written yet).
fn read_holder(file: &mut fs::File) -> String {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_string(&mut s));
    let s = s.trim();
    if s.is_empty() {
        "another munero-infra process".to_string()
    } else {
        s.chars().take(300).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn a_second_locker_times_out_naming_the_holder_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let first = lock_trial_within(tmp.path(), "acme-demo", "create", Duration::ZERO, |_| {}).unwrap();
        let said = RefCell::new(Vec::<String>::new());
        let t0 = Instant::now();
        let e = lock_trial_within(tmp.path(), "acme-demo", "deploy", Duration::from_millis(300), |m| {
            said.borrow_mut().push(m.to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(t0.elapsed() >= Duration::from_millis(300), "it waited before giving up");
        let pid = format!("pid {}", std::process::id());
        assert!(e.contains(&pid) && e.contains("munero-infra create acme-demo") && e.contains("busy"), "{e}");
        assert_eq!(said.borrow().len(), 1, "says once that it waits: {:?}", said.borrow());
        assert!(said.borrow()[0].contains(&pid), "{:?}", said.borrow());

        // Another trial is not held up.
        lock_trial_within(tmp.path(), "other-trial", "create", Duration::ZERO, |_| {}).unwrap();

        drop(first);
        let again = lock_trial_within(tmp.path(), "acme-demo", "deploy", Duration::ZERO, |_| {}).unwrap();
        assert_eq!(tmp.path().join("locks/acme-demo.lock"), again.path());
        let mode = fs::metadata(again.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn removing_the_trial_dir_keeps_the_lock_held() {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::store::Store::at(tmp.path());
        store.ensure_dir("gone-soon").unwrap();
        let held = lock_trial_within(tmp.path(), "gone-soon", "destroy", Duration::ZERO, |_| {}).unwrap();
        store.remove("gone-soon").unwrap();
        assert!(held.path().exists());
        assert!(lock_trial_within(tmp.path(), "gone-soon", "create", Duration::from_millis(50), |_| {}).is_err());
    }

    #[test]
    fn names_that_would_leave_the_locks_dir_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["../x", "..", "", "a/b"] {
            assert!(lock_trial_within(tmp.path(), bad, "create", Duration::ZERO, |_| {}).is_err(), "{bad}");
        }
    }
}
