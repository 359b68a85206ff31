//! Large-file upload into `<dest>.part`, its sha256 verified on the host, then an atomic rename;
//! skipped when the host already holds the same content (its hash is cached next to it in
//! `<dest>.sha256`, so a 2 GB file is not re-hashed on every deploy).
//!
//! How the bytes travel depends on the host, on what it holds and on the link:
//! - delta: the host has an older copy; only the blocks that differ go (see `delta`),
//! - full: plain SFTP (see `sftp_put`), for a host without `zstd` or `python3`, and for a link
//!   faster than compression: a fresh upload of a big file starts plain and measures the link,
//! - compressed: a zstd stream decompressed by the host helper into the part, from where the
//!   plain start stopped on a slower link; after a cut it resumes at the part's size, which
//!   counts plain bytes, by compressing from that offset.
//!
//! Whatever the way, the host's sha256 of the whole part must equal ours before the rename; a
//! delta that does not verify is repaired by a compressed upload of the whole file.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::hashcache::{cached_local_sha256, local_sha256, store_local_sha256};
pub use super::transfer::{
    first_hex64, human_bytes, progress_bar, remote_sha, remote_sha_cmd, Probe, ProgressFn, UploadOptions, DEFAULT_CHUNK,
    DEFAULT_IN_FLIGHT, DEFAULT_PROBE, PROBE_MIN_SIZE,
};
use super::{compress, quote, sftp_put, zsend, RemoteCmd, Session};

/// How the file travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Plain SFTP: every byte as it is.
    Full,
    /// zstd on the wire.
    Compressed,
    /// Only the blocks the host's copy lacks, zstd on the wire.
    Delta,
    /// The host already held this content.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UploadReport {
    pub dest: String,
    pub size: u64,
    pub sha256: String,
    pub mode: Mode,
    /// Bytes of the file carried in this run, before compression.
    pub bytes_sent: u64,
    /// Bytes that crossed the connection for the data, both ways: the compressed stream, the
    /// host's block hashes and the helper's code (SSH framing not counted).
    pub bytes_on_wire: u64,
    /// Offset the upload continued from (size of an existing `.part`).
    pub resumed_from: u64,
    /// The link's rate measured at the start of a fresh upload, MB/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_mb_per_s: Option<f64>,
    /// The remote already held this content; nothing was sent.
    pub skipped: bool,
    /// The host hashed the part as it was written (false: it was hashed again afterwards, or
    /// nothing was sent).
    pub hashed_while_uploading: bool,
    /// The zstd level at the end of the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zstd_level: Option<i32>,
    /// A delta did not verify and the whole file was sent instead.
    pub repaired: bool,
    /// Why the upload took a slower way than it could have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub seconds: f64,
}

/// What the remote currently holds for `dest`, found with one exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteState {
    pub dest_size: Option<u64>,
    pub cached_sha256: Option<String>,
    pub part_size: Option<u64>,
    pub has_zstd: bool,
    pub has_python3: bool,
}

/// One exec with few processes (each one a fork on the host, and more of them than the data
/// took on a small redeploy): the shell reads the recorded hash and tests for `zstd` itself.
/// With `same` (size and sha256 of the local file, when known), a host that holds exactly that
/// skips starting python3 (`?`): nothing will be sent, and an interpreter behind a version
/// manager's shim can take longer to start than the rest of an unchanged deploy's step.
pub fn probe_cmd(dest: &str, same: Option<(u64, &str)>) -> RemoteCmd {
    let d = quote(dest);
    let holds = match same {
        Some((size, sha)) => format!("[ \"$s $h\" = {} ] && y='?' || ", quote(&format!("{size} {sha}"))),
        None => String::new(),
    };
    let dir = quote(dest.rsplit_once('/').map_or(".", |(dir, _)| if dir.is_empty() { "/" } else { dir }));
    RemoteCmd::shell(format!(
        "mkdir -p -- {dir} && \
         {{ s=$(stat -c %s -- {d} 2>/dev/null) || s=-; }}; \
         {{ p=$(stat -c %s -- {d}.part 2>/dev/null) || p=-; }}; \
         h=-; [ -f {d}.sha256 ] && read -r h < {d}.sha256; \
         if command -v zstd >/dev/null 2>&1; then z=zstd; else z=-; fi; \
         {holds}if python3 -c 'import hashlib, subprocess' >/dev/null 2>&1; then y=python3; else y=-; fi; \
         echo \"$s ${{h:--}} $p $z $y\""
    ))
}

pub fn parse_probe(out: &str) -> Result<RemoteState> {
    let f: Vec<&str> = out.split_whitespace().collect();
    if f.len() != 5 {
        bail!("unexpected answer from the remote probe: {out:?}");
    }
    let num = |s: &str| s.parse::<u64>().ok();
    let hash = (f[1].len() == 64 && f[1].bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| f[1].to_ascii_lowercase());
    Ok(RemoteState {
        dest_size: num(f[0]),
        cached_sha256: hash,
        part_size: num(f[2]),
        has_zstd: f[3] == "zstd",
        has_python3: f[4] == "python3",
    })
}

