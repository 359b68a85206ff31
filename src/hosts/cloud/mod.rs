//! A host at a cloud with an API behind `munero_provider::Provider` (Hetzner; AWS and others
//! plug in the same way): labelled resources that create makes and destroy deletes.

pub mod create;
pub mod dns;
pub mod snapshot;
pub mod sweep;
pub mod teardown;

use std::collections::BTreeSet;

use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use munero_provider::{PriceQuote, Provider, ProviderKind, Resource, ResourceKind, ServerInfo};


use crate::config::Config;
use crate::ctx::Ctx;
use crate::doctor::Finding;
use crate::error::usage;
use crate::hosts::lifecycle::{CreatePlan, Host, TeardownOutcome, TeardownPlan};
use crate::hosts::resources;
use crate::output::Report;
use crate::plan::destroy::DestroyStep;
use crate::plan::snapshot::{RestoreStep, SnapshotStep};
use crate::receipt::{Gone, Sweep};
use crate::plan::teardown::TeardownStep;
use crate::resolve::{CreateRequest, Defaults};
use crate::trial::Trial;

pub struct CloudHost {
    kind: ProviderKind,
    /// None for a dry run without credentials: plans come from local records and defaults.
    api: Option<Box<dyn Provider>>,
    defaults: fn(&Config) -> Defaults,
    /// What holds the credentials ("HCLOUD_TOKEN", "AWS credentials"), named in notes.
    credential: &'static str,
    /// The error when a command needs the API and has no credentials: what to set, and how.
    missing: &'static str,
}

impl CloudHost {
    pub fn new(
        kind: ProviderKind,
        api: Option<Box<dyn Provider>>,
        defaults: fn(&Config) -> Defaults,
        credential: &'static str,
        missing: &'static str,
    ) -> Self {
        CloudHost { kind, api, defaults, credential, missing }
    }

    fn api(&self) -> Result<&dyn Provider> {
        self.api
            .as_deref()
            .ok_or_else(|| usage(self.missing))
    }
}

/// Hetzner Cloud has no GPU server types.
pub fn hetzner_defaults(cfg: &Config) -> Defaults {
    Defaults {
        cpu: cfg.hetzner.size_cpu.clone(),
        gpu: Err("--size gpu is not offered on Hetzner Cloud (no GPU server types); use --provider aws --size gpu, or --size cpu".into()),
        image: cfg.hetzner.image.clone(),
        location: cfg.hetzner.location.clone(),
        subnets: false,
        firewall: true,
        docker_source: crate::cloudinit::DockerSource::Upstream,
        user_data_limit: crate::cloudinit::HETZNER_LIMIT,
        user_data_gzip: false,
        public_address: true,
    }
}

/// EC2: a c6i.2xlarge for cpu, a g4dn.xlarge (one T4) for gpu, the newest Ubuntu 24.04 AMI
/// looked up at create time, the region's default VPC unless `--subnet` (no `--location`
/// default: AWS_REGION or the profile's region).
pub fn aws_defaults(_cfg: &Config) -> Defaults {
    Defaults {
        cpu: munero_aws::CPU_TYPE.into(),
        gpu: Ok(munero_aws::GPU_TYPE.into()),
        image: munero_aws::DEFAULT_IMAGE.into(),
        location: None,
        subnets: true,
        firewall: true,
        docker_source: crate::cloudinit::DockerSource::Upstream,
        user_data_limit: crate::cloudinit::EC2_LIMIT,
        user_data_gzip: true,
        public_address: true,
    }
}

