//! Local sha256 of the datasets, cached by canonical path + size + mtime in a private JSON file,
//! so a multi-GB file is hashed once and not on every deploy.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Default, Serialize, Deserialize)]
struct HashCache {
    #[serde(default)]
    files: BTreeMap<String, CachedHash>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct CachedHash {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

/// sha256 of a local file, cached by canonical path + size + mtime.
pub async fn local_sha256(path: &Path, cache: Option<&Path>) -> Result<String> {
    let path = path.to_path_buf();
    let cache = cache.map(Path::to_path_buf);
    tokio::task::spawn_blocking(move || local_sha256_blocking(&path, cache.as_deref())).await?
}

fn file_key(path: &Path) -> Option<(String, u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime_ns = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    let key = std::fs::canonicalize(path).ok()?.to_string_lossy().into_owned();
    Some((key, meta.len(), mtime_ns))
}

fn read_cache(cache: &Path) -> HashCache {
    std::fs::read_to_string(cache)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// The cached hash of a local file when its size and mtime did not change.
pub fn cached_local_sha256(path: &Path, cache: Option<&Path>) -> Option<String> {
    let (key, size, mtime_ns) = file_key(path)?;
    let db = read_cache(cache?);
    let c = db.files.get(&key)?;
    (c.size == size && c.mtime_ns == mtime_ns).then(|| c.sha256.clone())
}

pub fn store_local_sha256(path: &Path, cache: Option<&Path>, sha: &str) {
    let (Some(c), Some((key, size, mtime_ns))) = (cache, file_key(path)) else { return };
    let mut db = read_cache(c);
    db.files.insert(key, CachedHash { size, mtime_ns, sha256: sha.to_string() });
    write_cache(c, &db);
}

/// The cache names the client's datasets and their hashes: private like the rest of the state.
fn write_cache(c: &Path, db: &HashCache) {
    if let Some(dir) = c.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    if let Ok(b) = serde_json::to_vec_pretty(db) {
        if let Err(e) = crate::store::atomic_write(c, &b, 0o600) {
            tracing::debug!("not caching the hash in {}: {e:#}", c.display());
        }
    }
}

fn local_sha256_blocking(path: &Path, cache: Option<&Path>) -> Result<String> {
    let meta = std::fs::metadata(path)?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let key = std::fs::canonicalize(path)?.to_string_lossy().into_owned();
    let mut db: HashCache = cache
        .and_then(|c| std::fs::read_to_string(c).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    if let Some(c) = db.files.get(&key) {
        if c.size == meta.len() && c.mtime_ns == mtime_ns {
            return Ok(c.sha256.clone());
        }
    }
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let sha = hex::encode(h.finalize());
    if let Some(c) = cache {
        db.files.insert(
            key,
            CachedHash {
                size: meta.len(),
                mtime_ns,
                sha256: sha.clone(),
            },
        );
        write_cache(c, &db);
    }
    Ok(sha)
}

/// sha256 of a whole file, uncached.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// sha256 of bytes in memory, as hex.
pub fn sha256_bytes(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hash_is_cached_by_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"hello").unwrap();
        let cache = dir.path().join("cache.json");
        let a = local_sha256_blocking(&f, Some(&cache)).unwrap();
        assert_eq!(a, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        let text = std::fs::read_to_string(&cache).unwrap();
        assert!(text.contains(&a));
    }

    #[test]
    fn hash_cache_is_private_even_when_an_older_run_left_it_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("client.sqlite");
        std::fs::write(&f, b"data").unwrap();
        let cache = dir.path().join("upload-hashes.json");
        local_sha256_blocking(&f, Some(&cache)).unwrap();
        assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o644)).unwrap();
        store_local_sha256(&f, Some(&cache), &"b".repeat(64));
        assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(cached_local_sha256(&f, Some(&cache)).unwrap(), "b".repeat(64));
    }
}
