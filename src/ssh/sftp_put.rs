//! The plain upload over SFTP, for hosts without the helper's needs (zstd, python3) and for links
//! faster than compression: pipelined writes into `<dest>.part`, resume from the part's size, and
//! a host-side follower that hashes the part while it grows, so the sha256 check costs no second
//! pass over a multi-GB file.
//!
//! With a `Probe`, the first fraction of a second also measures the link: a link slower than the
//! probe's rate stops the plain upload at a clean offset, and the caller goes on compressed from
//! there (the part so far is a prefix of the file, as after a cut).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use russh_sftp::protocol::{FileAttributes, OpenFlags};


use super::transfer::{first_hex64, human_bytes, progress_bar, remote_sha, Probe, UploadOptions};
use super::{delta, hashcache, helper, quote, RemoteCmd, Session};

pub struct Sent {
    pub sha256: String,
    pub bytes_sent: u64,
    pub resumed_from: u64,
    pub hashed_while_uploading: bool,
    /// The link's rate the probe measured (bytes/s), when there was a probe.
    pub link_rate: Option<f64>,
}

/// Writes in flight when the probe starts; each answer allows one more, as TCP's slow start
/// does: a fast link soon has the full pipeline (a fixed small one measured the round trip of a
/// loaded machine, 10 MB/s on loopback), a slow one has little plain data left to drain when
/// the upload stops.
const PROBE_IN_FLIGHT: usize = 8;

pub enum Outcome {
    Done(Sent),
    /// The link was slower than the probe's rate: `[0, at)` is in the part, unverified.
    TooSlow { at: u64, rate: f64 },
}

/// Where the reading thread sends the file's hashes when it is done, and whether to hash the
/// whole file (false: it is known; only its block hashes are wanted).
type HashInto = (tokio::sync::oneshot::Sender<(Option<String>, Vec<u8>)>, bool);

/// How one pass of writes ended.
struct Pass {
    sent: u64,
    rate: Option<f64>,
    /// Where the writes stopped because the link was slow.
    stopped_at: Option<u64>,
}

/// Sends `local` into `<dest>.part` from `resume` on and checks the host's sha256 of the part
/// (starting over once when a kept part does not match); the caller renames it.
pub async fn upload(
    sess: &Session,
    local: &Path,
    dest: &str,
    size: u64,
    resume: u64,
    known: Option<String>,
    opts: &UploadOptions,
    probe: Option<Probe>,
) -> Result<Outcome> {
    let part = format!("{dest}.part");
    // The host hashes the part while it is written (a follower reading the file as it grows),
    // so the verify costs no extra pass over a multi-GB file. The channel's stdin is its
    // lifeline: dropping it stops the follower when the upload fails.
    let (lifeline, follower_input) = tokio::io::duplex(64);
    let mut lifeline = Some(lifeline);
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
    let (hash_tx, hash_rx) = tokio::sync::oneshot::channel::<(Option<String>, Vec<u8>)>();
    let hash_whole = known.is_none();
    // A file sent before (same sha256) has its block hashes kept already: reading it is enough.
    let block = delta::file_block_size(local, size)?;
    let sums_kept = known.as_deref().is_some_and(|sha| {
        let len = delta::nblocks(size, block) as usize * delta::HASH_LEN;
        hashcache::cached_block_sums(opts.hash_cache.as_deref(), sha, block, len).is_some()
    });
    let hash_into = (!sums_kept).then_some((hash_tx, hash_whole));
    let follower = async {
        opened_rx.await.ok()?;
        let out = sess
            .exec_with(&follow_hash_cmd(&part, size), Some(follower_stdin(follower_input)), super::Echo::Capture)
            .await
            .ok()?;
        out.success().then(|| first_hex64(&out.stdout_str())).flatten()
    };
    let sender = async {
        let r = send_part(sess, local, dest, size, resume, opts, Some(opened_tx), hash_into, probe).await;
        if !matches!(r, Ok(Pass { stopped_at: None, .. })) {
            lifeline.take();
        }
        r
    };
    let (followed, pass) = tokio::join!(follower, sender);
    drop(lifeline);
    let pass = pass?;
    if let Some(at) = pass.stopped_at {
        return Ok(Outcome::TooSlow { at, rate: pass.rate.unwrap_or_default() });
    }
    let mut sent = pass.sent;
    let (computed, sums) = match sums_kept {
        true => (None, Vec::new()),
        false => hash_rx.await.context("hashing the local file")?,
    };
    let sha = known.or(computed).context("the local hash was neither known nor computed")?;
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
        sent += send_part(sess, local, dest, size, 0, opts, None, None, None).await?.sent;
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
    if !sums_kept {
        hashcache::store_block_sums(opts.hash_cache.as_deref(), &sha, block, &sums);
    }
    Ok(Outcome::Done(Sent { sha256: sha, bytes_sent: sent, resumed_from, hashed_while_uploading, link_rate: pass.rate }))
}

