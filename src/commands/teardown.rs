//! `teardown --expired`: on every provider with credentials, destroy the trials whose
//! `munero-expires` is before `--at` (default now), including orphaned firewalls and keys of
//! expired trials without a server. Never touches a resource without `munero-managed=true`.
//! Keeps going when one trial fails; exit 1 if any failed. Trials on hosts registered with
//! `--provider ssh` are found from their local records and wiped, then forgotten.

use std::collections::BTreeMap;

use anyhow::Result;
use munero_provider::{is_managed, Provider, Resource, ResourceKind};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::cli::{DestroyArgs, TeardownArgs};
use crate::commands::destroy::{destroy_plan, execute_steps};
use crate::commands::rfc3339;
use crate::error::usage;
use crate::output::Report;
use crate::plan::{self, Step};
use crate::trial::Trial;
use crate::{providers, ssh_provider, validate, Ctx};

/// One trial found at a provider.
#[derive(Debug, Default)]
struct Found {
    resources: Vec<Resource>,
    has_server: bool,
    /// Its server's expiry label, or for orphans the earliest over its resources (a missing or
    /// garbled label never counts as expired).
    expires: Option<i64>,
}

/// Group every managed resource by trial.
async fn inventory(p: &dyn Provider) -> Result<BTreeMap<String, Found>> {
    let mut by: BTreeMap<String, Found> = BTreeMap::new();
    let servers = p.list_managed_servers().await?;
    let others = p.list_managed_resources().await?;
    let all = servers
        .into_iter()
        .map(|s| Resource { kind: ResourceKind::Server, id: s.id, name: s.name, labels: s.labels })
        .chain(others);
    for r in all {
        if !is_managed(&r.labels) {
            continue;
        }
        let Some(trial) = r.trial().map(str::to_string) else { continue };
        let f = by.entry(trial).or_default();
        if r.kind == ResourceKind::Server {
            f.has_server = true;
        }
        f.resources.push(r);
    }
    // A trial's expiry is its server's label; firewalls and keys decide only for orphans.
    for f in by.values_mut() {
        let servers: Vec<i64> = f.resources.iter().filter(|r| r.kind == ResourceKind::Server).filter_map(|r| r.expires()).collect();
        let any: Vec<i64> = f.resources.iter().filter_map(|r| r.expires()).collect();
        f.expires = if f.has_server { servers.into_iter().min() } else { any.into_iter().min() };
    }
    for f in by.values_mut() {
        f.resources.sort_by_key(|r| match r.kind {
            ResourceKind::Server => 0,
            ResourceKind::Firewall => 1,
            ResourceKind::SshKey => 2,
        });
    }
    Ok(by)
}

