//! Teardown at a cloud, at scale: one listing per resource type for every trial, deletions of a
//! type across all expired trials with a bounded number in flight, one listing per type to
//! verify. About 4 API requests per trial plus a constant, whatever the number of trials.

use std::collections::{BTreeMap, BTreeSet};

use munero_provider::{Provider, ProviderKind, Resource, ResourceKind};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::hosts::lifecycle::{TeardownOutcome, TeardownPlan};
use crate::hosts::resources;
use crate::lock;
use crate::plan::teardown::TeardownStep;
use crate::timefmt::rfc3339;

/// Deletions in flight at once: well inside the API's rate limit (3,600 an hour, refilled at
/// one a second), while hiding the latency of each request.
pub const IN_FLIGHT: usize = 8;

/// A trial's expiry: its server's label; firewalls and keys decide only for orphans (a missing
/// or garbled label never counts as expired).
fn expiry(rs: &[Resource]) -> Option<i64> {
    let servers: Vec<i64> = rs.iter().filter(|r| r.kind == ResourceKind::Server).filter_map(Resource::expires).collect();
    if rs.iter().any(|r| r.kind == ResourceKind::Server) {
        servers.into_iter().min()
    } else {
        rs.iter().filter_map(Resource::expires).min()
    }
}

pub async fn plan(ctx: &Ctx, kind: ProviderKind, p: &dyn Provider, at_unix: i64) -> anyhow::Result<TeardownPlan> {
    let all = resources::managed(p).await?;
    let mut by_trial: BTreeMap<String, Vec<Resource>> = BTreeMap::new();
    for r in all {
        if let Some(t) = r.trial().map(str::to_string) {
            by_trial.entry(t).or_default().push(r);
        }
    }
    let mut out = TeardownPlan::default();
    let mut doomed: Vec<Resource> = Vec::new();
    for (trial, rs) in &by_trial {
        match expiry(rs) {
            Some(e) if e < at_unix => {
                if !rs.iter().any(|r| r.kind == ResourceKind::Server) {
                    out.notes.push(format!("trial {trial}: orphaned resources without a server, expired {}", rfc3339(e)));
                }
                out.expired.push(trial.clone());
                doomed.extend(rs.iter().cloned());
            }
            Some(e) => out.kept.push(json!({"provider": kind, "trial": trial, "expires": rfc3339(e), "expires_unix": e})),
            None => {
                out.notes.push(format!("warning: trial {trial} has no readable munero-expires label; kept"));
                out.kept.push(json!({"provider": kind, "trial": trial, "expires": null}));
            }
        }
    }
    // Local records of expired trials of which the provider holds nothing any more: forget them.
    let mut forget: Vec<String> = Vec::new();
    for t in ctx.store.list().unwrap_or_default() {
        if t.provider != kind || t.expires_unix <= 0 || t.expires_unix >= at_unix {
            continue;
        }
        if !by_trial.contains_key(&t.name) {
            out.notes.push(format!("trial {}: expired, nothing left at {kind}; forgetting the local record", t.name));
            out.expired.push(t.name.clone());
        }
        forget.push(t.name);
    }
    let mut kinds = ResourceKind::ALL;
    kinds.sort_by_key(|k| resources::deletion_rank(*k));
    for k in kinds {
        let of_kind: Vec<Resource> = doomed.iter().filter(|r| r.kind == k).cloned().collect();
        if !of_kind.is_empty() {
            out.steps.push(TeardownStep::DeleteAll { provider: kind, kind: k, resources: of_kind, in_flight: IN_FLIGHT });
        }
    }
    let listed: Vec<String> = out.expired.iter().filter(|t| by_trial.contains_key(*t)).cloned().collect();
    if !listed.is_empty() {
        out.steps.push(TeardownStep::VerifyGone { provider: kind, trials: listed, keep: Vec::new() });
    }
    if !forget.is_empty() {
        out.steps.push(TeardownStep::ForgetLocal { trials: forget, root: ctx.store.root().to_path_buf() });
    }
    Ok(out)
}

