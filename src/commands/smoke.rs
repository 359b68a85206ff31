//! `smoke <TRIAL>`: deploy steps 7 and 8 again: wait healthy, HTTPS checks with Basic Auth over
//! the public URL, exposure probe from here and published ports on the host.

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use crate::deploy::{self, verify};
use crate::cli::SmokeArgs;
use crate::output::Report;
use crate::error::usage;
use crate::{remote, validate};
use crate::ctx::Ctx;

pub async fn run(ctx: &Ctx, args: &SmokeArgs) -> Result<Report> {
    let trial = remote::load_trial(ctx, &args.trial)?;
    let site = remote::site_spec(&trial, 30)?;
    let trust_ca = validate::trust_ca(args.trust_ca.as_deref())?;
    let speed = deploy::SpeedSpec { remote_dir: remote::remote_dir(&trial), gpu: trial.gpu, min_tps: ctx.config.min_tps()?, skip_unchanged: false };
    let mut steps = deploy::smoke_plan(
        &remote::url(&trial)?,
        &site,
        &remote::ssh_host(&trial)?,
        remote::ssh_port(&trial),
        &trial.forwards,
        args.require_model,
        &speed,
    );
    if let Some(bad) = args.only.iter().find(|o| !steps.iter().any(|s| s.id() == o.as_str())) {
        let ids: Vec<&str> = steps.iter().map(|s| s.id()).collect();
        return Err(usage(format!("--only {bad}: smoke has no such check; choose from {}", ids.join(", "))));
    }
    if !args.only.is_empty() {
        steps.retain(|s| args.only.iter().any(|o| o == s.id()));
    }
    let text = deploy::render(&steps);
    if args.dry_run {
        return Ok(Report::new(json!({"ok": true, "command": "smoke", "dry_run": true, "plan": steps, "plan_text": text}), text));
    }
    let creds = remote::load_credentials(ctx, &trial)?
        .ok_or_else(|| anyhow!("trial {} has no Basic Auth credentials yet: run deploy first", trial.name))?;
    let s = remote::connect(ctx, &trial).await?;
    let mut results = serde_json::Map::new();
    let mut trust = verify::Trust::new(trust_ca);
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] [{}] {step}", i + 1, step.id()));
        let v = verify::run_step(ctx, &trial, &s, step, &creds.user, &creds.password, &mut trust).await?;
        results.insert(step.id().into(), v);
    }
    s.close().await;
    let url = remote::url(&trial)?;
    Ok(Report::new(
        json!({"ok": true, "command": "smoke", "trial": trial.name, "url": url, "results": Value::Object(results)}),
        format!("Trial {}: {url} passed the smoke checks and the exposure probe.", trial.name),
    ))
}
