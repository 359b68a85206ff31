//! Walking a local VM's create and destroy steps, and choosing between KVM and TCG.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use super::qemu::{self, Boot};
use super::{image, Prepared};
use crate::ctx::Ctx;
use crate::output::Report;
use crate::plan::create::CreateStep;
use crate::plan::destroy::DestroyStep;
use crate::ssh::{hostkey, ConnectOptions, Session, Target};
use crate::trial::Trial;

/// KVM only when it really runs a kernel at full speed: on nested or paravirtualised hosts
/// /dev/kvm exists but a normal guest crawls. `MUNERO_QEMU_ACCEL=kvm|tcg` decides outright.
pub fn choose_accel(boot: &Boot) -> String {
    if let Ok(a) = std::env::var("MUNERO_QEMU_ACCEL") {
        if a == "kvm" || a == "tcg" {
            return a;
        }
    }
    let kvm_usable = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    match boot {
        Boot::Kernel { kernel, initrd } if kvm_usable && probe_cached(kernel, initrd) => "kvm".into(),
        _ => "tcg".into(),
    }
}

/// The probe's answer is kept per kernel file (path, size, mtime): it takes seconds.
fn probe_cached(kernel: &Path, initrd: &Path) -> bool {
    let key = std::fs::metadata(kernel)
        .ok()
        .and_then(|m| Some(format!("{} {} {:?}", kernel.display(), m.len(), m.modified().ok()?)))
        .unwrap_or_default();
    let file = image::cache_dir().join("kvm-probe");
    if let Ok(s) = std::fs::read_to_string(&file) {
        if let Some(answer) = s.strip_prefix(&format!("{key}\n")) {
            return answer.trim() == "kvm";
        }
    }
    let ok = kvm_boots(kernel, initrd);
    let _ = std::fs::create_dir_all(image::cache_dir());
    let _ = std::fs::write(&file, format!("{key}\n{}\n", if ok { "kvm" } else { "tcg" }));
    ok
}