pub async fn run(ctx: &Ctx, args: &TeardownArgs) -> Result<Report> {
    let at = match &args.at {
        Some(s) => validate::at(s)?,
        None => ctx.now,
    };
    let at_unix = at.unix_timestamp();
    let provs = providers::configured()?;
    // Trials on hosts registered with `--provider ssh` have no provider API to list: their local
    // record is all there is, and an expired one still holds client data that must go.
    let ssh_records: Vec<Trial> =
        ctx.store.list().unwrap_or_default().into_iter().filter(|t| t.provider == "ssh").collect();
    if provs.is_empty() && ssh_records.is_empty() {
        return Err(usage("teardown needs provider credentials: set HCLOUD_TOKEN (no provider is configured)"));
    }
    let (ssh_expired, ssh_live): (Vec<Trial>, Vec<Trial>) =
        ssh_records.into_iter().partition(|t| t.expires_unix > 0 && t.expires_unix < at_unix);
    let mut plans: Vec<(usize, String, Vec<Step>)> = Vec::new();
    let mut kept = Vec::new();
    let mut failed = Vec::new();
    for (pi, p) in provs.iter().enumerate() {
        let inv = match inventory(p.as_ref()).await {
            Ok(i) => i,
            Err(e) => {
                ctx.out.progress(format!("error: listing {}: {e:#}", p.name()));
                failed.push(json!({"provider": p.name(), "trial": null, "error": format!("{e:#}")}));
                continue;
            }
        };
        // Local records of expired trials of which the provider holds nothing any more: forget them.
        if let Ok(records) = ctx.store.list() {
            for t in records {
                if t.provider == p.name() && t.expires_unix > 0 && t.expires_unix < at_unix && !inv.contains_key(&t.name) {
                    ctx.out.progress(format!("trial {}: expired, nothing left at {}; forgetting the local record", t.name, p.name()));
                    plans.push((pi, t.name.clone(), destroy_plan(ctx, p.name(), &t.name, &[], true)));
                }
            }
        }
        for (trial, f) in inv {
            match f.expires {
                Some(e) if e < at_unix => {
                    let local = ctx.store.load(&trial).ok().flatten().is_some_and(|t| t.provider == p.name());
                    let steps = destroy_plan(ctx, p.name(), &trial, &f.resources, local);
                    if !f.has_server {
                        ctx.out.progress(format!("trial {trial}: orphaned resources without a server, expired {}", rfc3339(e)));
                    }
                    plans.push((pi, trial, steps));
                }
                Some(e) => kept.push(json!({"provider": p.name(), "trial": trial, "expires": rfc3339(e), "expires_unix": e})),
                None => {
                    ctx.out.progress(format!("warning: trial {trial} has no readable munero-expires label; kept"));
                    kept.push(json!({"provider": p.name(), "trial": trial, "expires": null}));
                }
            }
        }
    }
    for t in &ssh_live {
        kept.push(json!({"provider": "ssh", "trial": t.name, "expires": t.expires, "expires_unix": t.expires_unix}));
    }
    let all_steps: Vec<&Step> = plans.iter().flat_map(|(_, _, s)| s.iter()).collect();
    let mut text = plan::render(&all_steps.iter().map(|s| (*s).clone()).collect::<Vec<_>>());
    for t in &ssh_expired {
        let host = t.ssh_host.as_deref().unwrap_or("its host");
        text.push_str(&format!(
            "{}destroy ssh trial {} (expired {}): wipe the client data on {host} and remove the stack when reachable, then forget it\n",
            if text.is_empty() || text.ends_with('\n') { "" } else { "\n" },
            t.name,
            t.expires
        ));
    }
    let mut expired: Vec<String> = plans.iter().map(|(_, t, _)| t.clone()).collect();
    expired.extend(ssh_expired.iter().map(|t| t.name.clone()));
    let at_s = at.format(&Rfc3339).unwrap_or_default();
    if args.dry_run {
        ctx.out.progress(format!(
            "Teardown of trials expired before {at_s} (dry run: nothing is deleted): {} to destroy, {} kept",
            expired.len(),
            kept.len()
        ));
        return Ok(Report::new(
            json!({"ok": true, "command": "teardown", "dry_run": true, "at": at_s, "expired": expired, "kept": kept,
                   "plan": all_steps, "plan_text": text}),
            if text.is_empty() { "Nothing has expired.".to_string() } else { text },
        ));
    }
    let mut destroyed = Vec::new();
    for (pi, trial, steps) in &plans {
        ctx.out.progress(format!("Destroying expired trial {trial} on {}", provs[*pi].name()));
        let locked = crate::lock::lock_trial(ctx.store.root(), trial, "teardown", |m| ctx.out.progress(m));
        match async { let _held = locked?; execute_steps(ctx, provs[*pi].as_ref(), steps).await }.await {
            Ok(_) => destroyed.push(trial.clone()),
            Err(e) => {
                ctx.out.progress(format!("error: trial {trial}: {e:#}; going on with the others"));
                failed.push(json!({"provider": provs[*pi].name(), "trial": trial, "error": format!("{e:#}")}));
            }
        }
    }
    for t in &ssh_expired {
        ctx.out.progress(format!("Destroying expired trial {} (ssh host)", t.name));
        let args = DestroyArgs { trial: t.name.clone(), yes: true, dry_run: false };
        let locked = crate::lock::lock_trial(ctx.store.root(), &t.name, "teardown", |m| ctx.out.progress(m));
        match async { let _held = locked?; ssh_provider::destroy(ctx, &args).await }.await {
            Ok(_) => destroyed.push(t.name.clone()),
            Err(e) => {
                ctx.out.progress(format!("error: trial {}: {e:#}; going on with the others", t.name));
                failed.push(json!({"provider": "ssh", "trial": t.name, "error": format!("{e:#}")}));
            }
        }
    }
    let ok = failed.is_empty();
    let human = format!(
        "Teardown at {at_s}: destroyed {} ({}), kept {}, failed {}",
        destroyed.len(),
        destroyed.join(", "),
        kept.len(),
        failed.len()
    );
    let mut r = Report::new(
        json!({"ok": ok, "command": "teardown", "dry_run": false, "at": at_s, "destroyed": destroyed,
               "kept": kept, "failed": failed, "plan": all_steps}),
        human,
    );
    if !ok {
        r.exit_code = 1;
    }
    Ok(r)
}
