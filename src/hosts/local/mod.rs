//! A VM on the operator's own machine (QEMU): the rehearsal of a trial before money is spent or a
//! client sees it. The same cloud-init as on the clouds on a NoCloud seed, the injected host key
//! pinned from the first connection, ports forwarded on 127.0.0.1 only.

pub mod image;
pub mod qemu;
mod run;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use async_trait::async_trait;
use munero_provider::{trial_labels, ProviderKind, ServerInfo};
use serde_json::json;

use crate::cloudinit::DockerSource;
use crate::config::Config;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::hosts::lifecycle::{plan_teardown_by_records, teardown_each, CreatePlan, Host, TeardownOutcome, TeardownPlan};
use crate::hosts::provision::{self, TrialKeys, UserData};
use crate::output::Report;
use crate::plan::create::CreateStep;
use crate::plan::destroy::DestroyStep;
use crate::plan::teardown::TeardownStep;
use crate::resolve::{CreateRequest, Defaults};
use crate::trial::{self, LocalVm, Trial};

use qemu::VmSpec;

/// The user-data a NoCloud seed carries comfortably.
pub const USER_DATA_LIMIT: usize = 64 * 1024;
/// Default disk of a trial VM (sparse: only what is written takes space).
pub const DISK_GB: u32 = 40;

pub struct LocalHost;

/// What the steps need besides the record.
struct Prepared {
    keys: TrialKeys,
    user_data: String,
    source: image::Source,
    spec: VmSpec,
    seed_dir: PathBuf,
    instance_id: String,
}

/// Programs the local provider runs, and the Debian package each comes in.
const TOOLS: &[(&str, &str)] = &[("qemu-system-x86_64", "qemu-system-x86"), ("qemu-img", "qemu-utils"), ("genisoimage", "genisoimage")];

fn missing_tools() -> Vec<&'static str> {
    TOOLS.iter().filter(|(bin, _)| !on_path(bin)).map(|(_, pkg)| *pkg).collect()
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// The trial's VM directory (inside its record directory, so forgetting the trial removes it).
pub fn vm_dir(ctx: &Ctx, trial: &str) -> PathBuf {
    ctx.store.trial_dir(trial).join("vm")
}

#[async_trait]
impl Host for LocalHost {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn boots_our_cloud_init(&self) -> bool {
        true
    }

    fn defaults(&self, _cfg: &Config) -> Defaults {
        Defaults {
            cpu: "2x4".into(),
            gpu: Err("--size gpu is not offered by the local provider (no GPU passthrough); use --size cpu or <vcpus>x<GiB>".into()),
            image: String::new(),
            location: None,
            subnets: false,
            // Nothing but this machine reaches the forwards on 127.0.0.1.
            firewall: false,
            // Docker's own repository may be out of reach from a rehearsal machine.
            docker_source: DockerSource::Distro,
            user_data_limit: USER_DATA_LIMIT,
            user_data_gzip: false,
            public_address: false,
        }
    }