/// Boot the kernel under KVM for a few seconds: a working KVM reaches user space (the
/// initramfs) almost at once.
fn kvm_boots(kernel: &Path, initrd: &Path) -> bool {
    let log = std::env::temp_dir().join(format!("munero-kvm-probe-{}.log", std::process::id()));
    let child = Command::new("qemu-system-x86_64")
        .args(["-accel", "kvm", "-cpu", "host", "-m", "512", "-display", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let start = Instant::now();
    let mut ok = false;
    while start.elapsed() < Duration::from_secs(8) {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&log) {
            let _ = f.read_to_string(&mut s);
        }
        if s.contains("Run /init") || s.contains("Freeing unused kernel") {
            ok = true;
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&log);
    ok
}

fn run_local(argv: &[String]) -> Result<()> {
    let out = Command::new(&argv[0]).args(&argv[1..]).stdin(Stdio::null()).output().with_context(|| format!("running {}", argv[0]))?;
    if !out.status.success() {
        bail!("{} failed: {}", argv[0], String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

pub(super) async fn create(ctx: &Ctx, mut trial: Trial, steps: Vec<CreateStep>, prep: Prepared) -> Result<Report> {
    let name = trial.name.clone();
    let existed = ctx.store.exists(&name);
    let total = steps.len();
    let started = Instant::now();
    let mut timings = serde_json::Map::new();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] {}", i + 1, crate::plan::headline(step)));
        let t0 = Instant::now();
        if let Err(e) = create_step(ctx, &mut trial, step, &prep).await {
            let cleanup = undo(ctx, &trial, existed);
            return Err(e.context(format!("create {name} failed at step {}/{total} ({}); {cleanup}", i + 1, step.name())));
        }
        timings.insert(step.name().to_string(), json!((t0.elapsed().as_secs_f64() * 10.0).round() / 10.0));
    }
    let url = crate::remote::url(&trial)?;
    let dir = ctx.store.trial_dir(&name);
    let vm = trial.vm.clone().unwrap_or_default();
    let human = format!(
        "Trial {name} is running on this machine: VM process {} ({}, {} vCPU, {} MiB), SSH 127.0.0.1:{}, site {url}, expires {}.\n\
         SSH: ssh -i {} -p {} {}@127.0.0.1  (host key {})\nNext: munero-infra deploy {name}",
        vm.pid,
        vm.accel,
        vm.cpus,
        vm.memory_mib,
        trial.ssh_port.unwrap_or_default(),
        trial.expires,
        dir.join(&trial.keys.ssh_private_key).display(),
        trial.ssh_port.unwrap_or_default(),
        trial.ssh_user,
        trial.keys.host_key_fingerprint,
    );
    Ok(Report::new(
        json!({"ok": true, "command": "create", "dry_run": false, "trial": name, "provider": trial.provider,
               "server_type": trial.server_type, "ipv4": trial.ipv4, "ssh_port": trial.ssh_port, "url": url,
               "forwards": trial.forwards, "vm": vm, "state": trial.state, "expires": trial.expires,
               "expires_unix": trial.expires_unix, "state_dir": dir, "plan": steps,
               "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0, "timings": timings,
               "ssh": {"user": trial.ssh_user, "private_key_path": dir.join(&trial.keys.ssh_private_key),
                       "host_key_fingerprint": trial.keys.host_key_fingerprint, "host_public_key": prep.keys.host.public_openssh}}),
        human,
    ))
}

async fn create_step(ctx: &Ctx, trial: &mut Trial, step: &CreateStep, prep: &Prepared) -> Result<()> {
    let name = trial.name.clone();
    match step {
        CreateStep::GenerateKey { role, .. } => prep.keys.write(ctx, trial, *role)?,
        CreateStep::PrepareImage { .. } => {
            let out = ctx.out;
            image::ensure(&prep.source, &|m| out.progress(m)).await?;
        }
        CreateStep::RunLocal { argv, .. } => {
            let vm = super::vm_dir(ctx, &name);
            std::fs::create_dir_all(&prep.seed_dir)?;
            set_private(&vm)?;
            if argv[0] == "genisoimage" {
                crate::store::atomic_write(&prep.seed_dir.join("user-data"), prep.user_data.as_bytes(), 0o600)?;
                crate::store::atomic_write(
                    &prep.seed_dir.join("meta-data"),
                    qemu::meta_data(&name, &prep.instance_id).as_bytes(),
                    0o600,
                )?;
                crate::store::atomic_write(&prep.seed_dir.join("network-config"), qemu::NETWORK_CONFIG.as_bytes(), 0o600)?;
            }
            let r = run_local(argv);
            // The seed's source files hold the host private key: gone as soon as the ISO is made.
            let _ = std::fs::remove_dir_all(&prep.seed_dir);
            r?;
            if argv[0] == "genisoimage" {
                std::fs::set_permissions(&prep.spec.seed, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            }
        }
        CreateStep::BootVm { argv, .. } => {
            let _ = std::fs::remove_file(&prep.spec.pidfile);
            let _ = std::fs::remove_file(&prep.spec.console);
            run_local(argv).context("starting QEMU")?;
            let pid: u32 = std::fs::read_to_string(&prep.spec.pidfile)
                .context("reading QEMU's pid file")?
                .trim()
                .parse()
                .context("QEMU's pid file")?;
            if let Some(vm) = trial.vm.as_mut() {
                vm.pid = pid;
            }
            trial.state = "booting".into();
            ctx.store.save(trial)?;
            ctx.out.progress(format!("      VM process {pid}, serial console in {}", prep.spec.console.display()));
        }
        CreateStep::WaitSsh { timeout_s, .. } => {
            wait_ssh(ctx, trial, prep, Duration::from_secs(*timeout_s)).await?;
            trial.state = "running".into();
        }
        CreateStep::RecordTrial { .. } => {
            ctx.store.save(trial)?;
        }
        other => return Err(anyhow!("a local VM has no create step {}", other.name())),
    }
    Ok(())
}

fn set_private(dir: &Path) -> Result<()> {
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    Ok(())
}

/// Until the forwarded SSH port greets with the pinned host key and takes the login key. The
/// port accepts before sshd runs (QEMU forwards it), so a connection alone proves nothing.
async fn wait_ssh(ctx: &Ctx, trial: &Trial, prep: &Prepared, timeout: Duration) -> Result<()> {
    let host_key = hostkey::parse_pinned(&prep.keys.host.public_openssh)?;
    let target = Target {
        host: "127.0.0.1".into(),
        port: trial.ssh_port.unwrap_or(22),
        user: trial.ssh_user.clone(),
        identity: Some(ctx.store.trial_dir(&trial.name).join(&trial.keys.ssh_private_key)),
        host_key,
    };
    let opts = ConnectOptions { connect_timeout: Duration::from_secs(15), ..ConnectOptions::default() };
    let pid = trial.vm.as_ref().map(|v| v.pid).unwrap_or(0);
    let start = Instant::now();
    let mut said = Instant::now();
    let mut last;
    let mut panicked = 0;
    loop {
        if !qemu::alive(pid) {
            bail!("the VM stopped while booting; its serial console ends:\n{}", qemu::console_tail(&prep.spec.console, 30));
        }
        let now = qemu::panics(&prep.spec.console);
        if now > panicked {
            panicked = now;
            if panicked >= 3 {
                bail!("the VM's kernel panicked {panicked} times while booting; its serial console ends:\n{}", qemu::console_tail(&prep.spec.console, 30));
            }
            ctx.out.progress(format!("      the VM's kernel panicked while booting ({panicked}); it restarts by itself (panic=10)"));
        }
        match Session::connect(&target, &opts).await {
            Ok(s) => {
                s.close().await;
                ctx.out.progress(format!("      SSH answers with the pinned host key after {} s", start.elapsed().as_secs()));
                return Ok(());
            }
            Err(e) if e.chain().any(|c| c.downcast_ref::<crate::ssh::HostKeyMismatch>().is_some()) => return Err(e),
            Err(e) => last = format!("{e:#}"),
        }
        if start.elapsed() > timeout {
            bail!(
                "the VM did not answer on SSH within {} s (last: {last}); its serial console ends:\n{}",
                timeout.as_secs(),
                qemu::console_tail(&prep.spec.console, 30)
            );
        }
        if said.elapsed() >= Duration::from_secs(30) {
            ctx.out.progress(format!("      booting ({} s)...", start.elapsed().as_secs()));
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// After a failed create: stop the VM this run started and remove what it made. Returns a
/// sentence for the error message.
fn undo(ctx: &Ctx, trial: &Trial, existed: bool) -> String {
    let mut done = Vec::new();
    if let Some(vm) = trial.vm.as_ref().filter(|v| v.pid > 0) {
        match qemu::stop(vm.pid, &vm.qmp, Duration::from_secs(5)) {
            Ok(how) => done.push(format!("VM {how}")),
            Err(e) => return format!("could not stop VM process {}: {e:#}; `munero-infra destroy {} --yes` stops it", vm.pid, trial.name),
        }
    }
    if existed {
        if let Some(vm) = &trial.vm {
            let _ = std::fs::remove_file(vm.dir.join("seed.iso"));
        }
        done.push("the earlier record is kept".into());
    } else {
        let _ = ctx.store.remove(&trial.name);
        done.push("nothing is left behind".into());
    }
    done.join("; ")
}

pub(super) async fn destroy(ctx: &Ctx, steps: &[DestroyStep]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] {}", i + 1, crate::plan::headline(step)));
        match step {
            DestroyStep::StopVm { pid, qmp } => {
                let how = qemu::stop(*pid, qmp, Duration::from_secs(30))?;
                done.push(format!("VM process {pid} {how}"));
            }
            DestroyStep::RemoveVmFiles { dir } => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
                }
                done.push(format!("removed {}", dir.display()));
            }
            DestroyStep::ForgetLocal { trial, .. } => {
                ctx.store.remove(trial)?;
                done.push("local record forgotten".into());
            }
            other => return Err(anyhow!("a local VM has no destroy step {other}")),
        }
    }
    Ok(done)
}
