//! The one lifecycle interface every kind of host implements (docker-machine's driver model):
//! a cloud creates a server behind a firewall, an existing host is registered and verified;
//! destroy deletes what the tool made, or wipes and forgets. Commands hold a `Box<dyn Host>`
//! and never ask which kind it is.

use std::any::Any;

use anyhow::Result;
use async_trait::async_trait;
use munero_provider::{PriceQuote, ProviderKind, Resource, ServerInfo};
use serde_json::Value;

use crate::config::Config;
use crate::doctor::Finding;
use crate::ctx::Ctx;
use crate::output::Report;
use crate::plan::create::CreateStep;
use crate::plan::destroy::DestroyStep;
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
