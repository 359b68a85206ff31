//! Local checks that run before anything is sent: the dataset is a sound SQLite database with
//! tables, the env file parses and has the required keys.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

use crate::error::usage;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataCheck {
    pub tables: usize,
    pub bytes: u64,
}

/// The cheap checks a dry run makes too: the dataset exists, is a regular file and starts with
/// the SQLite header. Every refusal is a usage error (exit 2) naming the path and the fix.
pub fn check_data_file(path: &Path) -> Result<()> {
    let p = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(usage(format!("dataset {p}: no such file; pass --data with the client's SQLite database file")))
        }
        Err(e) => return Err(usage(format!("dataset {p} cannot be read ({e}); check the path and its permissions"))),
    };
    if meta.is_dir() {
        return Err(usage(format!(
            "dataset {p} is a directory; pass --data with the SQLite database file inside it (FILE.sqlite)"
        )));
    }
    if !meta.is_file() {
        return Err(usage(format!("dataset {p} is not a regular file; pass --data with a copy of the database file")));
    }
    let mut header = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut header))
        .map_err(|e| usage(format!("dataset {p} cannot be read ({e}); check its permissions")))?;
    if n < header.len() || &header != b"SQLite format 3\0" {
        return Err(usage(format!(
            "dataset {p} is not an SQLite database (no \"SQLite format 3\" header); pass --data with the \
             database file itself, not a dump or an export (a .sql dump loads with: sqlite3 new.sqlite < dump.sql)"
        )));
    }
    Ok(())
}

/// The cheap checks, then opens read-only, runs `PRAGMA integrity_check`, counts tables.
pub fn check_sqlite(path: &Path) -> Result<DataCheck> {
    check_data_file(path)?;
    let p = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("reading {p}"))?;
    let damaged = |what: String| {
        usage(format!(
            "dataset {p} {what}; it is damaged: restore it from a backup, or recover it \
             (sqlite3 {p} .recover | sqlite3 recovered.sqlite) and pass that with --data"
        ))
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| damaged(format!("does not open as SQLite ({e})")))?;
    let rows: Vec<String> = (|| -> rusqlite::Result<Vec<String>> {
        let mut st = conn.prepare("PRAGMA integrity_check")?;
        let r = st.query_map([], |r| r.get::<_, String>(0))?.collect();
        r
    })()
    .map_err(|e| damaged(format!("is not a usable SQLite database ({e})")))?;
    if rows.len() != 1 || rows[0] != "ok" {
        let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
        return Err(damaged(format!("failed PRAGMA integrity_check: {}", shown.join("; "))));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| damaged(format!("cannot list its tables ({e})")))?;
    if tables == 0 {
        return Err(usage(format!(
            "dataset {p} has no tables: nothing to show the client; pass --data with the database that holds the data"
        )));
    }
    Ok(DataCheck { tables: tables as usize, bytes: meta.len() })
}

/// `check_sqlite`, remembered by canonical path + size + mtime in `cache` (a private JSON file):
/// the integrity check reads the whole database, seconds for a large one, and an unchanged file
/// need not be read again on every deploy. Only a passed check is remembered.
pub fn check_sqlite_cached(path: &Path, cache: &Path) -> Result<(DataCheck, bool)> {
    use std::collections::BTreeMap;
    use std::time::UNIX_EPOCH;
    check_data_file(path)?;
    let key = (|| {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
        Some(format!("{} {} {mtime}", std::fs::canonicalize(path).ok()?.display(), meta.len()))
    })();
    let mut known: BTreeMap<String, DataCheck> =
        std::fs::read(cache).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    if let Some(c) = key.as_ref().and_then(|k| known.get(k)) {
        return Ok((c.clone(), true));
    }
    let c = check_sqlite(path)?;
    if let Some(k) = key {
        let prefix = k.rsplitn(3, ' ').last().unwrap_or_default().to_string();
        known.retain(|old, _| !old.starts_with(&format!("{prefix} ")));
        known.insert(k, c.clone());
        if let Ok(b) = serde_json::to_vec_pretty(&known) {
            if let Err(e) = crate::store::atomic_write(cache, &b, 0o600) {
                tracing::debug!("not caching the data check in {}: {e:#}", cache.display());
            }
        }
    }
    Ok((c, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit_code_of;

    #[test]
    fn good_db_passes_and_counts_tables() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ok.sqlite");
        let c = Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE a(x); CREATE TABLE b(y); INSERT INTO a VALUES (1);").unwrap();
        drop(c);
        assert_eq!(check_sqlite(&p).unwrap().tables, 2);
    }

    #[test]
    fn a_passed_check_is_remembered_until_the_file_changes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ok.sqlite");
        let cache = d.path().join("data-checks.json");
        Connection::open(&p).unwrap().execute_batch("CREATE TABLE a(x);").unwrap();
        assert!(!check_sqlite_cached(&p, &cache).unwrap().1);
        assert!(check_sqlite_cached(&p, &cache).unwrap().1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        Connection::open(&p).unwrap().execute_batch("CREATE TABLE b(y);").unwrap();
        let (c, cached) = check_sqlite_cached(&p, &cache).unwrap();
        assert!(!cached);
        assert_eq!(c.tables, 2);
        assert_eq!(std::fs::read_to_string(&cache).unwrap().matches("ok.sqlite").count(), 1);
    }

    #[test]
    fn empty_db_and_non_db_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("empty.sqlite");
        Connection::open(&p).unwrap().execute_batch("PRAGMA user_version=1;").unwrap();
        assert!(check_sqlite(&p).unwrap_err().to_string().contains("no tables"));
        let q = d.path().join("text.sqlite");
        std::fs::write(&q, vec![b'x'; 8192]).unwrap();
        assert!(check_sqlite(&q).is_err());
    }

    #[test]
    fn a_bad_dataset_is_a_usage_error_naming_the_path_and_the_fix() {
        let d = tempfile::tempdir().unwrap();
        let text = d.path().join("orders.csv");
        std::fs::write(&text, "id,amount\n1,2\n").unwrap();
        let empty = d.path().join("empty.sqlite");
        std::fs::write(&empty, b"").unwrap();
        let cases = [
            (d.path().join("missing.sqlite"), "no such file"),
            (d.path().to_path_buf(), "is a directory"),
            (text, "is not an SQLite database"),
            (empty, "is not an SQLite database"),
        ];
        for (p, want) in cases {
            let e = check_sqlite(&p).unwrap_err();
            let msg = e.to_string();
            assert_eq!(exit_code_of(&e), 2, "{msg}");
            assert!(msg.contains(&p.display().to_string()) && msg.contains(want) && msg.contains("pass --data"), "{msg}");
            assert_eq!(exit_code_of(&check_data_file(&p).unwrap_err()), 2);
        }
    }
}
