//! The local VM's base image: the official Debian 13 "genericcloud" image, downloaded once and
//! checked against the published SHA512SUMS; a local image file; or a directory made by
//! `munero-infra image build` (disk, kernel and initrd, booted directly).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha512};

use super::qemu::Boot;
use crate::error::usage;

pub const DEBIAN_CLOUD_URL: &str = "https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2";

/// Where images are cached: `$XDG_CACHE_HOME/munero-infra/images`, else `~/.cache/...`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    base.join("munero-infra").join("images")
}

/// Where `image build` puts its result unless told otherwise.
pub fn built_dir() -> PathBuf {
    cache_dir().join("built")
}

/// What `--image` names, before anything is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Downloaded over https, verified against the SHA512SUMS beside it.
    Url(String),
    /// A qcow2 (or raw) disk with its own bootloader.
    File(PathBuf),
    /// `image build` output: disk.qcow2, vmlinuz, initrd.img.
    Built(PathBuf),
}

impl Source {
    /// `--image` (empty: a built image in the cache when there is one, else the Debian cloud image).
    pub fn parse(image: &str) -> Result<Source> {
        if image.is_empty() {
            let b = built_dir();
            return Ok(if is_built(&b) { Source::Built(b) } else { Source::Url(DEBIAN_CLOUD_URL.into()) });
        }
        if image.starts_with("https://") || image.starts_with("http://") {
            return Ok(Source::Url(image.into()));
        }
        let p = PathBuf::from(image);
        if p.is_dir() {
            if !is_built(&p) {
                return Err(usage(format!(
                    "--image {image}: a directory must hold disk.qcow2, vmlinuz and initrd.img (made by `munero-infra image build --out {image}`)"
                )));
            }
            return Ok(Source::Built(std::fs::canonicalize(&p)?));
        }
        if p.is_file() {
            return Ok(Source::File(std::fs::canonicalize(&p)?));
        }
        Err(usage(format!(
            "--image {image}: no such file or directory; give a qcow2 file, a directory from `munero-infra image build`, or an https URL"
        )))
    }

    /// The disk path the overlay will sit on (for a URL: where the download is cached).
    pub fn disk(&self) -> PathBuf {
        match self {
            Source::Url(u) => cache_dir().join(u.rsplit('/').next().unwrap_or("image.qcow2")),
            Source::File(p) => p.clone(),
            Source::Built(d) => d.join("disk.qcow2"),
        }
    }

    pub fn boot(&self) -> Boot {
        match self {
            Source::Built(d) => Boot::Kernel { kernel: d.join("vmlinuz"), initrd: d.join("initrd.img") },
            _ => Boot::Disk,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Url(u) => format!("{u} (downloaded once to {}, sha512 checked against SHA512SUMS)", self.disk().display()),
            Source::File(p) => format!("{}", p.display()),
            Source::Built(d) => format!("{} (built image: disk, kernel and initrd)", d.display()),
        }
    }
}

fn is_built(d: &Path) -> bool {
    ["disk.qcow2", "vmlinuz", "initrd.img"].iter().all(|f| d.join(f).is_file())
}

/// Make the base disk available: download and verify a URL (once; a verified copy is reused),
/// check that files exist. Refuses a checksum mismatch before anything boots.
pub async fn ensure(src: &Source, progress: &(dyn Fn(String) + Sync)) -> Result<PathBuf> {
    let disk = src.disk();
    let Source::Url(url) = src else {
        if !disk.is_file() {
            bail!("image {} is missing", disk.display());
        }
        return Ok(disk);
    };
    let stamp = disk.with_extension("sha512-ok");
    let sums_url = format!("{}/SHA512SUMS", url.rsplit_once('/').map(|(d, _)| d).unwrap_or(url));
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    let client = reqwest::Client::builder().build()?;
    let sums = client.get(&sums_url).send().await.and_then(|r| r.error_for_status());
    let want = match sums {
        Ok(r) => expected_sha512(&r.text().await?, &name)
            .with_context(|| format!("{sums_url} lists no sha512 for {name}"))?,
        Err(e) if disk.is_file() && stamp.is_file() => {
            progress(format!("      could not read {sums_url} ({e}); using the copy verified earlier"));
            return Ok(disk);
        }
        Err(e) => {
            return Err(usage(format!(
                "cannot download the VM image's checksums from {sums_url} ({e}); on a host without that access \
                 build an image with `munero-infra image build` and pass --image DIR (or a local qcow2 file)"
            )))
        }
    };
    if disk.is_file() && std::fs::read_to_string(&stamp).map(|s| s.trim() == want).unwrap_or(false) {
        progress(format!("      cached {} (sha512 verified earlier)", disk.display()));
        return Ok(disk);
    }
    std::fs::create_dir_all(disk.parent().unwrap_or(Path::new(".")))?;
    let part = disk.with_extension("part");
    progress(format!("      downloading {url}"));
    let mut resp = client.get(url).send().await.and_then(|r| r.error_for_status()).with_context(|| format!("downloading {url}"))?;
    let mut f = std::fs::File::create(&part)?;
    let mut h = Sha512::new();
    while let Some(chunk) = resp.chunk().await? {
        std::io::Write::write_all(&mut f, &chunk)?;
        h.update(&chunk);
    }
    let got = hex::encode(h.finalize());
    if got != want {
        let _ = std::fs::remove_file(&part);
        bail!("the image from {url} has sha512 {got}, but SHA512SUMS says {want}: refused (nothing was booted)");
    }
    std::fs::rename(&part, &disk)?;
    std::fs::write(&stamp, &want)?;
    Ok(disk)
}

/// The sha512 of `name` in a SHA512SUMS text (`<hex>  <name>` lines).
pub fn expected_sha512(sums: &str, name: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let (h, n) = l.split_once(char::is_whitespace)?;
        (n.trim().trim_start_matches('*') == name && h.len() == 128).then(|| h.to_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_read_from_sha512sums_lines() {
        let h = "a".repeat(128);
        let sums = format!("{h}  debian-13-genericcloud-amd64.qcow2\n{}  other.qcow2\n", "b".repeat(128));
        assert_eq!(expected_sha512(&sums, "debian-13-genericcloud-amd64.qcow2"), Some(h));
        assert_eq!(expected_sha512(&sums, "missing.qcow2"), None);
    }

    #[test]
    fn image_arguments_are_checked_before_anything_boots() {
        let e = Source::parse("/nonexistent/disk.qcow2").unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), 2);
        let d = tempfile::tempdir().unwrap();
        let e = Source::parse(d.path().to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("image build"), "{e}");
        for f in ["disk.qcow2", "vmlinuz", "initrd.img"] {
            std::fs::write(d.path().join(f), "x").unwrap();
        }
        let s = Source::parse(d.path().to_str().unwrap()).unwrap();
        assert!(matches!(s.boot(), Boot::Kernel { .. }));
        assert_eq!(Source::parse("https://h/x.qcow2").unwrap().disk().file_name().unwrap(), "x.qcow2");
    }

    #[tokio::test]
    async fn a_local_file_is_used_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("img.qcow2");
        std::fs::write(&f, b"disk").unwrap();
        let s = Source::parse(f.to_str().unwrap()).unwrap();
        assert_eq!(ensure(&s, &|_| {}).await.unwrap(), std::fs::canonicalize(&f).unwrap());
    }
}