    async fn plan_create(&self, ctx: &Ctx, req: &CreateRequest) -> Result<CreatePlan> {
        let missing = missing_tools();
        if !missing.is_empty() {
            return Err(usage(format!(
                "--provider local needs QEMU on this machine: install {} (e.g. `apt-get install {}`)",
                missing.join(", "),
                missing.join(" ")
            )));
        }
        let (cpus, memory_mib) = qemu::parse_size(&req.server_type).ok_or_else(|| {
            usage(format!("--size {}: use cpu, or <vcpus>x<GiB> such as 2x4 or 4x8", req.server_type))
        })?;
        let source = image::Source::parse(&req.image)?;
        let name = req.name.clone();
        let dir = ctx.store.trial_dir(&name);
        let vm = vm_dir(ctx, &name);
        let keys = TrialKeys::for_request(ctx, req)?;
        if let Some(v) = req.prior.as_ref().and_then(|t| t.vm.as_ref()).filter(|v| qemu::alive(v.pid)) {
            return Err(usage(format!(
                "trial {name} already runs as VM process {} (see `munero-infra status`); destroy it first to make it again",
                v.pid
            )));
        }
        let UserData { text: user_data, redacted: user_data_redacted } =
            provision::user_data(req, ProviderKind::Local, &keys, USER_DATA_LIMIT, false)?;

        let forwards = match req.prior.as_ref().filter(|t| !t.forwards.is_empty()) {
            Some(t) => t.forwards.iter().filter_map(|(g, h)| Some((g.parse().ok()?, *h))).collect(),
            None => qemu::free_ports(&name, qemu::FORWARDED)?,
        };
        let accel = run::choose_accel(&source.boot());
        let spec = VmSpec {
            name: format!("munero-{name}"),
            cpus,
            memory_mib,
            accel: accel.clone(),
            overlay: vm.join("disk.qcow2"),
            seed: vm.join("seed.iso"),
            boot: source.boot(),
            forwards: forwards.clone(),
            qmp: vm.join("qmp.sock"),
            console: vm.join("console.log"),
            pidfile: vm.join("qemu.pid"),
        };
        let seed_dir = vm.join("seed");
        let overlay_exists = spec.overlay.is_file();
        let boot_timeout_s = std::env::var("MUNERO_VM_BOOT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(900);
        let ssh_port = forwards.get(&22).copied().unwrap_or(22);

        let mut t = provision::record(ctx, req, &keys);
        t.image = source.describe();
        t.state = "creating".into();
        t.ipv4 = Some("127.0.0.1".into());
        t.ssh_port = Some(ssh_port);
        t.forwards = forwards.iter().map(|(g, h)| (g.to_string(), *h)).collect();
        t.state = "creating".into();
        t.vm = Some(LocalVm {
            pid: 0,
            dir: vm.clone(),
            qmp: spec.qmp.clone(),
            console: spec.console.clone(),
            accel: accel.clone(),
            cpus,
            memory_mib,
            disk_gb: DISK_GB,
            base: source.disk(),
        });

        let mut steps: Vec<CreateStep> = keys.steps(ctx, &name).into();
        steps.push(CreateStep::PrepareImage { source: source.describe(), disk: source.disk() });
        if !overlay_exists {
            steps.push(CreateStep::RunLocal {
                what: format!("thin overlay disk of {DISK_GB} GB (sparse)"),
                argv: qemu::overlay_argv(&source.disk(), &spec.overlay, DISK_GB),
            });
        }
        steps.push(CreateStep::RunLocal {
            what: format!("NoCloud seed with the rendered user-data ({} bytes)", user_data.len()),
            argv: qemu::seed_argv(&spec.seed, &seed_dir),
        });
        steps.push(CreateStep::BootVm { accel: accel.clone(), argv: qemu::run_argv(&spec) });
        steps.push(CreateStep::WaitSsh { target: format!("{}@127.0.0.1:{ssh_port}", trial::DEPLOY_USER), timeout_s: boot_timeout_s });
        steps.push(CreateStep::RecordTrial { path: dir.join(crate::store::RECORD_FILE) });

        let details = json!({
            "server_type": t.server_type, "cpus": cpus, "memory_mib": memory_mib, "accel": accel, "image": t.image,
            "forwards": t.forwards, "expires": t.expires, "expires_unix": t.expires_unix,
            "user_data_bytes": user_data.len(), "user_data_limit": USER_DATA_LIMIT, "user_data": user_data_redacted,
        });
        let mut notes = vec![];
        if accel == "tcg" {
            notes.push(format!(
                "note: the VM runs under software emulation (TCG){}; boot and cloud-init take minutes",
                if Path::new("/dev/kvm").exists() { ": /dev/kvm is there but did not boot a kernel at full speed" } else { "" }
            ));
        }
        let instance_id = format!("munero-{name}-{}", t.created_unix);
        let prepared = Prepared { keys, user_data, source, spec, seed_dir, instance_id };
        Ok(CreatePlan { trial: t, steps, details, notes, prepared: Box::new(prepared) })
    }

    async fn create(&self, ctx: &Ctx, plan: CreatePlan) -> Result<Report> {
        let prep = plan.prepared.downcast::<Prepared>().map_err(|_| anyhow!("a local VM needs its own plan"))?;
        run::create(ctx, plan.trial, plan.steps, *prep).await
    }

    async fn plan_destroy(&self, ctx: &Ctx, trial: &str, record: Option<&Trial>) -> Result<Vec<DestroyStep>> {
        let t = record.ok_or_else(|| usage(format!("no trial named {trial} in {}", ctx.store.root().display())))?;
        let mut steps = Vec::new();
        if let Some(vm) = &t.vm {
            steps.push(DestroyStep::StopVm { pid: vm.pid, qmp: vm.qmp.clone() });
            steps.push(DestroyStep::RemoveVmFiles { dir: vm.dir.clone() });
        }
        steps.push(DestroyStep::ForgetLocal { trial: trial.to_string(), path: ctx.store.trial_dir(trial) });
        Ok(steps)
    }

    async fn destroy(&self, ctx: &Ctx, steps: &[DestroyStep]) -> Result<Vec<String>> {
        run::destroy(ctx, steps).await
    }

    async fn plan_teardown(&self, ctx: &Ctx, at_unix: i64) -> Result<TeardownPlan> {
        plan_teardown_by_records(self, ctx, at_unix).await
    }

    async fn teardown(&self, ctx: &Ctx, steps: &[TeardownStep]) -> TeardownOutcome {
        teardown_each(self, ctx, steps).await
    }

    async fn servers(&self, ctx: &Ctx) -> Result<Option<Vec<ServerInfo>>> {
        Ok(Some(ctx.store.list()?.iter().filter(|t| t.provider == ProviderKind::Local).map(server_of).collect()))
    }
}

/// A local trial as `status` shows it: its VM process decides the state.
pub fn server_of(t: &Trial) -> ServerInfo {
    let running = t.vm.as_ref().is_some_and(|v| qemu::alive(v.pid));
    ServerInfo {
        id: t.vm.as_ref().map(|v| v.pid.to_string()).unwrap_or_default(),
        name: t.name.clone(),
        ipv4: t.ipv4.clone(),
        ipv6: None,
        status: if running { "running".into() } else { "off".into() },
        labels: trial_labels(&t.name, t.expires_unix),
        server_type: t.server_type.clone(),
        location: Some("this machine".into()),
    }
}