/// Hashes `part` from its first byte while it grows, until `size` bytes were read; prints the
/// digest. Its stdin is `follower_stdin`; it stops (non-zero) when that closes first. The helper's
/// `follow` when the host has python3; else coreutils + mkfifo, which drain the helper's code
/// with the rest (stdin kept on fd 3: a background job gets /dev/null as its stdin).
pub fn follow_hash_cmd(part: &str, size: u64) -> RemoteCmd {
    let py = helper::cmd("follow", [part.to_string(), size.to_string()]).to_command_line();
    RemoteCmd::shell(format!(
        "p={p}; n={size}; if command -v python3 >/dev/null 2>&1; then exec {py}; fi; \
         exec 3<&0; d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT; mkfifo \"$d/f\" || exit 1; \
         if command -v openssl >/dev/null 2>&1; then H='openssl dgst -sha256 -r'; else H=sha256sum; fi; \
         tail -c +1 -f -- \"$p\" > \"$d/f\" 2>/dev/null & t=$!; \
         head -c \"$n\" < \"$d/f\" | $H > \"$d/h\" & h=$!; \
         ( cat <&3 > /dev/null; kill $h $t ) > /dev/null 2>&1 & w=$!; \
         wait $h; r=$?; kill $t $w 2>/dev/null; [ $r -eq 0 ] && cat \"$d/h\"; exit $r",
        p = quote(part)
    ))
}

/// The follower's stdin: the helper's code, then the lifeline, which the caller closes to stop it.
pub fn follower_stdin(lifeline: impl tokio::io::AsyncRead + Unpin + Send) -> impl tokio::io::AsyncRead + Unpin + Send {
    use tokio::io::AsyncReadExt;
    AsyncReadExt::chain(std::io::Cursor::new(helper::prefix()), lifeline)
}

