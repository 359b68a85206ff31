//! `create <TRIAL>`: flags + record + config -> a resolved request -> the host's plan -> print it
//! (`--dry-run`) or walk it. Re-running resumes; a failure half-way removes what that run made.

use anyhow::Result;
use serde_json::json;

use crate::cli::CreateArgs;
use crate::ctx::Ctx;
use crate::output::Report;
use crate::{cost, echo_ip, hosts, lock, plan, remote, resolve, site, validate};

pub async fn run(ctx: &Ctx, args: &CreateArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let kind = resolve::provider_kind(args, &ctx.config)?;
    // Missing credentials are said before anything is written (the lock makes the state dir);
    // a resumed trial stays in the region its record names.
    let location = match &args.location {
        Some(l) => Some(l.clone()),
        None => ctx.store.load(&args.trial)?.and_then(|t| t.location),
    };
    let host = hosts::connect_at(kind, location.as_deref(), &[], args.dry_run)?;
    // Before the record is read: another run of this trial may be writing its keys.
    let _lock = lock::for_command(ctx, &args.trial, "create", args.dry_run)?;
    let prior = ctx.store.load(&args.trial)?;
    let defaults = host.defaults(&ctx.config);

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
        let mut report = host.create(ctx, plan).await?.with_warnings(&warnings);
        if let Some(t) = ctx.store.load(&req.name)? {
            let (name, tls) = (remote::site_label(&t), remote::tls_mode(&t));
            report.human.push_str(&format!("\nSite (after deploy): https://{name}/ (certificate {})", tls.describe()));
            if let Some(d) = report.json.as_object_mut() {
                d.insert("site".into(), json!({"name": name, "tls": tls}));
            }
        }
        return Ok(report);
    }
    let mut text = plan::render(&plan.steps);
    let ip = req.existing.host.as_deref().and_then(|h| h.parse().ok());
    let site_name = site::planned_name(req.domain.as_deref(), req.domain_auto.as_deref(), ip);
    text.push_str(&format!("\nSite (after deploy): https://{site_name}/ (certificate {})", req.tls.describe()));
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
                         "plan": plan.steps, "plan_text": text, "cost": whole,
                         "site": {"name": site_name, "tls": req.tls}});
    if let (Some(d), Some(extra)) = (doc.as_object_mut(), plan.details.as_object()) {
        for (k, v) in extra {
            d.entry(k.clone()).or_insert(v.clone());
        }
    }
    Ok(Report::new(doc, text).with_warnings(&warnings))
}
