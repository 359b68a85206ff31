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

/// Files of block hashes kept: one per dataset version a host may still hold.
const KEEP_SUMS: usize = 8;

/// Names the block hash in the kept files' names: hashes of another kind are never compared.
const SUMS_KIND: &str = "crc-adler";

/// Where the block hashes of the file with this sha256 are kept, beside the hash cache.
fn sums_path(cache: &Path, sha: &str, block: u32) -> Option<std::path::PathBuf> {
    let hex64 = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    hex64.then(|| cache.with_file_name("upload-blocks").join(format!("{sha}.{block}.{SUMS_KIND}")))
}

/// The block hashes of the file with this sha256, as an upload from here sent it, so the next
/// delta to a host that holds it needs not have the host read it all again. `len` is the size
/// they must have (8 bytes per block of the host's copy).
pub fn cached_block_sums(cache: Option<&Path>, sha: &str, block: u32, len: usize) -> Option<Vec<u8>> {
    let sums = std::fs::read(sums_path(cache?, sha, block)?).ok()?;
    (sums.len() == len).then_some(sums)
}

/// Keeps the block hashes of what was just uploaded (private: they describe client data), and
/// the newest few others.
pub fn store_block_sums(cache: Option<&Path>, sha: &str, block: u32, sums: &[u8]) {
    let Some(p) = cache.and_then(|c| sums_path(c, sha, block)) else { return };
    let dir = p.parent().expect("a file in a directory").to_path_buf();
    if let Err(e) = std::fs::create_dir_all(&dir).map_err(anyhow::Error::from).and_then(|_| crate::store::atomic_write(&p, sums, 0o600)) {
        tracing::debug!("not keeping block hashes in {}: {e:#}", p.display());
        return;
    }
    let mut kept: Vec<(std::time::SystemTime, std::path::PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    kept.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, old) in kept.into_iter().skip(KEEP_SUMS) {
        let _ = std::fs::remove_file(old);
    }
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
    fn block_sums_are_kept_by_content_hash_privately_and_only_the_newest() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("upload-hashes.json");
        let sha = |i: usize| format!("{i:064x}");
        store_block_sums(Some(&cache), &sha(1), 4096, &[7u8; 16]);
        assert_eq!(cached_block_sums(Some(&cache), &sha(1), 4096, 16), Some(vec![7u8; 16]));
        assert_eq!(cached_block_sums(Some(&cache), &sha(1), 4096, 24), None, "another size of host copy");
        assert_eq!(cached_block_sums(Some(&cache), &sha(1), 8192, 16), None, "another block size");
        assert_eq!(cached_block_sums(Some(&cache), "../../etc/passwd", 4096, 16), None);
        let f = dir.path().join("upload-blocks").join(format!("{}.4096.crc-adler", sha(1)));
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        for i in 2..=KEEP_SUMS + 3 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            store_block_sums(Some(&cache), &sha(i), 4096, &[1u8; 8]);
        }
        assert_eq!(std::fs::read_dir(dir.path().join("upload-blocks")).unwrap().count(), KEEP_SUMS);
        assert_eq!(cached_block_sums(Some(&cache), &sha(1), 4096, 16), None, "the oldest went");
        assert!(cached_block_sums(Some(&cache), &sha(KEEP_SUMS + 3), 4096, 8).is_some());
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
