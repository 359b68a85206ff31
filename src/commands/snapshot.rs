//! `snapshot <TRIAL> [--name N]` and `restore <TRIAL> [--replace]`: the plan's rollback point
//! before onboarding, taken at the provider and labelled like the trial; and the trial's server
//! made again from the latest one. Hosts without provider images refuse both (exit 2).

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{RestoreArgs, SnapshotArgs};
use crate::ctx::Ctx;
use crate::error::usage;
use crate::output::Report;
use crate::timefmt::rfc3339;
use crate::{hosts, lock, plan, prompt, remote};

pub async fn snapshot(ctx: &Ctx, args: &SnapshotArgs) -> Result<Report> {
    let _lock = lock::for_command(ctx, &args.trial, "snapshot", args.dry_run)?;
    let t = remote::load_trial(ctx, &args.trial)?;
    let now = ctx.now.unix_timestamp();
    let description = match &args.name {
        Some(n) if n.trim().is_empty() || n.len() > 200 => {
            return Err(usage(format!("invalid --name {n:?}: give 1 to 200 characters")))
        }
        Some(n) => n.clone(),
        None => format!("{} {}", t.name, rfc3339(now)),
    };
    let host = hosts::connect_trial(&t, args.dry_run)?;
    let steps = host.plan_snapshot(ctx, &t, &description, now).await?;
    let text = plan::render(&steps);
    if args.dry_run {
        return Ok(Report::new(
            json!({"ok": true, "command": "snapshot", "dry_run": true, "trial": t.name, "plan": steps, "plan_text": text}),
            text,
        ));
    }
    let r = host.snapshot(ctx, &steps).await.with_context(|| format!("snapshot of trial {} failed", t.name))?;
    Ok(Report::new(
        json!({"ok": true, "command": "snapshot", "dry_run": false, "trial": t.name, "provider": t.provider,
               "snapshot": {"id": r.id, "name": r.name, "labels": r.labels}, "plan": steps}),
        format!(
            "Snapshot {:?} (id {}) of trial {} taken at {}. `munero-infra restore {}` makes the server again from it; \
             destroy and teardown delete it unless --keep-snapshots.",
            r.name, r.id, t.name, t.provider, t.name
        ),
    ))
}

pub async fn restore(ctx: &Ctx, args: &RestoreArgs) -> Result<Report> {
    let _lock = lock::for_command(ctx, &args.trial, "restore", args.dry_run)?;
    let mut t = remote::load_trial(ctx, &args.trial)?;
    let host = hosts::connect_trial(&t, args.dry_run)?;
    let steps = host.plan_restore(ctx, &t, args.replace).await?;
    let text = plan::render(&steps);
    if args.dry_run {
        return Ok(Report::new(
            json!({"ok": true, "command": "restore", "dry_run": true, "trial": t.name, "plan": steps, "plan_text": text}),
            text,
        ));
    }
    if args.replace && !args.yes {
        prompt::confirm_by_name(
            &t.name,
            &format!("restore --replace deletes the current server of trial {} and its disk", t.name),
            &format!("Delete the current server of trial {} and make it again from its latest snapshot?", t.name),
            "nothing was changed",
        )?;
    }
    let old_ip = t.ipv4.clone();
    let done = host.restore(ctx, &mut t, &steps).await.with_context(|| {
        format!("restore of trial {} failed; what it made is labelled munero-trial={}: run restore again (with --replace)", t.name, t.name)
    })?;
    let moved = old_ip != t.ipv4;
    let next = if moved {
        format!(
            " Its address changed ({} -> {}): run `munero-infra deploy {}` so the site, its name and its certificate follow.",
            old_ip.as_deref().unwrap_or("-"),
            t.ipv4.as_deref().unwrap_or("-"),
            t.name
        )
    } else {
        String::new()
    };
    Ok(Report::new(
        json!({"ok": true, "command": "restore", "dry_run": false, "trial": t.name, "provider": t.provider,
               "server_id": t.resources.server_id, "ipv4": t.ipv4, "address_changed": moved, "done": done, "plan": steps}),
        format!("Trial {} restored: {}.{next}", t.name, done.join("; ")),
    ))
}
