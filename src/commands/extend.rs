//! `extend <TRIAL> --days N | --until RFC3339`: move the trial's end, in the order that keeps it
//! safe: the provider's labels (what teardown reads), then the VM's own timer, then the record.
//! A failure after the labels moved says exactly what is half done.

use anyhow::{anyhow, Result};
use serde_json::json;

use crate::cli::ExtendArgs;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::output::Report;
use crate::plan::extend::{on_host_cmd, ExtendStep};
use crate::timefmt::rfc3339;
use crate::{hosts, lock, plan, remote, resolve, validate};

pub async fn run(ctx: &Ctx, args: &ExtendArgs) -> Result<Report> {
    let _lock = lock::for_command(ctx, &args.trial, "extend", args.dry_run)?;
    let mut t = remote::load_trial(ctx, &args.trial)?;
    let was = t.expires.clone();
    let now = ctx.now.unix_timestamp();
    let new = match (&args.until, args.days) {
        (Some(u), _) => validate::expires(u, ctx.now)?.unix_timestamp(),
        (None, Some(d)) if (1..=validate::MAX_DAYS).contains(&d) => t.expires_unix.max(now) + d * 86_400,
        (None, Some(d)) => return Err(usage(format!("invalid --days {d}: give 1 to {} days", validate::MAX_DAYS))),
        (None, None) => return Err(usage("give --days N or --until RFC3339")),
    };
    if new <= now {
        return Err(usage(format!("the new expiry {} is in the past; give a future one", rfc3339(new))));
    }
    let host = hosts::connect_trial(&t, args.dry_run)?;
    let mut steps = Vec::new();
    let labelled = host.labelled(ctx, &t.name).await?;
    if !labelled.is_empty() {
        steps.push(ExtendStep::Relabel { provider: t.provider, resources: labelled, expires: rfc3339(new), expires_unix: new });
    }
    if host.boots_our_cloud_init() {
        let cal = crate::timefmt::systemd_calendar(new + resolve::WIPE_GRACE_S);
        steps.push(ExtendStep::OnHost { host: remote::ssh_host(&t)?, cmd: on_host_cmd(new, &cal) });
    }
    steps.push(ExtendStep::Record { path: ctx.store.trial_dir(&t.name).join(crate::store::RECORD_FILE), expires: rfc3339(new) });
    let text = plan::render(&steps);
    let doc = json!({"command": "extend", "trial": t.name, "from": t.expires, "to": rfc3339(new), "plan": steps, "plan_text": text});
    if args.dry_run {
        let mut d = doc;
        d["ok"] = json!(true);
        d["dry_run"] = json!(true);
        return Ok(Report::new(d, text));
    }
    let mut done = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{}] {}", i + 1, steps.len(), plan::headline(step)));
        let r = match step {
            ExtendStep::Relabel { resources, .. } => host.relabel(ctx, resources, new).await,
            ExtendStep::OnHost { cmd, .. } => async {
                let s = remote::connect(ctx, &t).await?;
                let out = s.run(cmd).await;
                s.close().await;
                let next = out?.stdout_str();
                ctx.out.progress(format!("      the VM's wipe timer now fires at {}", next.trim()));
                Ok(())
            }
            .await,
            ExtendStep::Record { .. } => {
                t.expires_unix = new;
                t.expires = rfc3339(new);
                ctx.store.save(&t).map(|_| ())
            }
        };
        if let Err(e) = r {
            let half = if done.is_empty() { "nothing was changed".to_string() } else { format!("already done: {}", done.join("; ")) };
            return Err(anyhow!(
                "{e:#}\nextend of {} is half done ({half}); the trial's record still says {}: run the same extend again",
                t.name,
                t.expires
            ));
        }
        done.push(plan::headline(step));
    }
    let mut d = doc;
    d["ok"] = json!(true);
    d["dry_run"] = json!(false);
    d["done"] = json!(done);
    Ok(Report::new(d, format!("Trial {} now expires {} (was {was}).", args.trial, rfc3339(new))))
}
