//! The file that is actually uploaded for the dataset.
//!
//! A database in WAL mode may hold its latest commits only in `<db>-wal`, and a `<db>-journal`
//! beside it means a write is under way or was cut: in both cases the main file alone is not
//! the database the integrity check saw, and the host would get an older or torn copy. Such a
//! database is copied with SQLite itself (`VACUUM INTO`, which reads inside one transaction, so
//! a writer in another process is harmless), the copy is switched to a rollback journal so it
//! stands alone, checked, and that copy is uploaded. A plain file without sidecars is uploaded
//! as it is: no copy, so a multi-GB dataset keeps its fast path, cached hash and resume.
//!
//! `VACUUM INTO` writes the same bytes for the same content, so an unchanged source gives an
//! unchanged copy and the upload is skipped as before. The copy is rebuilt (and so re-hashed
//! locally) on each deploy, and removed once the upload step ends.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::checks;

/// Why the main file alone is not a faithful copy of the database, or None when it is.
pub fn snapshot_reason(db: &Path) -> Result<Option<String>> {
    let beside = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    if beside("-wal").exists() {
        return Ok(Some("a -wal file is beside it: its latest writes may be only there".into()));
    }
    if beside("-journal").exists() {
        return Ok(Some("a -journal file is beside it: a write is under way or was interrupted".into()));
    }
    let mut header = [0u8; 100];
    let n = fs::File::open(db)
        .and_then(|mut f| f.read(&mut header))
        .with_context(|| format!("reading {}", db.display()))?;
    // Bytes 18-19 of the header are the write and read format versions: 2 means WAL.
    if n >= 20 && (header[18] == 2 || header[19] == 2) {
        return Ok(Some("it is in WAL mode: another process may be writing to it".into()));
    }
    Ok(None)
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub reason: String,
    pub tables: usize,
    pub bytes: u64,
}

/// The file to upload for `source`, with the snapshot made when one is needed.
#[derive(Debug)]
pub struct UploadSource {
    pub path: PathBuf,
    pub snapshot: Option<Snapshot>,
    source: PathBuf,
    stamp: Option<(u64, SystemTime)>,
}

