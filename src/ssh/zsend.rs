//! The compressed and the delta upload: a zstd stream into the host helper, which writes the
//! part and answers with its sha256.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::transfer::{first_hex64, human_bytes, progress_bar, UploadOptions};
use super::{compress, delta, hashcache, helper, Echo, Session};

/// What the host and this side made of one stream.
pub struct Streamed {
    pub host_sha: String,
    pub local_sha: String,
    /// Plain bytes of the file carried.
    pub plain: u64,
    pub wire: u64,
    pub level: i32,
    pub resumed_from: u64,
}

/// `local[resume..]` compressed into `<dest>.part` from `resume` on. The local sha256 of the
/// whole file is computed while it is read (the kept prefix first) unless it is `known`.
pub async fn compressed(
    sess: &Session,
    local: &Path,
    dest: &str,
    size: u64,
    resume: u64,
    known: Option<String>,
    opts: &UploadOptions,
) -> Result<Streamed> {
    let bar = opts.progress_bar.then(|| progress_bar(size, resume));
    let on_plain: Option<Box<dyn Fn(u64) + Send>> = {
        let (bar, f) = (bar.clone(), opts.on_progress.clone());
        Some(Box::new(move |n| {
            if let Some(b) = &bar {
                b.set_position(resume + n);
            }
            if let Some(f) = &f {
                f(resume + n, size);
            }
        }))
    };
    let path = local.to_path_buf();
    let started = std::time::Instant::now();
    let block = delta::file_block_size(local, size)?;
    let (stdin, thread) = compress::spawn(helper::prefix(), opts.level, on_plain, move |c| {
        let mut f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        // The block hashes go with the whole file's hash, for the next upload's delta.
        let mut digests = delta::FileDigests::new(known.is_none(), block);
        let mut buf = vec![0u8; 4 << 20];
        let mut prefix = (&f).take(resume);
        std::io::copy(&mut prefix, &mut digests).with_context(|| format!("reading {}", path.display()))?;
        f.seek(SeekFrom::Start(resume))?;
        let mut left = size - resume;
        while left > 0 {
            let n = (buf.len() as u64).min(left) as usize;
            f.read_exact(&mut buf[..n]).with_context(|| format!("reading {} (did it shrink?)", path.display()))?;
            digests.write_all(&buf[..n])?;
            c.write_all(&buf[..n])?;
            left -= n as u64;
        }
        let (sha, sums) = digests.finish();
        Ok((sha.or(known), sums))
    })?;
    let part = format!("{dest}.part");
    let out = sess.exec_with(&helper::cmd("receive", [part.clone(), resume.to_string()]), Some(stdin), Echo::Capture).await;
    let sent = compress::join(thread).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let host_sha = helper_answer(sess, &part, out)?;
    let ((local_sha, sums), stats) = sent?;
    let local_sha = local_sha.context("the local hash was neither known nor computed")?;
    if host_sha == local_sha {
        hashcache::store_block_sums(opts.hash_cache.as_deref(), &local_sha, block, &sums);
    }
    if opts.progress_bar {
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        eprintln!(
            "  sent {} as {} with zstd (level {} at the end) in {:.1}s ({:.1} MB/s of the file){}",
            human_bytes(stats.plain),
            human_bytes(stats.wire),
            stats.level,
            secs,
            stats.plain as f64 / secs / 1e6,
            if resume > 0 { format!(", resumed at {}", human_bytes(resume)) } else { String::new() }
        );
    }
    Ok(Streamed {
        host_sha,
        local_sha,
        plain: stats.plain,
        wire: stats.wire + helper::CODE.len() as u64,
        level: stats.level,
        resumed_from: resume,
    })
}

/// Only the blocks of `local` that the host's `dest` (of `old_size` bytes, recorded with
/// `host_sha`) lacks go, into `<dest>.part`, rebuilt on the host, which renames it into place
/// itself when it verifies (`Streamed::host_sha == local_sha`). The host's block hashes come
/// from the last upload from here of that content, else from the host (which reads its copy).
#[allow(clippy::too_many_arguments)]
pub async fn delta(
    sess: &Session,
    local: &Path,
    dest: &str,
    size: u64,
    old_size: u64,
    host_sha: Option<&str>,
    known: Option<String>,
    opts: &UploadOptions,
) -> Result<Streamed> {
    let block = delta::file_block_size(local, size)?;
    let old_len = delta::nblocks(old_size, block) as usize * delta::HASH_LEN;
    let cache = opts.hash_cache.as_deref();
    let remembered = host_sha.and_then(|sha| hashcache::cached_block_sums(cache, sha, block, old_len));
    let (old, from_host) = match remembered {
        Some(old) => (old, 0),
        None => {
            let sums_cmd = delta::sums_cmd(dest, block);
            let host = sess
                .run_capped(&sums_cmd, Some(std::io::Cursor::new(helper::prefix())), old_len + 1024)
                .await
                .with_context(|| format!("reading the block hashes of {dest} on {}", sess.host()))?;
            if host.stdout.len() != old_len {
                bail!("the host sent {} bytes of block hashes for {dest}, expected {old_len}", host.stdout.len());
            }
            let n = host.stdout.len() as u64;
            (host.stdout, n)
        }
    };

    // This side reads its file once, sending changed blocks as it finds them while the host
    // copies the others, and hashes the whole beside it for the end of the stream.
    let path = local.to_path_buf();
    let (stdin, thread) = compress::spawn(helper::prefix(), opts.level, None, move |c| {
        let f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        std::thread::scope(|s| {
            let whole = s.spawn(|| match known {
                Some(k) => Ok(k),
                None => hashcache::sha256_file(&path),
            });
            let (sums, plain) =
                delta::write_changes(c, &f, size, block, &old).with_context(|| format!("reading {}", path.display()))?;
            let local_sha = whole.join().expect("hashing thread")?;
            delta::write_end(c, &local_sha)?;
            Ok((sums, local_sha, plain))
        })
    })?;
    let out = sess.exec_with(&delta::rebuild_cmd(dest, size, block, opts.mode), Some(stdin), Echo::Capture).await;
    let sent = compress::join(thread).await;
    let host_sha = helper_answer(sess, &format!("{dest}.part"), out)?;
    let ((sums, local_sha, plain), stats) = sent?;
    if opts.progress_bar {
        eprintln!(
            "  delta: {} of {} in blocks of {block} B differ, sent as {}{}",
            human_bytes(plain),
            human_bytes(size),
            human_bytes(stats.wire),
            if from_host > 0 { format!(" (+ {} of block hashes from the host)", human_bytes(from_host)) } else { String::new() }
        );
    }
    if host_sha == local_sha {
        hashcache::store_block_sums(cache, &local_sha, block, &sums);
    }
    Ok(Streamed {
        host_sha,
        local_sha,
        plain,
        wire: stats.wire + from_host + if from_host > 0 { 2 } else { 1 } * helper::CODE.len() as u64,
        level: stats.level,
        resumed_from: 0,
    })
}

/// The sha256 the helper printed, or why it has none: its own words when it failed.
fn helper_answer(sess: &Session, part: &str, out: Result<super::ExecOutput>) -> Result<String> {
    let out = out.with_context(|| format!("writing {part} on {}", sess.host()))?;
    if !out.success() {
        let why = out.stderr_str();
        bail!(
            "writing {part} on {} failed ({}): {}",
            sess.host(),
            out.status.map_or("no exit status: the connection was lost".to_string(), |s| format!("exit {s}")),
            why.trim()
        );
    }
    first_hex64(&out.stdout_str()).with_context(|| format!("no sha256 from the host for {part}: {:?}", out.stdout_str()))
}
