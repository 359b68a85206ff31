//! `teardown --expired`: every kind of host that can be asked (clouds with credentials, existing
//! hosts from their records) plans the removal of its trials whose `munero-expires` is before
//! `--at` (default now), orphans included; then each walks its plan. Never touches a resource
//! without `munero-managed=true`. One trial's failure does not stop the others; exit 1 if any.

use anyhow::Result;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::cli::TeardownArgs;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::hosts::lifecycle::TeardownPlan;
use crate::output::Report;
use crate::plan::teardown::TeardownStep;
use crate::{hosts, plan, validate};

pub async fn run(ctx: &Ctx, args: &TeardownArgs) -> Result<Report> {
    let at = match &args.at {
        Some(s) => validate::at(s)?,
        None => ctx.now,
    };
    let at_s = at.format(&Rfc3339).unwrap_or_default();
    if !hosts::any_cloud_configured() && ctx.store.list().unwrap_or_default().is_empty() {
        return Err(usage("teardown needs provider credentials: set HCLOUD_TOKEN (no provider is configured)"));
    }
    let all = hosts::configured()?;
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
    let steps: Vec<&TeardownStep> = plans.iter().flat_map(|p| &p.steps).collect();
    let expired: Vec<&String> = plans.iter().flat_map(|p| &p.expired).collect();
    let kept: Vec<&serde_json::Value> = plans.iter().flat_map(|p| &p.kept).collect();
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
    for (h, p) in all.iter().zip(&plans) {
        if p.steps.is_empty() {
            continue;
        }
        let out = h.teardown(ctx, &p.steps).await;
        destroyed.extend(out.destroyed);
        failed.extend(out.failed);
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
               "kept": kept, "failed": failed, "plan": steps}),
        human,
    );
    if !ok {
        r.exit_code = 1;
    }
    Ok(r)
}
