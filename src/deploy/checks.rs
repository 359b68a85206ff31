//! Local checks that run before anything is sent: the dataset is a sound SQLite database with
//! tables, the env file parses and has the required keys.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DataCheck {
    pub tables: usize,
    pub bytes: u64,
}

/// Opens read-only, runs `PRAGMA integrity_check`, counts tables.
pub fn check_sqlite(path: &Path) -> Result<DataCheck> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("dataset {} not found", path.display()))?;
    if !meta.is_file() {
        bail!("dataset {} is not a file", path.display());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("{} does not open as SQLite", path.display()))?;
    let rows: Vec<String> = (|| -> rusqlite::Result<Vec<String>> {
        let mut st = conn.prepare("PRAGMA integrity_check")?;
        let r = st.query_map([], |r| r.get::<_, String>(0))?.collect();
        r
    })()
    .with_context(|| format!("{} is not a usable SQLite database", path.display()))?;
    if rows.len() != 1 || rows[0] != "ok" {
        let shown: Vec<&str> = rows.iter().take(5).map(String::as_str).collect();
        bail!(
            "{} failed PRAGMA integrity_check: {}",
            path.display(),
            shown.join("; ")
        );
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .with_context(|| format!("listing the tables of {}", path.display()))?;
    if tables == 0 {
        bail!("{} has no tables: nothing to show the client", path.display());
    }
    Ok(DataCheck { tables: tables as usize, bytes: meta.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn empty_db_and_non_db_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("empty.sqlite");
        Connection::open(&p).unwrap().execute_batch("PRAGMA user_version=1;").unwrap();
        assert!(check_sqlite(&p).unwrap_err().to_string().contains("no tables"));
        let q = d.path().join("text.sqlite");
        std::fs::write(&q, vec![b'x'; 8192]).unwrap();
        assert!(check_sqlite(&q).is_err());
    }
}