/// Why this host cannot take the compressed or delta upload, if it cannot. (python3 is run, not
/// just looked up: a version manager's shim can be on PATH with no interpreter behind it.)
pub fn missing_tools(state: &RemoteState) -> Option<String> {
    let missing: Vec<&str> = [(!state.has_zstd).then_some("zstd"), (!state.has_python3).then_some("python3")]
        .into_iter()
        .flatten()
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the host has no {} on its PATH: plain upload, no compression and no delta \
             (cloud-init installs both on a trial VM; on an existing host install them)",
            missing.join(" and no ")
        )
    })
}

/// chmod + atomic rename of the verified part, dropping the host's block hashes of the copy it
/// replaces, + record of its hash for later skips.
pub fn finish_cmd(dest: &str, sha: &str, mode: u32) -> RemoteCmd {
    let d = quote(dest);
    RemoteCmd::shell(format!(
        "chmod {mode:o} -- {d}.part && mv -f -- {d}.part {d} && \
         rm -f -- {d}.blocks {d}.part.blocks && \
         printf '%s\\n' {sha} > {d}.sha256.tmp && mv -f -- {d}.sha256.tmp {d}.sha256"
    ))
}

/// Removes a part that did not verify, and the block hashes that led to it.
pub fn discard_cmd(dest: &str) -> RemoteCmd {
    let d = quote(dest);
    RemoteCmd::shell(format!("rm -f -- {d}.part {d}.part.blocks {d}.blocks"))
}