pub async fn execute(ctx: &Ctx, kind: ProviderKind, p: &dyn Provider, steps: &[TeardownStep]) -> TeardownOutcome {
    // trial -> first error; a trial that failed keeps its later resources and its record.
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    // Each trial's lock, as for destroy: a deploy or create of it still running goes first, and a
    // trial whose lock cannot be had is left for the next run.
    let mut held = Vec::new();
    for t in trials_in(steps) {
        match lock::lock_trial(ctx.store.root(), &t, "teardown", |m| ctx.out.progress(m)) {
            Ok(l) => held.push(l),
            Err(e) => {
                ctx.out.progress(format!("error: trial {t}: {e:#}; going on with the others"));
                failed.insert(t, format!("{e:#}"));
            }
        }
    }
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] {}", i + 1, crate::plan::headline(step)));
        match step {
            TeardownStep::DeleteAll { resources, in_flight, .. } => {
                let todo: Vec<Resource> =
                    resources.iter().filter(|r| !failed.contains_key(r.trial().unwrap_or_default())).cloned().collect();
                let results = p.delete_listed(&todo, *in_flight).await;
                for (r, res) in todo.iter().zip(results) {
                    let trial = r.trial().unwrap_or_default().to_string();
                    touched.insert(trial.clone());
                    if let Err(e) = res {
                        ctx.out.progress(format!("error: trial {trial}: deleting {} {} ({}): {e}; going on with the others", r.kind, r.name, r.id));
                        failed.entry(trial).or_insert_with(|| format!("deleting {} {} ({}): {e}", r.kind, r.name, r.id));
                    }
                }
            }
            TeardownStep::VerifyGone { trials, keep, .. } => match resources::managed(p).await {
                Ok(left) => {
                    for t in trials {
                        let mut mine = resources::of_trial(&left, t);
                        mine.retain(|r| !keep.contains(&r.kind));
                        if !mine.is_empty() && !failed.contains_key(t) {
                            let names: Vec<String> = mine.iter().map(|r| format!("{} {} ({})", r.kind, r.name, r.id)).collect();
                            failed.insert(t.clone(), format!("{kind} still holds {}", names.join(", ")));
                        }
                    }
                }
                Err(e) => {
                    for t in trials {
                        failed.entry(t.clone()).or_insert_with(|| format!("verifying: {e:#}"));
                    }
                }
            },
            TeardownStep::ForgetLocal { trials, .. } => {
                let ok: Vec<&String> = trials.iter().filter(|t| !failed.contains_key(*t)).collect();
                for t in ok {
                    if let Err(e) = ctx.store.remove(t) {
                        failed.insert(t.clone(), format!("removing the local record: {e:#}"));
                    }
                    touched.insert(t.clone());
                }
            }
            TeardownStep::DestroyTrial { trial, .. } => {
                failed.insert(trial.clone(), format!("a {kind} teardown has no step for a host without an API"));
            }
        }
    }
    drop(held);
    let destroyed = touched.into_iter().filter(|t| !failed.contains_key(t)).collect();
    let failed: Vec<Value> =
        failed.into_iter().map(|(t, e)| json!({"provider": kind, "trial": t, "error": e})).collect();
    TeardownOutcome { destroyed, failed }
}

/// Every trial a teardown plan touches.
fn trials_in(steps: &[TeardownStep]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in steps {
        match s {
            TeardownStep::DeleteAll { resources, .. } => out.extend(resources.iter().filter_map(|r| r.trial().map(str::to_string))),
            TeardownStep::ForgetLocal { trials, .. } | TeardownStep::VerifyGone { trials, .. } => out.extend(trials.iter().cloned()),
            TeardownStep::DestroyTrial { trial, .. } => {
                out.insert(trial.clone());
            }
        }
    }
    out
}
