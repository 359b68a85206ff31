//! The one lifecycle interface every kind of host implements (docker-machine's driver model):
//! a cloud creates a server behind a firewall, an existing host is registered and verified;
//! destroy deletes what the tool made, or wipes and forgets. Commands hold a `Box<dyn Host>`
//! and never ask which kind it is.

use std::any::Any;
use std::collections::BTreeSet;

use anyhow::Result;
use async_trait::async_trait;
use munero_provider::{PriceQuote, ProviderKind, Resource, ResourceKind, ServerInfo};
use serde_json::Value;

use crate::config::Config;
use crate::doctor::Finding;
use crate::ctx::Ctx;
use crate::output::Report;
use crate::plan::create::CreateStep;
use crate::plan::destroy::DestroyStep;
use crate::plan::snapshot::{RestoreStep, SnapshotStep};
use crate::receipt::{Gone, Sweep};
use crate::plan::teardown::TeardownStep;
use crate::resolve::{CreateRequest, Defaults};
use crate::trial::Trial;

/// A create, planned: the steps `--dry-run` prints and `create` walks, the record it will write,
/// what a dry run reports besides the steps, and the host's own prepared values (keys,
/// user-data), which only that host reads.
pub struct CreatePlan {
    pub trial: Trial,
    pub steps: Vec<CreateStep>,
    pub details: Value,
    pub notes: Vec<String>,
    pub prepared: Box<dyn Any + Send + Sync>,
}

/// A teardown, planned for one kind of host.
#[derive(Default)]
pub struct TeardownPlan {
    pub steps: Vec<TeardownStep>,
    pub expired: Vec<String>,
    pub kept: Vec<Value>,
    pub notes: Vec<String>,
}

/// What a teardown did.
#[derive(Default)]
pub struct TeardownOutcome {
    pub destroyed: Vec<String>,
    pub failed: Vec<Value>,
}

#[async_trait]
pub trait Host: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Whether hosts of this kind boot our cloud-init, whose ready marker deploy waits for.
    fn boots_our_cloud_init(&self) -> bool;

    /// Server types, image and location that flags and config do not override.
    fn defaults(&self, cfg: &Config) -> Defaults;

    /// Check what can be checked without changing anything and decide the steps.
    async fn plan_create(&self, ctx: &Ctx, req: &CreateRequest) -> Result<CreatePlan>;

    /// Walk the plan. A failure half-way removes what this run made.
    async fn create(&self, ctx: &Ctx, plan: CreatePlan) -> Result<Report>;

    /// The steps that remove the trial (`record` is the local one, when there is one).
    async fn plan_destroy(&self, ctx: &Ctx, trial: &str, record: Option<&Trial>) -> Result<Vec<DestroyStep>>;

    /// Walk destroy steps; stops at the first failure. Returns what was removed.
    async fn destroy(&self, ctx: &Ctx, steps: &[DestroyStep]) -> Result<Vec<String>>;

    /// The trials that expired before `at_unix`, as steps.
    async fn plan_teardown(&self, ctx: &Ctx, at_unix: i64) -> Result<TeardownPlan>;

    /// Walk teardown steps; one trial's failure does not stop the others.
    async fn teardown(&self, ctx: &Ctx, steps: &[TeardownStep]) -> TeardownOutcome;

    /// Servers this kind of host reports for `status` (None: the local records are all there is).
    async fn servers(&self, ctx: &Ctx) -> Result<Option<Vec<ServerInfo>>>;

    /// What a server of this type costs (`status`, `create --dry-run`): by default the dated
    /// table in `cost`, which knows nothing of hosts that are not rented by the hour.
    async fn price(&self, server_type: &str, _location: Option<&str>) -> Result<Option<PriceQuote>> {
        Ok(crate::cost::table_price(self.kind(), server_type))
    }

    /// `doctor`'s checks of what this kind of host needs (credentials, tools).
    async fn preflight(&self) -> Vec<Finding> {
        Vec::new()
    }

    /// The trial's resources whose `munero-expires` label `extend` moves (none for kinds whose
    /// record is all there is).
    async fn labelled(&self, _ctx: &Ctx, _trial: &str) -> Result<Vec<Resource>> {
        Ok(Vec::new())
    }

    /// Move those labels to `expires_unix`.
    async fn relabel(&self, _ctx: &Ctx, _resources: &[Resource], _expires_unix: i64) -> Result<()> {
        Ok(())
    }

    /// The steps of a provider snapshot of the trial's server, labelled like the trial.
    async fn plan_snapshot(&self, _ctx: &Ctx, _t: &Trial, _description: &str, _created_unix: i64) -> Result<Vec<SnapshotStep>> {
        Err(no_snapshots(self.kind()))
    }

    /// Take the snapshot; returns it.
    async fn snapshot(&self, _ctx: &Ctx, _steps: &[SnapshotStep]) -> Result<Resource> {
        Err(no_snapshots(self.kind()))
    }

    /// The steps that make the trial's server again from its latest snapshot.
    async fn plan_restore(&self, _ctx: &Ctx, _t: &Trial, _replace: bool) -> Result<Vec<RestoreStep>> {
        Err(no_snapshots(self.kind()))
    }

    /// Walk them; updates the record. Returns what was done.
    async fn restore(&self, _ctx: &Ctx, _t: &mut Trial, _steps: &[RestoreStep]) -> Result<Vec<String>> {
        Err(no_snapshots(self.kind()))
    }

    /// Every managed snapshot (status lists them by trial).
    async fn snapshots(&self, _ctx: &Ctx) -> Result<Vec<Resource>> {
        Ok(Vec::new())
    }

    /// The receipt's proof: each resource looked up afresh at the provider (after deletion).
    async fn confirm(&self, _ctx: &Ctx, _gone: &mut [Gone]) {}

    /// The orphan sweep: every labelled resource type of the trial listed; whatever is not in
    /// `known` (`kind:id`) and not of a `keep` kind is deleted, looked up again and reported.
    async fn sweep(&self, _ctx: &Ctx, _trial: &str, _known: &BTreeSet<String>, _keep: &[ResourceKind]) -> Result<Sweep> {
        Ok(Sweep { note: Some(format!("a {} host has no provider API: nothing labelled to sweep", self.kind())), ..Default::default() })
    }
}