/// The resource ids a local record remembers (for a dry run without credentials).
fn record_resources(t: &Trial) -> Vec<Resource> {
    let mk = |kind, id: &Option<String>, name: String| id.clone().map(|id| Resource { kind, id, name, labels: Default::default() });
    [
        mk(ResourceKind::Server, &t.resources.server_id, t.name.clone()),
        mk(ResourceKind::Firewall, &t.resources.firewall_id, t.resource_name()),
        mk(ResourceKind::SshKey, &t.resources.ssh_key_id, t.resource_name()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[async_trait]
impl Host for CloudHost {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn boots_our_cloud_init(&self) -> bool {
        true
    }

    fn defaults(&self, cfg: &Config) -> Defaults {
        (self.defaults)(cfg)
    }

    async fn plan_create(&self, ctx: &Ctx, req: &CreateRequest) -> Result<CreatePlan> {
        let d = self.defaults(&ctx.config);
        create::plan(ctx, self.api.as_deref(), req, d.user_data_limit, d.user_data_gzip).await
    }

    async fn create(&self, ctx: &Ctx, plan: CreatePlan) -> Result<Report> {
        create::execute(ctx, self.api()?, plan).await
    }

    async fn plan_destroy(&self, ctx: &Ctx, trial: &str, record: Option<&Trial>) -> Result<Vec<DestroyStep>> {
        let found = match &self.api {
            Some(p) => {
                let all = resources::trial_resources(p.as_ref(), trial).await?;
                match record {
                    Some(t) => dns::only_ours(ctx, p.as_ref(), t, all).await?,
                    None => all,
                }
            }
            None => {
                ctx.out.progress(format!(
                    "note: no {}: the plan lists the ids of the local record, not checked at the provider",
                    self.credential
                ));
                record.map(record_resources).unwrap_or_default()
            }
        };
        if record.is_none() && found.is_empty() {
            return Err(usage(format!(
                "no trial named {trial}: no local record in {} and nothing labelled munero-trial={trial} at {}",
                ctx.store.root().display(),
                self.kind
            )));
        }
        let mut steps: Vec<DestroyStep> = found.iter().map(|r| DestroyStep::delete(self.kind, trial, r)).collect();
        steps.push(DestroyStep::VerifyGone { provider: self.kind, trial: trial.to_string(), keep: Vec::new() });
        if record.is_some() {
            steps.push(DestroyStep::ForgetLocal { trial: trial.to_string(), path: ctx.store.trial_dir(trial) });
        }
        Ok(steps)
    }

    async fn destroy(&self, ctx: &Ctx, steps: &[DestroyStep]) -> Result<Vec<String>> {
        let p = self.api()?;
        let mut done = Vec::new();
        let total = steps.len();
        for (i, step) in steps.iter().enumerate() {
            ctx.out.progress(format!("[{}/{total}] {step}", i + 1));
            match step {
                DestroyStep::DeleteResource { kind, id, name, .. } => {
                    p.delete_resource(*kind, id).await.with_context(|| format!("deleting {kind} {name} ({id})"))?;
                    done.push(format!("{kind} {name} ({id})"));
                }
                DestroyStep::VerifyGone { trial, provider, keep } => {
                    let mut left = resources::trial_resources(p, trial).await?;
                    left.retain(|r| !keep.contains(&r.kind));
                    if !left.is_empty() {
                        let names: Vec<String> = left.iter().map(|r| format!("{} {} ({})", r.kind, r.name, r.id)).collect();
                        return Err(anyhow!("{provider} still holds resources of trial {trial}: {}", names.join(", ")));
                    }
                }
                DestroyStep::ForgetLocal { trial, .. } => {
                    ctx.store.remove(trial)?;
                    done.push(format!("local record of {trial}"));
                }
                DestroyStep::OnHost { .. } | DestroyStep::StopVm { .. } | DestroyStep::RemoveVmFiles { .. } => {
                    return Err(anyhow!("a {} trial has no step {step}", self.kind))
                }
            }
        }
        Ok(done)
    }

    async fn plan_teardown(&self, ctx: &Ctx, at_unix: i64) -> Result<TeardownPlan> {
        teardown::plan(ctx, self.kind, self.api()?, at_unix).await
    }

    async fn teardown(&self, ctx: &Ctx, steps: &[TeardownStep]) -> TeardownOutcome {
        match self.api() {
            Ok(p) => teardown::execute(ctx, self.kind, p, steps).await,
            Err(e) => TeardownOutcome {
                failed: vec![serde_json::json!({"provider": self.kind, "trial": null, "error": format!("{e:#}")})],
                ..Default::default()
            },
        }
    }

    async fn servers(&self, _ctx: &Ctx) -> Result<Option<Vec<ServerInfo>>> {
        Ok(Some(self.api()?.list_managed_servers().await?))
    }

    async fn price(&self, server_type: &str, location: Option<&str>) -> Result<Option<PriceQuote>> {
        match &self.api {
            Some(api) => Ok(api.price(server_type, location).await?.or_else(|| crate::cost::table_price(self.kind, server_type))),
            None => Ok(crate::cost::table_price(self.kind, server_type)),
        }
    }

    async fn preflight(&self) -> Vec<Finding> {
        let name = format!("{} credentials", self.kind);
        let Some(api) = &self.api else {
            return vec![Finding::missing(&name, format!("{} is not set: export an API token of the {} project", self.credential, self.kind))];
        };
        match api.check_access().await {
            Ok(date) => {
                let mut out = vec![Finding::ok(&name, format!("{} accepted (a read-only API call answered)", self.credential))];
                out.push(crate::doctor::clock_skew(&format!("{} API", self.kind), date));
                out
            }
            Err(e) => vec![Finding::missing(&name, format!("the {} API refused a read-only call: {e}", self.kind))],
        }
    }

    async fn labelled(&self, _ctx: &Ctx, trial: &str) -> Result<Vec<Resource>> {
        resources::trial_resources(self.api()?, trial).await
    }

    async fn plan_snapshot(&self, _ctx: &Ctx, t: &Trial, description: &str, created_unix: i64) -> Result<Vec<SnapshotStep>> {
        snapshot::plan(self.api()?, self.kind, t, description, created_unix).await
    }

    async fn snapshot(&self, ctx: &Ctx, steps: &[SnapshotStep]) -> Result<Resource> {
        snapshot::take(ctx, self.api()?, steps).await
    }

    async fn plan_restore(&self, ctx: &Ctx, t: &Trial, replace: bool) -> Result<Vec<RestoreStep>> {
        snapshot::plan_restore(ctx, self.api()?, self.kind, t, replace).await
    }

    async fn restore(&self, ctx: &Ctx, t: &mut Trial, steps: &[RestoreStep]) -> Result<Vec<String>> {
        snapshot::restore(ctx, self.api()?, t, steps).await
    }

    async fn snapshots(&self, _ctx: &Ctx) -> Result<Vec<Resource>> {
        let all = self.api()?.list_managed_resources().await?;
        Ok(all.into_iter().filter(|r| r.kind == ResourceKind::Snapshot).collect())
    }

    async fn confirm(&self, _ctx: &Ctx, gone: &mut [Gone]) {
        match self.api() {
            Ok(p) => sweep::confirm(p, gone).await,
            Err(e) => gone.iter_mut().for_each(|g| g.error = Some(format!("{e:#}"))),
        }
    }

    async fn sweep(&self, ctx: &Ctx, trial: &str, known: &BTreeSet<String>, keep: &[ResourceKind]) -> Result<Sweep> {
        sweep::sweep(ctx, self.api()?, self.kind, trial, known, keep).await
    }

    async fn relabel(&self, _ctx: &Ctx, resources: &[Resource], expires_unix: i64) -> Result<()> {
        let p = self.api()?;
        for r in resources {
            let mut labels = r.labels.clone();
            labels.insert(munero_provider::LABEL_EXPIRES.to_string(), expires_unix.to_string());
            p.set_labels(r.kind, &r.id, &labels).await.with_context(|| format!("moving the expiry label of {} {}", r.kind, r.name))?;
        }
        Ok(())
    }
}