fn stamp(p: &Path) -> Option<(u64, SystemTime)> {
    let m = fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl UploadSource {
    /// `dir` holds the snapshot (created 0700; the copy is 0600 from its first byte).
    pub fn prepare(source: &Path, dir: &Path) -> Result<UploadSource> {
        let Some(reason) = snapshot_reason(source)? else {
            return Ok(UploadSource {
                path: source.to_path_buf(),
                snapshot: None,
                source: source.to_path_buf(),
                stamp: stamp(source),
            });
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        // One stable name per source, so a crashed run's copy is replaced, not piled up.
        let canon = fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
        let id = hex::encode(Sha256::digest(canon.as_os_str().as_encoded_bytes()));
        let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
        let stem: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let path = dir.join(format!("{stem}-{}.sqlite", &id[..12]));
        let tmp = dir.join(format!(".{stem}-{}.sqlite.tmp-{}", &id[..12], std::process::id()));
        let made = make_snapshot(source, &tmp);
        let made = made.and_then(|tables| {
            fs::rename(&tmp, &path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
            Ok(tables)
        });
        if made.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        let check = made.with_context(|| {
            format!("making a consistent copy of {} to upload ({reason})", source.display())
        })?;
        Ok(UploadSource {
            path,
            snapshot: Some(Snapshot { reason, tables: check.tables, bytes: check.bytes }),
            source: source.to_path_buf(),
            stamp: None,
        })
    }

    /// The progress line for a snapshot (None: the file goes as it is).
    pub fn progress_line(&self) -> Option<String> {
        self.snapshot.as_ref().map(|s| {
            format!(
                "      snapshot: {} ({}); uploading a consistent copy made with VACUUM INTO, integrity_check ok, {} tables, {}",
                self.source.display(),
                s.reason,
                s.tables,
                crate::ssh::upload::human_bytes(s.bytes)
            )
        })
    }

    /// Adds `snapshot` (and its reason) to the upload's JSON result.
    pub fn annotate(&self, v: &mut Value) {
        if let Value::Object(m) = v {
            m.insert("snapshot".into(), json!(self.snapshot.is_some()));
            m.insert("source".into(), json!(self.source));
            if let Some(s) = &self.snapshot {
                m.insert("snapshot_reason".into(), json!(s.reason));
            }
        }
    }

    /// A file sent as it is must not have changed while it was read: the host would hold a
    /// mix of two versions that still matches the hash of what was sent.
    pub fn verify_unchanged(&self) -> Result<()> {
        if self.snapshot.is_none() && stamp(&self.source) != self.stamp {
            bail!(
                "{} changed while it was uploaded (is an application writing to it?); stop the writer \
                 and deploy again",
                self.source.display()
            );
        }
        Ok(())
    }
}

impl Drop for UploadSource {
    /// The copy is client data: it does not outlive the upload step.
    fn drop(&mut self) {
        if self.snapshot.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn make_snapshot(source: &Path, tmp: &Path) -> Result<checks::DataCheck> {
    let _ = fs::remove_file(tmp);
    // VACUUM INTO accepts an existing empty file: create it private first.
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("opening {}", source.display()))?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = tmp.to_str().context("the state directory's path is not UTF-8")?;
    src.execute("VACUUM INTO ?1", [target]).context("VACUUM INTO")?;
    drop(src);
    let copy = Connection::open(tmp)?;
    let mode: String = copy.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("the copy stayed in journal mode {mode}");
    }
    drop(copy);
    checks::check_sqlite(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL database with rows only in its -wal, held open (as a running app does).
    fn wal_db(path: &Path) -> Connection {
        let c = Connection::open(path).unwrap();
        c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)).unwrap();
        c.execute_batch("PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);").unwrap();
        c
    }

    fn rows(p: &Path) -> i64 {
        Connection::open(p).unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_wal_database_is_uploaded_as_a_checked_standalone_copy_with_its_wal_rows() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.sqlite");
        let _writer = wal_db(&db);
        let snaps = d.path().join("state/snapshots");
        let src = UploadSource::prepare(&db, &snaps).unwrap();
        let snap = src.snapshot.clone().expect("a snapshot");
        assert!(snap.reason.contains("-wal"), "{}", snap.reason);
        assert_ne!(src.path, db);
        assert_eq!(snap.tables, 1);
        // The copy alone (no sidecar) has the rows, is not WAL and is private.
        let alone = d.path().join("alone.sqlite");
        fs::copy(&src.path, &alone).unwrap();
        assert_eq!(rows(&alone), 3);
        assert_eq!(snapshot_reason(&alone).unwrap(), None);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&src.path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&snaps).unwrap().permissions().mode() & 0o777, 0o700);
        let first = fs::read(&src.path).unwrap();
        let copy_path = src.path.clone();
        drop(src);
        assert!(!copy_path.exists(), "the copy is removed after the upload step");
        // Same content, same bytes: an unchanged database is not sent again.
        let again = UploadSource::prepare(&db, &snaps).unwrap();
        assert_eq!(fs::read(&again.path).unwrap(), first);
    }

    #[test]
    fn a_plain_database_goes_as_it_is_and_a_change_during_upload_is_caught() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("plain.sqlite");
        Connection::open(&db).unwrap().execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
        let src = UploadSource::prepare(&db, &d.path().join("snaps")).unwrap();
        assert_eq!(src.path, db);
        assert!(src.snapshot.is_none());
        assert!(!d.path().join("snaps").exists(), "no copy is made");
        src.verify_unchanged().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        Connection::open(&db).unwrap().execute_batch("INSERT INTO t VALUES (2);").unwrap();
        assert!(src.verify_unchanged().unwrap_err().to_string().contains("changed while it was uploaded"));
    }

    #[test]
    fn a_database_with_a_journal_beside_it_is_copied() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("j.sqlite");
        Connection::open(&db).unwrap().execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
        // An empty journal is not hot: SQLite ignores it, and the copy is the database.
        fs::write(d.path().join("j.sqlite-journal"), b"").unwrap();
        let reason = snapshot_reason(&db).unwrap().unwrap();
        assert!(reason.contains("-journal"), "{reason}");
        let src = UploadSource::prepare(&db, &d.path().join("snaps")).unwrap();
        assert_eq!(src.snapshot.as_ref().unwrap().tables, 1);
    }
}