fn no_snapshots(kind: ProviderKind) -> anyhow::Error {
    crate::error::usage(format!(
        "a {kind} trial has no provider snapshots: snapshot and restore are for trials on a cloud (hetzner, aws)"
    ))
}

/// Teardown for kinds of host without a provider API to list: their local records find them.
pub async fn plan_teardown_by_records(h: &dyn Host, ctx: &Ctx, at_unix: i64) -> Result<TeardownPlan> {
    let mut out = TeardownPlan::default();
    for t in ctx.store.list()?.into_iter().filter(|t| t.provider == h.kind()) {
        if t.expires_unix > 0 && t.expires_unix < at_unix {
            let steps = h.plan_destroy(ctx, &t.name, Some(&t)).await?;
            out.expired.push(t.name.clone());
            out.steps.push(TeardownStep::DestroyTrial { provider: h.kind(), trial: t.name, steps });
        } else {
            out.kept.push(serde_json::json!({"provider": h.kind(), "trial": t.name, "expires": t.expires, "expires_unix": t.expires_unix}));
        }
    }
    Ok(out)
}

/// Each trial's destroy steps under its lock; one trial's failure does not stop the others.
pub async fn teardown_each(h: &dyn Host, ctx: &Ctx, steps: &[TeardownStep]) -> TeardownOutcome {
    let mut out = TeardownOutcome::default();
    for step in steps {
        let TeardownStep::DestroyTrial { trial, steps, .. } = step else { continue };
        ctx.out.progress(format!("Destroying expired trial {trial} ({})", h.kind()));
        let r = match crate::lock::lock_trial(ctx.store.root(), trial, "teardown", |m| ctx.out.progress(m)) {
            Ok(_held) => h.destroy(ctx, steps).await,
            Err(e) => Err(e),
        };
        match r {
            Ok(_) => out.destroyed.push(trial.clone()),
            Err(e) => {
                ctx.out.progress(format!("error: trial {trial}: {e:#}; going on with the others"));
                out.failed.push(serde_json::json!({"provider": h.kind(), "trial": trial, "error": format!("{e:#}")}));
            }
        }
    }
    out
}
