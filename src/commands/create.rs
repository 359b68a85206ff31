//! `create <TRIAL>`: flags + record + config -> a resolved request -> the host's plan -> print it
//! (`--dry-run`) or walk it. Re-running resumes; a failure half-way removes what that run made.

use anyhow::Result;
use serde_json::json;

use crate::cli::CreateArgs;
use crate::ctx::Ctx;
use crate::output::Report;
use crate::{cost, echo_ip, hosts, lock, plan, resolve, validate};

pub async fn run(ctx: &Ctx, args: &CreateArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let kind = resolve::provider_kind(args, &ctx.config)?;
    let host = hosts::connect(kind, args.dry_run)?;
    // Before the record is read: another run of this trial may be writing its keys.
    let _lock = lock::for_command(ctx, &args.trial, "create", args.dry_run)?;
    let defaults = host.defaults(&ctx.config);
    let prior = ctx.store.load(&args.trial)?;

    let mut ssh_from = Vec::new();
    if defaults.firewall {
        for s in resolve::ssh_from_inputs(args, prior.as_ref(), &ctx.config) {
            let c = if s == "auto" { echo_ip::detect_public_cidr(&ctx.config.ip_echo_url()).await? } else { validate::cidr(&s)? };
            if !ssh_from.contains(&c) {
                ssh_from.push(c);
            }
        }
    }
    let warnings = ctx.out.warn_all(validate::ssh_from_policy(&ssh_from, args.allow_ssh_from_anywhere)?);
    let mut notes = Vec::new();
    let req = resolve::create_request(args, kind, prior, &ctx.config, &defaults, ctx.now, ssh_from, &mut notes)?;
    let plan = host.plan_create(ctx, &req).await?;
    for n in notes.iter().chain(&plan.notes) {
        ctx.out.progress(n);
    }
    if !args.dry_run {
        return host.create(ctx, plan).await.map(|r| r.with_warnings(&warnings));
    }
    let mut text = plan::render(&plan.steps);
    ctx.out.progress(format!("Plan for trial {} (dry run: nothing is created):", req.name));
    // What the trial will cost: per hour, and for its whole life from now to its expiry.
    let price = host.price(&req.server_type, req.location.as_deref()).await.unwrap_or_else(|e| {
        ctx.out.progress(format!("warning: no price for {}: {e:#}", req.server_type));
        None
    });
    let whole = price.as_ref().map(|q| cost::cost(q, ctx.now.unix_timestamp(), req.expires_unix()));
    text.push_str(&match &whole {
        Some(c) => format!("\nPrice: {}; the whole trial ({} h to its expiry): {} ({})", cost::per_hour(c), c.hours, cost::money(c.amount, &c.currency), c.source),
        None => "\nPrice: no price known for this kind of host".to_string(),
    });
    let mut doc = json!({"ok": true, "command": "create", "dry_run": true, "trial": req.name, "provider": kind,
                         "plan": plan.steps, "plan_text": text, "cost": whole});
    if let (Some(d), Some(extra)) = (doc.as_object_mut(), plan.details.as_object()) {
        for (k, v) in extra {
            d.entry(k.clone()).or_insert(v.clone());
        }
    }
    Ok(Report::new(doc, text).with_warnings(&warnings))
}
