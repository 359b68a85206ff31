//! Large-file upload over SFTP: pipelined writes into `<dest>.part`, resume from the part's size
//! after a cut, sha256 verified on the remote host, atomic rename, and a skip when the remote
//! already holds the same content (its hash is cached next to it in `<dest>.sha256`, so a 2 GB
//! file is not re-hashed on every deploy; the local hash is cached by size + mtime).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{quote, RemoteCmd, Session};

/// OpenSSH's sftp-server accepts messages up to 256 KiB; 255 KiB of data leaves room for the
/// header (and matches its `limits@openssh.com` max-write-length).
pub const DEFAULT_CHUNK: usize = 255 * 1024;
/// Writes in flight at once (about 16 MiB): enough to fill a long fat pipe.
pub const DEFAULT_IN_FLIGHT: usize = 64;

pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

#[derive(Clone)]
pub struct UploadOptions {
    /// Mode of the final file (and of the `.part` while it is written).
    pub mode: u32,
    pub chunk: usize,
    pub in_flight: usize,
    /// JSON file caching local hashes by path + size + mtime.
    pub hash_cache: Option<PathBuf>,
    /// Show a progress bar on stderr.
    pub progress_bar: bool,
    /// Called with (bytes of the file now on the remote, total) as acknowledgements arrive.
    pub on_progress: Option<ProgressFn>,
}

/// `MUNERO_UPLOAD_CHUNK` (bytes, at most 255 KiB) and `MUNERO_UPLOAD_IN_FLIGHT` tune the
/// pipeline for unusual links.
fn env_usize(name: &str, default: usize, max: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|v| *v > 0).map_or(default, |v: usize| v.min(max))
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            mode: 0o600,
            chunk: env_usize("MUNERO_UPLOAD_CHUNK", DEFAULT_CHUNK, DEFAULT_CHUNK),
            in_flight: env_usize("MUNERO_UPLOAD_IN_FLIGHT", DEFAULT_IN_FLIGHT, 1024),
            hash_cache: None,
            progress_bar: false,
            on_progress: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadReport {
    pub dest: String,
    pub size: u64,
    pub sha256: String,
    /// Bytes of file data sent over the wire in this run.
    pub bytes_sent: u64,
    /// Offset the upload continued from (size of an existing `.part`).
    pub resumed_from: u64,
    /// The remote already held this content; nothing was sent.
    pub skipped: bool,
    /// The host's hash came from the follower that read the part while it was written
    /// (false: the part was hashed again after the upload, or nothing was sent).
    pub hashed_while_uploading: bool,
}

/// What the remote currently holds for `dest`, found with one exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteState {
    pub dest_size: Option<u64>,
    pub cached_sha256: Option<String>,
    pub part_size: Option<u64>,
}

pub fn probe_cmd(dest: &str) -> RemoteCmd {
    let d = quote(dest);
    RemoteCmd::shell(format!(
        "mkdir -p -- \"$(dirname -- {d})\" && \
         s=$(stat -c %s -- {d} 2>/dev/null || echo -); \
         h=$(head -c 64 -- {d}.sha256 2>/dev/null); \
         p=$(stat -c %s -- {d}.part 2>/dev/null || echo -); \
         echo \"$s ${{h:--}} $p\""
    ))
}

pub fn parse_probe(out: &str) -> Result<RemoteState> {
    let f: Vec<&str> = out.split_whitespace().collect();
    if f.len() != 3 {
        bail!("unexpected answer from the remote probe: {out:?}");
    }
    let num = |s: &str| s.parse::<u64>().ok();
    let hash = (f[1].len() == 64 && f[1].bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| f[1].to_ascii_lowercase());
    Ok(RemoteState {
        dest_size: num(f[0]),
        cached_sha256: hash,
        part_size: num(f[2]),
    })
}

/// sha256 of a remote file: OpenSSL's SHA-NI/AVX code when the host has `openssl` (about twice
/// as fast as coreutils on a multi-GB file), else `sha256sum`. Both print the hex digest first.
pub fn remote_sha_cmd(path: &str) -> RemoteCmd {
    let f = quote(path);
    RemoteCmd::shell(format!(
        "{{ command -v openssl >/dev/null 2>&1 && openssl dgst -sha256 -r {f} 2>/dev/null; }} || sha256sum -- {f}"
    ))
}

