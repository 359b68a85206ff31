//! `destroy <TRIAL>`: delete the trial's server, then firewall, then SSH key (only resources
//! labelled munero-managed=true AND munero-trial=<name>), verify they are gone, then remove the
//! local record and secrets.


use anyhow::{anyhow, Context, Result};
use munero_provider::{is_managed_for, Provider, Resource, ResourceKind};
use serde_json::json;

use crate::cli::{DestroyArgs, ProviderKind};
use crate::error::usage;
use crate::output::Report;
use crate::plan::{self, Step};
use crate::{providers, validate, Ctx};

/// Every labelled resource of `trial` at `p`, in deletion order: servers, firewalls, keys.
pub async fn trial_resources(p: &dyn Provider, trial: &str) -> Result<Vec<Resource>> {
    let mut out: Vec<Resource> = p
        .list_managed_servers()
        .await
        .with_context(|| format!("listing the servers of trial {trial}"))?
        .into_iter()
        .filter(|s| is_managed_for(&s.labels, trial))
        .map(|s| Resource { kind: ResourceKind::Server, id: s.id, name: s.name, labels: s.labels })
        .collect();
    let mut rest: Vec<Resource> = p
        .list_managed_resources()
        .await
        .with_context(|| format!("listing the firewalls and keys of trial {trial}"))?
        .into_iter()
        .filter(|r| is_managed_for(&r.labels, trial))
        .collect();
    rest.sort_by_key(|r| match r.kind {
        ResourceKind::Server => 0,
        ResourceKind::Firewall => 1,
        ResourceKind::SshKey => 2,
    });
    out.extend(rest);
    Ok(out)
}

/// The steps that destroy one trial: each resource, verify, forget the local record.
pub fn destroy_plan(ctx: &Ctx, provider: &str, trial: &str, resources: &[Resource], has_local: bool) -> Vec<Step> {
    let mut steps: Vec<Step> = resources
        .iter()
        .map(|r| Step::DeleteResource {
            provider: provider.to_string(),
            kind: r.kind,
            id: r.id.clone(),
            name: r.name.clone(),
            trial: trial.to_string(),
        })
        .collect();
    steps.push(Step::VerifyGone { provider: provider.to_string(), trial: trial.to_string() });
    if has_local {
        steps.push(Step::ForgetLocal { trial: trial.to_string(), path: ctx.store.trial_dir(trial) });
    }
    steps
}

/// Walk destroy steps. Stops at the first failure (later steps depend on earlier ones).
pub async fn execute_steps(ctx: &Ctx, p: &dyn Provider, steps: &[Step]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] {step}", i + 1));
        match step {
            Step::DeleteResource { kind, id, name, .. } => {
                p.delete_resource(*kind, id).await.with_context(|| format!("deleting {kind} {name} ({id})"))?;
                done.push(format!("{kind} {name} ({id})"));
            }
            Step::VerifyGone { trial, provider } => {
                let left = trial_resources(p, trial).await?;
                if !left.is_empty() {
                    let names: Vec<String> = left.iter().map(|r| format!("{} {} ({})", r.kind, r.name, r.id)).collect();
                    return Err(anyhow!("{provider} still holds resources of trial {trial}: {}", names.join(", ")));
                }
            }
            Step::ForgetLocal { trial, .. } => {
                ctx.store.remove(trial)?;
                done.push(format!("local record of {trial}"));
            }
            other => return Err(anyhow!("destroy cannot run step {other}")),
        }
    }
    Ok(done)
}

pub async fn run(ctx: &Ctx, args: &DestroyArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let _lock = crate::lock::for_command(ctx, &args.trial, "destroy", args.dry_run)?;
    let trial = args.trial.as_str();
    let record = ctx.store.load(trial)?;
    let kind = match &record {
        Some(t) => providers::kind_of(&t.provider)
            .ok_or_else(|| anyhow!("trial {trial} names an unknown provider {:?}", t.provider))?,
        None => ProviderKind::Hetzner,
    };
    if kind == ProviderKind::Ssh {
        return crate::ssh_provider::destroy(ctx, args).await;
    }
    providers::ensure_available(kind)?;
    if !args.yes && !args.dry_run {
        super::confirm_by_name(
            trial,
            &format!("destroy deletes trial {trial} and its data"),
            &format!("Destroy trial {trial} and delete its server, firewall, key and local secrets?"),
            "nothing was deleted",
        )?;
    }
    let provider: Option<Box<dyn Provider>> = if args.dry_run && providers::hetzner_token().is_none() {
        None
    } else {
        Some(providers::connect(kind)?)
    };

    let resources = match &provider {
        Some(p) => trial_resources(p.as_ref(), trial).await?,
        None => {
            ctx.out.progress("note: no HCLOUD_TOKEN: the plan lists the ids of the local record, not checked at the provider");
            record_resources(record.as_ref())
        }
    };
    if record.is_none() && resources.is_empty() {
        return Err(usage(format!(
            "no trial named {trial}: no local record in {} and nothing labelled munero-trial={trial} at {}",
            ctx.store.root().display(),
            kind.as_str()
        )));
    }
    let steps = destroy_plan(ctx, kind.as_str(), trial, &resources, record.is_some());
    let text = plan::render(&steps);
    if args.dry_run {
        ctx.out.progress(format!("Plan to destroy trial {trial} (dry run: nothing is deleted):"));
        return Ok(Report::new(
            json!({"ok": true, "command": "destroy", "dry_run": true, "trial": trial, "provider": kind.as_str(),
                   "plan": steps, "plan_text": text}),
            text,
        ));
    }
    let p = provider.expect("connected when not a dry run");
    let done = execute_steps(ctx, p.as_ref(), &steps).await.with_context(|| {
        format!("destroy {trial} failed; what is left stays labelled munero-trial={trial}: run destroy again")
    })?;
    Ok(Report::new(
        json!({"ok": true, "command": "destroy", "dry_run": false, "trial": trial, "provider": kind.as_str(),
               "deleted": resources, "plan": steps}),
        format!("Trial {trial} destroyed: {}", if done.is_empty() { "nothing was left".into() } else { done.join(", ") }),
    ))
}

fn record_resources(record: Option<&crate::trial::Trial>) -> Vec<Resource> {
    let Some(t) = record else { return vec![] };
    let mk = |kind, id: &Option<String>, name: String| {
        id.clone().map(|id| Resource { kind, id, name, labels: Default::default() })
    };
    [
        mk(ResourceKind::Server, &t.resources.server_id, t.name.clone()),
        mk(ResourceKind::Firewall, &t.resources.firewall_id, t.resource_name()),
        mk(ResourceKind::SshKey, &t.resources.ssh_key_id, t.resource_name()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

