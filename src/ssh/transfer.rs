//! What every way of uploading shares: the options, the progress shown, the host's sha256.

use std::sync::Arc;

use anyhow::{bail, Result};

use super::compress::Level;
use super::{quote, RemoteCmd, Session};

/// OpenSSH's sftp-server accepts messages up to 256 KiB; 255 KiB of data leaves room for the
/// header (and matches its `limits@openssh.com` max-write-length).
pub const DEFAULT_CHUNK: usize = 255 * 1024;
/// Writes in flight at once (about 16 MiB): enough to fill a long fat pipe.
pub const DEFAULT_IN_FLIGHT: usize = 64;

/// A look at the link during the first `window` of a plain upload (see `sftp_put`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub window: std::time::Duration,
    /// Below this rate (bytes/s) plain bytes are the slower way and the rest goes compressed.
    pub min_rate: f64,
}

/// A fresh upload of a file this big first looks at the link; a smaller one goes compressed
/// (on any link it is over before a look would say much).
pub const PROBE_MIN_SIZE: u64 = 64 << 20;

/// Half a second shows a fast link past its ramp-up. 40 MB/s (about 320 Mbit/s) is roughly what
/// zstd on 2 busy cores, next to SSH and hashing, makes of this data (27-60 MB/s of the file
/// measured here): above it the plain bytes arrive sooner than compressed ones would.
pub const DEFAULT_PROBE: Probe = Probe { window: std::time::Duration::from_millis(500), min_rate: 40e6 };

pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

#[derive(Clone)]
pub struct UploadOptions {
    /// Mode of the final file (and of the `.part` while it is written).
    pub mode: u32,
    pub chunk: usize,
    pub in_flight: usize,
    /// JSON file caching local hashes by path + size + mtime.
    pub hash_cache: Option<std::path::PathBuf>,
    /// Show a progress bar on stderr.
    pub progress_bar: bool,
    /// Called with (bytes of the file now on the remote, total) as acknowledgements arrive.
    pub on_progress: Option<ProgressFn>,
    /// Send the whole file even when the host holds it or an older copy of it (`--force`).
    pub force: bool,
    /// zstd level on the wire.
    pub level: Level,
    /// How a fresh upload of a big file measures the link (None: always compressed).
    pub probe: Option<Probe>,
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
            force: false,
            level: Level::from_env(),
            probe: Some(DEFAULT_PROBE),
        }
    }
}

/// sha256 of a remote file: OpenSSL's SHA-NI/AVX code when the host has `openssl` (about twice
/// as fast as coreutils on a multi-GB file), else `sha256sum`. Both print the hex digest first.
pub fn remote_sha_cmd(path: &str) -> RemoteCmd {
    let f = quote(path);
    RemoteCmd::shell(format!(
        "{{ command -v openssl >/dev/null 2>&1 && openssl dgst -sha256 -r {f} 2>/dev/null; }} || sha256sum -- {f}"
    ))
}

pub fn first_hex64(s: &str) -> Option<String> {
    let h = s.split_whitespace().next()?.to_ascii_lowercase();
    (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

pub async fn remote_sha(sess: &Session, path: &str) -> Result<String> {
    let out = sess.run(&remote_sha_cmd(path)).await?;
    let s = out.stdout_str();
    let h = s.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
    if h.len() != 64 {
        bail!("unexpected sha256sum output from {}: {s:?}", sess.host());
    }
    Ok(h)
}


pub fn progress_bar(size: u64, pos: u64) -> indicatif::ProgressBar {
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