/// chmod + atomic rename of the verified part + record of its hash for later skips.
pub fn finish_cmd(dest: &str, sha: &str, mode: u32) -> RemoteCmd {
    let d = quote(dest);
    RemoteCmd::shell(format!(
        "chmod {mode:o} -- {d}.part && mv -f -- {d}.part {d} && \
         printf '%s\\n' {sha} > {d}.sha256.tmp && mv -f -- {d}.sha256.tmp {d}.sha256"
    ))
}

pub async fn upload_file(
    sess: &Session,
    local: &Path,
    dest: &str,
    opts: &UploadOptions,
) -> Result<UploadReport> {
    let meta = std::fs::metadata(local).with_context(|| format!("reading {}", local.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", local.display());
    }
    let size = meta.len();
    let cache = opts.hash_cache.as_deref();
    let mut known = cached_local_sha256(local, cache);

    let probe = sess.run(&probe_cmd(dest)).await?;
    let state = parse_probe(&probe.stdout_str())?;
    // The local hash is needed up front only to decide a skip; otherwise it is computed while
    // the file is read for sending.
    if state.dest_size == Some(size) && state.cached_sha256.is_some() && known.is_none() {
        known = Some(local_sha256(local, cache).await?);
    }
    if state.dest_size == Some(size) && state.cached_sha256.is_some() && state.cached_sha256 == known {
        let sha = known.unwrap_or_default();
        return Ok(UploadReport {
            dest: dest.to_string(),
            size,
            sha256: sha,
            bytes_sent: 0,
            resumed_from: 0,
            skipped: true,
            hashed_while_uploading: false,
        });
    }
    let resume = match state.part_size {
        Some(p) if p <= size => p,
        _ => 0,
    };

    let part = format!("{dest}.part");
    // The host hashes the part while it is written (a follower reading the file as it grows),
    // so the verify costs no extra pass over a multi-GB file. The channel's stdin is its
    // lifeline: dropping it stops the follower when the upload fails.
    let (lifeline, follower_input) = tokio::io::duplex(64);
    let mut lifeline = Some(lifeline);
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
    let (hash_tx, hash_rx) = match known {
        Some(_) => (None, None),
        None => {
            let (t, r) = tokio::sync::oneshot::channel::<String>();
            (Some(t), Some(r))
        }
    };
    let follower = async {
        opened_rx.await.ok()?;
        let out = sess
            .exec_with(&follow_hash_cmd(&part, size), Some(follower_input), super::Echo::Capture)
            .await
            .ok()?;
        out.success().then(|| first_hex64(&out.stdout_str())).flatten()
    };
    let sender = async {
        let r = send_part(sess, local, dest, size, resume, opts, Some(opened_tx), hash_tx).await;
        if r.is_err() {
            lifeline.take();
        }
        r
    };
    let (followed, sent) = tokio::join!(follower, sender);
    drop(lifeline);
    let mut sent = sent?;
    let sha = match (known, hash_rx) {
        (Some(h), _) => h,
        (None, Some(rx)) => rx.await.context("hashing the local file")?,
        (None, None) => unreachable!("a local hash is either known or computed"),
    };
    store_local_sha256(local, cache, &sha);
    let mut resumed_from = resume;
    let mut hashed_while_uploading = matches!(&followed, Some(h) if *h == sha);
    let mut remote = match followed {
        Some(h) if h == sha => h,
        // No follower (no mkfifo/tail on the host) or a different answer: hash the file again.
        _ => {
            tracing::debug!("hashing {part} again on the host (follower answered {followed:?})");
            remote_sha(sess, &part).await?
        }
    };
    if remote != sha && resume > 0 {
        // The kept part did not match this file (it changed, or a write was torn): start over.
        sess.run(&RemoteCmd::argv(["rm", "-f", "--", &part])).await?;
        sent += send_part(sess, local, dest, size, 0, opts, None, None).await?;
        resumed_from = 0;
        hashed_while_uploading = false;
        remote = remote_sha(sess, &part).await?;
    }
    if remote != sha {
        bail!(
            "sha256 of {part} on {} is {remote}, expected {sha}; the partial file was kept for \
             inspection",
            sess.host()
        );
    }
    sess.run(&finish_cmd(dest, &sha, opts.mode)).await?;
    Ok(UploadReport {
        dest: dest.to_string(),
        size,
        sha256: sha,
        bytes_sent: sent,
        resumed_from,
        skipped: false,
        hashed_while_uploading,
    })
}

/// Writes a small file (config, `.env`) atomically with `mode`, the content going over the
/// channel's stdin (never on a command line). `umask 077` keeps it private from the first byte.
pub fn put_cmd(dest: &str, mode: u32) -> RemoteCmd {
    let d = quote(dest);
    RemoteCmd::shell(format!(
        "umask 077 && mkdir -p -- \"$(dirname -- {d})\" && cat > {d}.tmp && chmod {mode:o} -- {d}.tmp && mv -f -- {d}.tmp {d}"
    ))
}

pub async fn put_bytes(sess: &Session, dest: &str, contents: &[u8], mode: u32) -> Result<()> {
    let input = std::io::Cursor::new(contents.to_vec());
    sess.run_with(&put_cmd(dest, mode), Some(input), super::Echo::Capture)
        .await
        .with_context(|| format!("writing {dest} on {}", sess.host()))?;
    Ok(())
}

/// Hashes `part` from its first byte while it grows, until `size` bytes were read; prints the
/// digest. Stops (non-zero) when its stdin closes first (kept on fd 3: a background job gets
/// /dev/null as its stdin). Needs only coreutils + mkfifo.
pub fn follow_hash_cmd(part: &str, size: u64) -> RemoteCmd {
    RemoteCmd::shell(format!(
        "exec 3<&0; p={p}; n={size}; d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT; mkfifo \"$d/f\" || exit 1; \
         if command -v openssl >/dev/null 2>&1; then H='openssl dgst -sha256 -r'; else H=sha256sum; fi; \
         tail -c +1 -f -- \"$p\" > \"$d/f\" 2>/dev/null & t=$!; \
         head -c \"$n\" < \"$d/f\" | $H > \"$d/h\" & h=$!; \
         ( cat <&3 > /dev/null; kill $h $t ) > /dev/null 2>&1 & w=$!; \
         wait $h; r=$?; kill $t $w 2>/dev/null; [ $r -eq 0 ] && cat \"$d/h\"; exit $r",
        p = quote(part)
    ))
}

fn first_hex64(s: &str) -> Option<String> {
    let h = s.split_whitespace().next()?.to_ascii_lowercase();
    (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

async fn remote_sha(sess: &Session, path: &str) -> Result<String> {
    let out = sess.run(&remote_sha_cmd(path)).await?;
    let s = out.stdout_str();
    let h = s.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    if h.len() != 64 {
        bail!("unexpected sha256sum output from {}: {s:?}", sess.host());
    }
    Ok(h)
}

/// Sends `[offset, size)` of `local` into `<dest>.part` with many writes in flight.
async fn send_part(
    sess: &Session,
    local: &Path,
    dest: &str,
    size: u64,
    offset: u64,
    opts: &UploadOptions,
    opened: Option<tokio::sync::oneshot::Sender<()>>,
    hash_into: Option<tokio::sync::oneshot::Sender<String>>,
) -> Result<u64> {
    let sftp = Arc::new(sess.sftp().await?);
    let part = format!("{dest}.part");
    let mut flags = OpenFlags::WRITE | OpenFlags::CREATE;
    if offset == 0 {
        flags |= OpenFlags::TRUNCATE;
    }
    let attrs = FileAttributes {
        permissions: Some(opts.mode),
        ..Default::default()
    };
    let handle = sftp
        .open(part.clone(), flags, attrs)
        .await
        .with_context(|| format!("opening {part} on {} for writing", sess.host()))?
        .handle;
    if let Some(tx) = opened {
        let _ = tx.send(());
    }

    let bar = opts.progress_bar.then(|| progress_bar(size, offset));
    let acked = Arc::new(AtomicU64::new(0));
    // A reader thread keeps a few chunks ready so disk reads overlap the network.
    let mut chunks = read_ahead(local.to_path_buf(), offset, size, opts.chunk, hash_into)?;
    let mut pos = offset;
    let mut inflight = FuturesUnordered::new();
    let started = Instant::now();
    let result: Result<()> = async {
        loop {
            while pos < size && inflight.len() < opts.in_flight {
                let buf = match chunks.recv().await {
                    Some(Ok(b)) => b,
                    Some(Err(e)) => return Err(e).with_context(|| format!("reading {}", local.display())),
                    None => bail!("reading {}: the file ended early", local.display()),
                };
                let n = buf.len();
                let s = sftp.clone();
                let h = handle.clone();
                let at = pos;
                inflight.push(async move { s.write(h, at, buf).await.map(|_| n as u64) });
                pos += n as u64;
            }
            match inflight.next().await {
                None => break,
                Some(Ok(n)) => {
                    let done = acked.fetch_add(n, Ordering::Relaxed) + n;
                    if let Some(b) = &bar {
                        b.set_position(offset + done);
                    }
                    if let Some(f) = &opts.on_progress {
                        f(offset + done, size);
                    }
                }
                Some(Err(e)) => {
                    bail!("writing {part} on {}: {e}", sess.host())
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result?;
    let _ = sftp.fsync(handle.clone()).await;
    sftp.close(handle)
        .await
        .with_context(|| format!("closing {part} on {}", sess.host()))?;
    let _ = sftp.close_session();
    let sent = acked.load(Ordering::Relaxed);
    if opts.progress_bar {
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        eprintln!(
            "  sent {} in {:.1}s ({:.1} MB/s){}",
            human_bytes(sent),
            secs,
            sent as f64 / secs / 1e6,
            if offset > 0 {
                format!(", resumed at {}", human_bytes(offset))
            } else {
                String::new()
            }
        );
    }
    Ok(sent)
}

/// Reads `[offset, size)` in chunks on a thread. With `hash_into`, it also hashes the whole file
/// (the kept prefix first, then every chunk as it goes out) and sends the digest at the end, so
/// a first upload costs no separate pass over the file.
fn read_ahead(
    path: PathBuf,
    offset: u64,
    size: u64,
    chunk: usize,
    hash_into: Option<tokio::sync::oneshot::Sender<String>>,
) -> Result<tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut hasher = hash_into.as_ref().map(|_| Sha256::new());
        if let Some(h) = hasher.as_mut() {
            if offset > 0 {
                let prefix = std::fs::File::open(&path).map(|p| p.take(offset));
                let r = prefix.and_then(|mut p| std::io::copy(&mut p, h));
                if let Err(e) = r {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
        let mut pos = offset;
        while pos < size {
            let n = (chunk as u64).min(size - pos) as usize;
            let mut buf = vec![0u8; n];
            let r = f.read_exact(&mut buf).map(|_| buf);
            let failed = r.is_err();
            if let (Some(h), Ok(b)) = (hasher.as_mut(), r.as_ref()) {
                h.update(b);
            }
            if tx.blocking_send(r).is_err() || failed {
                return;
            }
            pos += n as u64;
        }
        if let (Some(h), Some(out)) = (hasher, hash_into) {
            let _ = out.send(hex::encode(h.finalize()));
        }
    });
    Ok(rx)
}

fn progress_bar(size: u64, pos: u64) -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::with_draw_target(
        Some(size),
        indicatif::ProgressDrawTarget::stderr(),
    );
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "  {bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap(),
    );
    b.set_position(pos);
    b
}

pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

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

fn store_local_sha256(path: &Path, cache: Option<&Path>, sha: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answer_is_parsed() {
        let h = "a".repeat(64);
        let s = parse_probe(&format!("100 {h} 40\n")).unwrap();
        assert_eq!(s.dest_size, Some(100));
        assert_eq!(s.cached_sha256.as_deref(), Some(h.as_str()));
        assert_eq!(s.part_size, Some(40));
        let s = parse_probe("- - -\n").unwrap();
        assert_eq!(
            s,
            RemoteState { dest_size: None, cached_sha256: None, part_size: None }
        );
        assert!(parse_probe("garbage").is_err());
    }

    #[test]
    fn finish_renames_part_and_records_hash() {
        let c = finish_cmd("munero/data/client data.sqlite", "ab", 0o600).to_command_line();
        assert!(c.contains("chmod 600 -- 'munero/data/client data.sqlite'.part"));
        assert!(c.contains("mv -f -- 'munero/data/client data.sqlite'.part 'munero/data/client data.sqlite'"));
    }

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