pub async fn upload_file(
    sess: &Session,
    local: &Path,
    dest: &str,
    opts: &UploadOptions,
) -> Result<UploadReport> {
    let started = Instant::now();
    let meta = std::fs::metadata(local).with_context(|| format!("reading {}", local.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", local.display());
    }
    let size = meta.len();
    let cache = opts.hash_cache.as_deref();
    let mut known = cached_local_sha256(local, cache);

    let same = known.as_deref().filter(|_| !opts.force).map(|sha| (size, sha));
    let probe = sess.run(&probe_cmd(dest, same)).await?;
    let state = parse_probe(&probe.stdout_str())?;
    let mut report = UploadReport {
        dest: dest.to_string(),
        size,
        sha256: String::new(),
        mode: Mode::Skipped,
        bytes_sent: 0,
        bytes_on_wire: 0,
        resumed_from: 0,
        link_mb_per_s: None,
        skipped: false,
        hashed_while_uploading: false,
        zstd_level: None,
        repaired: false,
        note: None,
        seconds: 0.0,
    };
    // The local hash is needed up front only to decide a skip; otherwise it is computed while
    // the file is read for sending.
    let may_skip = !opts.force && state.dest_size == Some(size) && state.cached_sha256.is_some();
    if may_skip && known.is_none() {
        known = Some(local_sha256(local, cache).await?);
    }
    if may_skip && state.cached_sha256 == known {
        report.sha256 = known.unwrap_or_default();
        report.skipped = true;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let resume = match state.part_size {
        Some(p) if p <= size && !opts.force => p,
        _ => 0,
    };

    if let Some(why) = missing_tools(&state) {
        let sent = match sftp_put::upload(sess, local, dest, size, resume, known, opts, None).await? {
            sftp_put::Outcome::Done(sent) => sent,
            sftp_put::Outcome::TooSlow { .. } => bail!("a plain upload without a probe stopped early"),
        };
        report.note = Some(why);
        return plain_done(sess, local, cache, opts, report, sent, started).await;
    }

    if let (Some(old_size), false) = (state.dest_size.filter(|s| *s > 0), opts.force) {
        let host_sha = state.cached_sha256.as_deref();
        let d = zsend::delta(sess, local, dest, size, old_size, host_sha, known.clone(), opts).await?;
        store_local_sha256(local, cache, &d.local_sha);
        known = Some(d.local_sha.clone());
        report.bytes_on_wire += d.wire;
        if d.host_sha == d.local_sha {
            // The host renamed the verified part into place itself.
            report.mode = Mode::Delta;
            report.sha256 = d.local_sha;
            report.bytes_sent = d.plain;
            report.hashed_while_uploading = true;
            report.zstd_level = Some(d.level);
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        // The host's copy is not what its block hashes said (it changed after they were taken):
        // its blocks cannot be trusted, so the whole file goes. (The helper already removed the
        // part and the block hashes that misled it.)
        report.repaired = true;
        report.note = Some(format!(
            "the file rebuilt from the host's copy had sha256 {}, not {}: the host's copy differs from \
             its recorded block hashes; sent the whole file instead",
            d.host_sha, d.local_sha
        ));
    }

    let resume = if report.repaired { 0 } else { resume };
    // A fresh upload of a big file starts plain and looks at the link: a fast one takes it all
    // plain (compressing would only slow it), a slower one stops and the rest goes compressed.
    let (mut from, mut level) = (resume, opts.level);
    if let Some(probe) = opts.probe.filter(|_| resume == 0 && size >= PROBE_MIN_SIZE) {
        match sftp_put::upload(sess, local, dest, size, 0, known.clone(), opts, Some(probe)).await? {
            sftp_put::Outcome::Done(sent) => {
                let rate = sent.link_rate.unwrap_or_default() / 1e6;
                report.link_mb_per_s = Some((rate * 10.0).round() / 10.0);
                let why = format!("the link carried {rate:.0} MB/s, faster than compression would: sent plain");
                report.note = Some(report.note.map_or(why.clone(), |n| format!("{n}; {why}")));
                return plain_done(sess, local, cache, opts, report, sent, started).await;
            }
            sftp_put::Outcome::TooSlow { at, rate } => {
                report.link_mb_per_s = Some((rate / 1e5).round() / 10.0);
                report.bytes_on_wire += at;
                from = at;
                level = compress::start_level_for(rate, opts.level);
            }
        }
    }
    let zopts = UploadOptions { level, ..opts.clone() };
    let mut c = zsend::compressed(sess, local, dest, size, from, known.clone(), &zopts).await?;
    if c.host_sha != c.local_sha && c.resumed_from > 0 {
        // The kept part did not match this file (it changed, or a write was torn): start over.
        sess.run(&discard_cmd(dest)).await?;
        let wire = c.wire;
        c = zsend::compressed(sess, local, dest, size, 0, Some(c.local_sha), opts).await?;
        c.wire += wire;
    }
    if c.host_sha != c.local_sha {
        bail!(
            "sha256 of {dest}.part on {} is {}, expected {}; the partial file was kept for inspection",
            sess.host(),
            c.host_sha,
            c.local_sha
        );
    }
    store_local_sha256(local, cache, &c.local_sha);
    sess.run(&finish_cmd(dest, &c.local_sha, opts.mode)).await?;
    report.mode = Mode::Compressed;
    report.sha256 = c.local_sha;
    report.bytes_sent = size - resume.min(c.resumed_from);
    report.bytes_on_wire += c.wire;
    report.resumed_from = resume.min(c.resumed_from);
    report.hashed_while_uploading = true;
    report.zstd_level = Some(c.level);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The plain upload verified: rename it into place and say how it went.
async fn plain_done(
    sess: &Session,
    local: &Path,
    cache: Option<&Path>,
    opts: &UploadOptions,
    mut report: UploadReport,
    sent: sftp_put::Sent,
    started: Instant,
) -> Result<UploadReport> {
    store_local_sha256(local, cache, &sent.sha256);
    sess.run(&finish_cmd(&report.dest, &sent.sha256, opts.mode)).await?;
    report.mode = Mode::Full;
    report.sha256 = sent.sha256;
    report.bytes_sent = sent.bytes_sent;
    report.bytes_on_wire += sent.bytes_sent;
    report.resumed_from = sent.resumed_from;
    report.hashed_while_uploading = sent.hashed_while_uploading;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answer_is_parsed() {
        let h = "a".repeat(64);
        let s = parse_probe(&format!("100 {h} 40 zstd -\n")).unwrap();
        assert_eq!(s.dest_size, Some(100));
        assert!(s.has_zstd && !s.has_python3);
        assert!(missing_tools(&s).unwrap().starts_with("the host has no python3 on its PATH: plain upload"));
        assert_eq!(s.cached_sha256.as_deref(), Some(h.as_str()));
        assert_eq!(s.part_size, Some(40));
        let s = parse_probe("- - - - -\n").unwrap();
        assert_eq!(
            s,
            RemoteState { dest_size: None, cached_sha256: None, part_size: None, has_zstd: false, has_python3: false }
        );
        assert!(missing_tools(&s).unwrap().contains("no zstd and no python3"));
        assert!(parse_probe("garbage").is_err());
    }

    #[test]
    fn a_host_holding_the_very_file_is_not_asked_for_python3() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("client.sqlite");
        std::fs::write(&dest, b"12345").unwrap();
        let sha = "b".repeat(64);
        std::fs::write(dir.path().join("client.sqlite.sha256"), format!("{sha}\n")).unwrap();
        let run = |same: Option<(u64, &str)>| {
            let cmd = probe_cmd(dest.to_str().unwrap(), same).to_command_line();
            let out = std::process::Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let python = if std::process::Command::new("python3").arg("-c").arg("import hashlib, subprocess").status().is_ok_and(|s| s.success()) { "python3" } else { "-" };
        assert_eq!(run(Some((5, &sha))).split_whitespace().nth(4), Some("?"));
        assert_eq!(run(Some((6, &sha))).split_whitespace().nth(4), Some(python), "another size");
        assert_eq!(run(Some((5, &"c".repeat(64)))).split_whitespace().nth(4), Some(python), "another hash");
        assert_eq!(run(None).split_whitespace().nth(4), Some(python));
        assert_eq!(parse_probe(&run(Some((5, &sha)))).unwrap().cached_sha256.as_deref(), Some(sha.as_str()));
    }

    #[test]
    fn finish_renames_part_and_records_hash() {
        let c = finish_cmd("munero/data/client data.sqlite", "ab", 0o600).to_command_line();
        assert!(c.contains("chmod 600 -- 'munero/data/client data.sqlite'.part"));
        assert!(c.contains("mv -f -- 'munero/data/client data.sqlite'.part 'munero/data/client data.sqlite'"));
    }
}
