//! `teardown --expired`: every kind of host that can be asked (clouds with credentials, existing
//! hosts from their records) plans the removal of its trials whose `munero-expires` is before
//! `--at` (default now), orphans included; then each walks its plan. Never touches a resource
//! without `munero-managed=true`. One trial's failure does not stop the others; exit 1 if any.

use anyhow::Result;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::cli::TeardownArgs;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::hosts::lifecycle::TeardownPlan;
use crate::output::Report;
use crate::timefmt::rfc3339;
use crate::plan::teardown::TeardownStep;
use crate::notify::{self, Event};
use crate::{hosts, plan, validate};

pub async fn run(ctx: &Ctx, args: &TeardownArgs) -> Result<Report> {
    let at = match &args.at {
        Some(s) => validate::at(s)?,
        None => ctx.now,
    };
    let at_s = at.format(&Rfc3339).unwrap_or_default();
    let records = ctx.store.list().unwrap_or_default();
    if !hosts::any_cloud_configured() && records.is_empty() {
        return Err(usage("teardown needs provider credentials: set HCLOUD_TOKEN (no provider is configured)"));
    }
    let all = hosts::configured(&records)?;
    let mut plans: Vec<TeardownPlan> = Vec::new();
    let mut failed = Vec::new();
    for h in &all {
        match h.plan_teardown(ctx, at.unix_timestamp()).await {
            Ok(p) => {
                for n in &p.notes {
                    ctx.out.progress(n);
                }
                plans.push(p);
            }
            Err(e) => {
                ctx.out.progress(format!("error: listing {}: {e:#}", h.kind()));
                failed.push(json!({"provider": h.kind(), "trial": null, "error": format!("{e:#}")}));
                plans.push(TeardownPlan::default());
            }
        }
    }
    if args.keep_snapshots {
        for p in &mut plans {
            plan::teardown::keep_kinds(&mut p.steps, &[munero_provider::ResourceKind::Snapshot]);
        }
    }
    let steps: Vec<&TeardownStep> = plans.iter().flat_map(|p| &p.steps).collect();
    let expired: Vec<&String> = plans.iter().flat_map(|p| &p.expired).collect();
    let kept: Vec<&serde_json::Value> = plans.iter().flat_map(|p| &p.kept).collect();
    if let Some(w) = &args.warn_before {
        let window = validate::window("--warn-before", w)?;
        return Ok(warn_before(ctx, at.unix_timestamp(), window, &kept, &expired, args.dry_run).await);
    }
    let text = plan::render(&steps);
    if args.dry_run {
        ctx.out.progress(format!(
            "Teardown of trials expired before {at_s} (dry run: nothing is deleted): {} to destroy, {} kept",
            expired.len(),
            kept.len()
        ));
        return Ok(Report::new(
            json!({"ok": true, "command": "teardown", "dry_run": true, "at": at_s, "expired": expired, "kept": kept,
                   "plan": steps, "plan_text": text}),
            if text.is_empty() { "Nothing has expired.".to_string() } else { text },
        ));
    }
    let mut destroyed = Vec::new();
    let mut receipts = Vec::new();
    let keep: Vec<munero_provider::ResourceKind> = if args.keep_snapshots { vec![munero_provider::ResourceKind::Snapshot] } else { Vec::new() };
    for (h, p) in all.iter().zip(&plans) {
        if p.steps.is_empty() {
            continue;
        }
        let out = h.teardown(ctx, &p.steps).await;
        receipts.extend(crate::commands::receipt::after_teardown(ctx, h.as_ref(), &p.steps, &out.destroyed, &keep).await);
        destroyed.extend(out.destroyed);
        failed.extend(out.failed);
    }
    let mut events: Vec<Event> = destroyed.iter().map(|t| Event::TornDown { trial: t.clone() }).collect();
    events.extend(failed.iter().map(|f| Event::TeardownFailed {
        trial: f["trial"].as_str().unwrap_or("(listing)").to_string(),
        error: f["error"].as_str().unwrap_or("").to_string(),
    }));
    notify::send(&ctx.out, &ctx.config, &events).await;
    let ok = failed.is_empty();
    // One line per run, for `schedule status` (and whoever audits the schedule).
    let line = json!({"at": at_s, "ok": ok, "destroyed": destroyed, "failed": failed.iter().map(|f| f["trial"].clone()).collect::<Vec<_>>()});
    let log = ctx.store.root().join(crate::schedule::TEARDOWN_LOG);
    let appended = std::fs::create_dir_all(ctx.store.root()).and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(&log)).and_then(|mut f| {
        use std::io::Write;
        writeln!(f, "{line}")
    });
    if let Err(e) = appended {
        ctx.out.progress(format!("warning: could not append to {}: {e}", log.display()));
    }
    let human = format!(
        "Teardown at {at_s}: destroyed {} ({}), kept {}, failed {}",
        destroyed.len(),
        destroyed.join(", "),
        kept.len(),
        failed.len()
    );
    let mut r = Report::new(
        json!({"ok": ok, "command": "teardown", "dry_run": false, "at": at_s, "destroyed": destroyed,
               "kept": kept, "failed": failed, "plan": steps, "receipts": receipts}),
        human,
    );
    if !ok {
        r.exit_code = 1;
    }
    Ok(r)
}

/// `--warn-before`: the trials that expire within the window, each announced once per expiry
/// (a marker in the state dir keeps an hourly schedule from repeating it); nothing is deleted.
async fn warn_before(ctx: &Ctx, at: i64, window: i64, kept: &[&Value], expired: &[&String], dry_run: bool) -> Report {
    let soon: Vec<&Value> = kept.iter().copied().filter(|k| k["expires_unix"].as_i64().is_some_and(|e| e > at && e <= at + window)).collect();
    let marks = ctx.store.root().join("notices");
    let mut events = Vec::new();
    for k in &soon {
        let (trial, e) = (k["trial"].as_str().unwrap_or_default(), k["expires_unix"].as_i64().unwrap_or_default());
        let mark = marks.join(format!("{trial}-{e}.expires-soon"));
        if !dry_run && !mark.exists() {
            let hours_left = (e - at + 3599) / 3600;
            events.push((mark, Event::ExpiresSoon { trial: trial.to_string(), expires: rfc3339(e), hours_left }));
        }
    }
    let list: Vec<Event> = events.iter().map(|(_, e)| e.clone()).collect();
    let sent = notify::send(&ctx.out, &ctx.config, &list).await;
    if sent == list.len() && sent > 0 {
        let _ = std::fs::create_dir_all(&marks);
        for (m, _) in &events {
            let _ = std::fs::write(m, b"");
        }
    }
    let lines: Vec<String> = soon.iter().map(|k| format!("{} expires {}", k["trial"].as_str().unwrap_or("?"), k["expires"].as_str().unwrap_or("?"))).collect();
    let human = if lines.is_empty() { "No trial expires within the window.".to_string() } else { lines.join("\n") };
    Report::new(
        json!({"ok": true, "command": "teardown", "dry_run": dry_run, "warn_before_s": window, "at": rfc3339(at),
               "expiring": soon, "expired_not_deleted": expired, "notified": sent}),
        human,
    )
}
