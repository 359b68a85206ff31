//! `destroy <TRIAL>`: the host's destroy steps for the trial (a cloud deletes its labelled
//! server, firewall and key and verifies; an existing host is wiped and cleaned), then the local
//! record and secrets. Nothing without our labels is touched.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use munero_provider::ResourceKind;
use serde_json::json;

use crate::cli::DestroyArgs;
use crate::ctx::Ctx;
use crate::output::Report;
use crate::commands::receipt;
use crate::plan::destroy::DestroyStep;
use crate::{hosts, plan, prompt, validate};

pub async fn run(ctx: &Ctx, args: &DestroyArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let _lock = crate::lock::for_command(ctx, &args.trial, "destroy", args.dry_run)?;
    let trial = args.trial.as_str();
    let record = ctx.store.load(trial)?;
    // Without a record, the trial can only be at the provider that labels its resources.
    let kind = record.as_ref().map(|t| t.provider).or(ctx.config.provider).unwrap_or_default();
    let host = match &record {
        Some(t) => hosts::connect_trial(t, args.dry_run),
        None => hosts::connect(kind, args.dry_run),
    }
    .map_err(|e| match &record {
        Some(_) => e,
        None => crate::error::usage(format!(
            "no trial named {trial} in {}; to look for one at {kind} by its labels: {e:#}",
            ctx.store.root().display()
        )),
    })?;
    if !args.yes && !args.dry_run {
        prompt::confirm_by_name(
            trial,
            &format!("destroy deletes trial {trial} and its data"),
            &format!("Destroy trial {trial} and delete its server, firewall, key and local secrets?"),
            "nothing was deleted",
        )?;
    }
    let mut steps = host.plan_destroy(ctx, trial, record.as_ref()).await?;
    let keep: Vec<ResourceKind> = if args.keep_snapshots { vec![ResourceKind::Snapshot] } else { Vec::new() };
    plan::destroy::keep_kinds(&mut steps, &keep);
    if args.forget {
        for s in &mut steps {
            if let DestroyStep::OnHost { skip_if_unreachable, .. } = s {
                *skip_if_unreachable = true;
            }
        }
    }
    let text = plan::render(&steps);
    if args.dry_run {
        ctx.out.progress(format!("Plan to destroy trial {trial} (dry run: nothing is deleted):"));
        return Ok(Report::new(
            json!({"ok": true, "command": "destroy", "dry_run": true, "trial": trial, "provider": kind,
                   "plan": steps, "plan_text": text}),
            text,
        ));
    }
    let done = host.destroy(ctx, &steps).await.with_context(|| {
        format!("destroy {trial} failed; what is left stays labelled munero-trial={trial} (and its record is kept): run destroy again")
    })?;
    let issue = receipt::Issue {
        trial,
        provider: kind,
        action: "destroy",
        on_host: receipt::on_host(&steps),
        deleted: receipt::gone(&steps, record.as_ref()),
        sweep: true,
        known: BTreeSet::new(),
        keep,
    };
    let receipt = receipt::issue(ctx, host.as_ref(), issue).await;
    let where_ = receipt["text_file"].as_str().map(|f| format!("\nReceipt: {f}")).unwrap_or_default();
    Ok(Report::new(
        json!({"ok": true, "command": "destroy", "dry_run": false, "trial": trial, "provider": kind,
               "deleted": deleted(&steps), "done": done, "plan": steps, "receipt": receipt}),
        format!("Trial {trial} destroyed: {}{where_}", if done.is_empty() { "nothing was left".into() } else { done.join("; ") }),
    ))
}

/// The provider resources the steps deleted, as `{kind, id, name}`.
fn deleted(steps: &[DestroyStep]) -> Vec<serde_json::Value> {
    steps
        .iter()
        .filter_map(|s| match s {
            DestroyStep::DeleteResource { kind, id, name, .. } => Some(json!({"kind": kind, "id": id, "name": name})),
            _ => None,
        })
        .collect()
}
