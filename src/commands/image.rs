//! `image build`: the local provider's VM image made here with debootstrap, for hosts that cannot
//! download the cloud image. A build whose inputs did not change is reused.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::cli::ImageBuildArgs;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::hosts::local::image;
use crate::output::Report;

const SCRIPT: &str = include_str!("../hosts/local/image-build.sh");
const STAMP: &str = "image.json";

pub async fn build(ctx: &Ctx, args: &ImageBuildArgs) -> Result<Report> {
    let out = args.out.clone().unwrap_or_else(image::built_dir);
    crate::validate::token("--suite", &args.suite)?;
    if !args.size.trim_end_matches(['G', 'M']).parse::<u32>().is_ok_and(|n| n > 0) {
        return Err(usage(format!("--size {}: give a size such as 4G", args.size)));
    }
    let inputs = hex::encode(Sha256::digest(format!("{SCRIPT}\n{}\n{}\n{}", args.suite, args.mirror, args.size)));
    let files: Vec<PathBuf> = ["disk.qcow2", "vmlinuz", "initrd.img"].iter().map(|f| out.join(f)).collect();
    let stamp = out.join(STAMP);
    let current = std::fs::read_to_string(&stamp)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .is_some_and(|v| v["inputs"] == inputs)
        && files.iter().all(|f| f.is_file());
    let plan = format!(
        "debootstrap {} from {} with kernel, cloud-init and sshd; ext4 root of {} -> qcow2; kernel and initrd beside it, in {}",
        args.suite,
        args.mirror,
        args.size,
        out.display()
    );
    let doc = |reused: bool, secs: f64| {
        json!({"ok": true, "command": "image build", "dry_run": args.dry_run, "out": out, "inputs": inputs,
               "reused": reused, "files": files, "seconds": secs, "plan_text": plan})
    };
    if current && !args.force {
        return Ok(Report::new(doc(true, 0.0), format!("Image in {} is current (same inputs); reused.", out.display())));
    }
    if args.dry_run {
        return Ok(Report::new(doc(false, 0.0), format!("Would build: {plan}")));
    }
    let missing: Vec<&str> = [("debootstrap", "debootstrap"), ("mkfs.ext4", "e2fsprogs"), ("qemu-img", "qemu-utils")]
        .iter()
        .filter(|(bin, _)| !which(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        return Err(usage(format!("image build needs {} (e.g. `apt-get install {}`)", missing.join(", "), missing.join(" "))));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(usage("image build runs debootstrap, which needs root: run it with sudo"));
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    ctx.out.progress(format!("building the VM image: {plan}"));
    let started = Instant::now();
    let st = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(SCRIPT)
        .env("OUT", &out)
        .env("SUITE", &args.suite)
        .env("MIRROR", &args.mirror)
        .env("SIZE", &args.size)
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .context("running the image build")?;
    if !st.success() {
        bail!("the image build failed (see the lines above)");
    }
    let secs = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let d = doc(false, secs);
    crate::store::atomic_write(&stamp, serde_json::to_string_pretty(&d)?.as_bytes(), 0o644)?;
    Ok(Report::new(d, format!("Image built in {secs:.0} s: {}\nUse it: munero-infra create TRIAL --provider local --image {}", out.display(), out.display())))
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        || ["/usr/sbin", "/sbin"].iter().any(|d| std::path::Path::new(d).join(bin).is_file())
}