/// Sends `[offset, size)` of `local` into `<dest>.part` with many writes in flight; with a
/// probe, stops early (every write issued answered, so the part is a clean prefix) on a slow link.
#[allow(clippy::too_many_arguments)]
async fn send_part(
    sess: &Session,
    local: &Path,
    dest: &str,
    size: u64,
    offset: u64,
    opts: &UploadOptions,
    opened: Option<tokio::sync::oneshot::Sender<()>>,
    hash_into: Option<HashInto>,
    probe: Option<Probe>,
) -> Result<Pass> {
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
    let mut look = probe.map(Look::new);
    let mut rate = None;
    let mut stopped_at = None;
    let mut answered = 0usize;
    let result: Result<()> = async {
        loop {
            let seen = look.as_mut().and_then(|l| l.see(started.elapsed().as_secs_f64(), acked.load(Ordering::Relaxed)));
            if let Some(r) = seen {
                rate = Some(r);
                if probe.is_some_and(|p| r < p.min_rate) {
                    stopped_at = Some(pos);
                }
                look = None;
            }
            let cap = if look.is_some() { (PROBE_IN_FLIGHT + answered).min(opts.in_flight) } else { opts.in_flight };
            while pos < size && stopped_at.is_none() && inflight.len() < cap {
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
                    answered += 1;
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
    if look.is_some() {
        // The whole file went within the probe's window.
        rate = Some(acked.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64().max(1e-6));
    }
    // A stopped upload's part is not the file yet: the compressed upload that goes on from
    // here flushes it at its end.
    if stopped_at.is_none() {
        let _ = sftp.fsync(handle.clone()).await;
    }
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
        if let (Some(at), Some(r)) = (stopped_at, rate) {
            eprintln!("  the link carries {:.1} MB/s: the rest goes compressed from {}", r / 1e6, human_bytes(at));
        }
    }
    Ok(Pass { sent, rate, stopped_at })
}

/// The probe's look at the link. The first answers are slow on any link (TCP's slow start and
/// ours, the host opening the part and starting its follower), and on a busy machine the start
/// can stall for a few tenths of a second, so the rate is taken over the whole window: from the
/// first answer on, or over the window's second half, whichever is higher. A slow link is slow
/// in both. Measured on the loopback: 2-4 MB answered in the first 0.2 s of a link that then
/// carried 200 MB/s, which a verdict at 0.2 s (there was one, for links that looked very slow)
/// took for 10 MB/s and sent 2 GB the compressed way, at half the speed.
struct Look {
    probe: Probe,
    first: Option<(f64, u64)>,
    half: Option<(f64, u64)>,
}

impl Look {
    fn new(probe: Probe) -> Look {
        Look { probe, first: None, half: None }
    }

    /// Given the seconds since the upload started and the bytes answered so far, the link's
    /// rate (bytes/s) once the window is over.
    fn see(&mut self, secs: f64, acked: u64) -> Option<f64> {
        let window = self.probe.window.as_secs_f64();
        if self.first.is_none() && acked > 0 {
            self.first = Some((secs, acked));
        }
        if self.half.is_none() && secs >= window / 2.0 {
            self.half = Some((secs, acked));
        }
        let since = |mark: Option<(f64, u64)>| {
            mark.filter(|(t, _)| secs > *t).map_or(0.0, |(t, a)| (acked - a) as f64 / (secs - t))
        };
        let rate = since(self.first).max(since(self.half));
        (secs >= window).then(|| {
            tracing::debug!(
                "link probe: {acked} bytes answered in {secs:.3} s (first answer {:?}, half-way {:?}): {:.1} MB/s",
                self.first,
                self.half,
                rate / 1e6
            );
            rate
        })
    }
}

/// Reads `[offset, size)` in chunks on a thread. With `hash_into`, it also hashes the file (the
/// kept prefix first, then every chunk as it goes out): its block hashes, and the whole when not
/// known, sent at the end, so a first upload costs no separate pass over the file.
fn read_ahead(
    path: PathBuf,
    offset: u64,
    size: u64,
    chunk: usize,
    hash_into: Option<HashInto>,
) -> Result<tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    let block = delta::file_block_size(&path, size)?;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut hasher = hash_into.as_ref().map(|(_, whole)| delta::FileDigests::new(*whole, block));
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
            // Read into spare capacity: zeroing each chunk first was one more pass over the file.
            let mut buf = Vec::with_capacity(n);
            let r = (&mut f).take(n as u64).read_to_end(&mut buf).and_then(|got| match got == n {
                true => Ok(buf),
                false => Err(std::io::ErrorKind::UnexpectedEof.into()),
            });
            let failed = r.is_err();
            if let (Some(h), Ok(b)) = (hasher.as_mut(), r.as_ref()) {
                h.write_all(b).expect("hashing in memory");
            }
            if tx.blocking_send(r).is_err() || failed {
                return;
            }
            pos += n as u64;
        }
        if let (Some(h), Some(out)) = (hasher, hash_into) {
            let _ = out.0.send(h.finish());
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: Probe = Probe { window: std::time::Duration::from_millis(500), min_rate: 40e6 };

    /// Feeds (seconds, bytes answered) to a look until it answers.
    fn look_at(samples: &[(f64, u64)]) -> Option<(f64, f64)> {
        let mut look = Look::new(PROBE);
        samples.iter().find_map(|&(t, a)| look.see(t, a).map(|r| (t, r)))
    }

    fn steady(from: f64, rate: f64) -> Vec<(f64, u64)> {
        (0..=60).map(|i| i as f64 * 0.01).map(|t| (t, if t <= from { 0 } else { ((t - from) * rate) as u64 })).collect()
    }

    #[test]
    fn a_fast_link_that_answered_late_is_still_fast() {
        // Nothing for 0.3 s, then 200 MB/s.
        let (at, rate) = look_at(&steady(0.3, 200e6)).unwrap();
        assert!((0.5..0.52).contains(&at), "decided at {at}");
        assert!(rate > 150e6, "{rate}");
    }

    #[test]
    fn a_stall_in_the_first_half_does_not_hide_a_fast_second_half() {
        let mut s: Vec<(f64, u64)> = (0..=10).map(|i| (i as f64 * 0.01, i * 1_000_000)).collect();
        s.extend((11..=25).map(|i| (i as f64 * 0.01, 10_000_000))); // stalled up to 0.25 s
        s.extend((26..=55).map(|i| (i as f64 * 0.01, 10_000_000 + (i - 25) * 2_000_000)));
        let (_, rate) = look_at(&s).unwrap();
        assert!(rate > 150e6, "{rate}");
    }

    #[test]
    fn a_slow_link_is_slow() {
        let (at, rate) = look_at(&steady(0.02, 25e6)).unwrap();
        assert!((0.5..0.52).contains(&at) && (20e6..30e6).contains(&rate), "{at} {rate}");
        let (_, rate) = look_at(&steady(0.02, 5e6)).unwrap();
        assert!((4e6..6e6).contains(&rate), "{rate}");
    }

    #[test]
    fn a_slow_start_is_not_taken_for_a_slow_link() {
        // Measured: 2 MB answered in the first 0.21 s, then the link's 200 MB/s.
        let s: Vec<(f64, u64)> =
            (0..=55).map(|i| i as f64 * 0.01).map(|t| (t, if t <= 0.21 { (t * 10e6) as u64 } else { 2_100_000 + ((t - 0.21) * 200e6) as u64 })).collect();
        let (_, rate) = look_at(&s).unwrap();
        assert!(rate > 150e6, "{rate}");
    }

    #[test]
    fn no_answer_within_the_window_is_a_slow_link() {
        let (at, rate) = look_at(&steady(10.0, 100e6)).unwrap();
        assert_eq!((at, rate), (0.5, 0.0));
    }
}
