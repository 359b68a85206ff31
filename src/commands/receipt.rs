//! `receipt <TRIAL> [--all]`: the latest wipe or destroy receipt of a trial as the client can be
//! shown it (text), or all of them; `--output json` gives the receipt itself.

use anyhow::Result;
use serde_json::json;

use crate::cli::ReceiptArgs;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::output::{table, Report};
use crate::plan::destroy::DestroyStep;
use crate::trial::Trial;
use crate::{receipt, validate};
use munero_provider::ResourceKind;

pub fn run(ctx: &Ctx, args: &ReceiptArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let files = receipt::list(ctx.store.root(), &args.trial)?;
    let Some(latest) = files.last() else {
        return Err(usage(format!(
            "no receipt for trial {} in {}: one is written by `munero-infra wipe {}` and by destroy",
            args.trial,
            receipt::dir(ctx.store.root(), &args.trial).display(),
            args.trial
        )));
    };
    if args.all {
        let all: Vec<receipt::Receipt> = files.iter().map(|f| receipt::load(f)).collect::<Result<_>>()?;
        let rows: Vec<Vec<String>> = all
            .iter()
            .zip(&files)
            .map(|(r, f)| vec![r.time.clone(), r.action.clone(), if r.complete() { "complete" } else { "INCOMPLETE" }.into(), f.with_extension("txt").display().to_string()])
            .collect();
        return Ok(Report::new(
            json!({"ok": true, "command": "receipt", "trial": args.trial, "receipts": all, "files": files}),
            table(&["TIME", "ACTION", "RESULT", "FILE"], &rows),
        ));
    }
    let r = receipt::load(latest)?;
    let text = r.render_text();
    Ok(Report::new(
        json!({"ok": true, "command": "receipt", "trial": args.trial, "receipt": r, "file": latest, "text_file": latest.with_extension("txt")}),
        text.trim_end().to_string(),
    ))
}

/// What a wipe or destroy hands over for its receipt.
pub struct Issue<'a> {
    pub trial: &'a str,
    pub provider: munero_provider::ProviderKind,
    pub action: &'static str,
    pub on_host: Vec<String>,
    /// Provider resources the command deleted (each looked up again here).
    pub deleted: Vec<receipt::Gone>,
    /// `kind:id` of what the sweep leaves alone, and kinds it keeps whole.
    pub known: std::collections::BTreeSet<String>,
    pub keep: Vec<munero_provider::ResourceKind>,
    /// List every labelled type of the trial afresh; false when the caller's own listing after
    /// deletion (teardown's verify step, over every type) already found nothing left.
    pub sweep: bool,
}

/// Look each deleted resource up again, sweep for orphans, write the receipt. A receipt that
/// cannot be completed or written is a warning on a wipe or destroy that itself succeeded; the
/// JSON returned says what happened (and `complete: false`).
pub async fn issue(ctx: &Ctx, host: &dyn crate::hosts::Host, i: Issue<'_>) -> serde_json::Value {
    let mut deleted = i.deleted;
    host.confirm(ctx, &mut deleted).await;
    let sweep = if !i.sweep {
        receipt::Sweep {
            kinds: munero_provider::ResourceKind::ALL.to_vec(),
            note: Some("teardown's own listing of every labelled type, after the deletions, found nothing of this trial".into()),
            ..Default::default()
        }
    } else {
        match host.sweep(ctx, i.trial, &i.known, &i.keep).await {
            Ok(s) => s,
            Err(e) => {
                ctx.out.progress(format!("warning: the orphan sweep of {} failed: {e:#}", i.trial));
                receipt::Sweep { note: Some(format!("the sweep failed: {e:#}")), ..Default::default() }
            }
        }
    };
    let history = crate::audit::read_local(&crate::audit::local_path(ctx, i.trial)).unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let r = receipt::Receipt {
        trial: i.trial.to_string(),
        provider: i.provider,
        action: i.action.to_string(),
        time: crate::timefmt::rfc3339(now),
        operator: crate::audit::operator(),
        dataset: receipt::dataset_from_history(&history),
        on_host: i.on_host,
        resources: deleted,
        sweep,
    };
    for g in &r.sweep.found {
        ctx.out.progress(format!("      orphan {} {} (id {}) {}", g.kind, g.name, g.id, if g.confirmed() { "removed" } else { "NOT removed" }));
    }
    let stamp = crate::timefmt::rfc3339(now).replace(['-', ':'], "");
    match receipt::save(ctx.store.root(), &r, &stamp) {
        Ok((json_file, text_file)) => {
            ctx.out.progress(format!("receipt: {}", text_file.display()));
            json!({"complete": r.complete(), "file": json_file, "text_file": text_file, "receipt": r})
        }
        Err(e) => {
            ctx.out.progress(format!("warning: the receipt could not be written: {e:#}"));
            json!({"complete": r.complete(), "error": format!("{e:#}"), "receipt": r})
        }
    }
}

/// The deleted provider resources for the receipt; one the record did not know is an orphan.
pub fn gone(steps: &[DestroyStep], record: Option<&Trial>) -> Vec<receipt::Gone> {
    let known = |kind: ResourceKind, id: &str| {
        let Some(t) = record else { return true };
        let r = &t.resources;
        match kind {
            ResourceKind::Server => r.server_id.as_deref() == Some(id),
            ResourceKind::Firewall => r.firewall_id.as_deref() == Some(id),
            ResourceKind::SshKey => r.ssh_key_id.as_deref() == Some(id),
            ResourceKind::Volume | ResourceKind::PrimaryIp => false,
            // Found by their labels and the trial's name: theirs by design, never left over.
            ResourceKind::DnsRecord | ResourceKind::Snapshot => true,
        }
    };
    steps
        .iter()
        .filter_map(|s| match s {
            DestroyStep::DeleteResource { kind, id, name, .. } => Some(receipt::Gone {
                kind: *kind,
                id: id.clone(),
                name: name.clone(),
                orphan: !known(*kind, id),
                lookup: None,
                checked_at: None,
                error: None,
            }),
            _ => None,
        })
        .collect()
}

/// What the steps removed on the host itself, in words.
pub fn on_host(steps: &[DestroyStep]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match s {
            DestroyStep::DeleteResource { provider, kind: ResourceKind::Server, id, name, .. } => {
                Some(format!("server {name} (id {id}) deleted at {provider}, with its disk and everything on it"))
            }
            DestroyStep::OnHost { what, host, .. } => Some(format!("on {host}: {what}")),
            DestroyStep::StopVm { pid, .. } => Some(format!("VM process {pid} powered off")),
            DestroyStep::RemoveVmFiles { dir } => Some(format!("VM disk, seed and logs removed: {}", dir.display())),
            _ => None,
        })
        .collect()
}

/// A receipt for each trial a teardown destroyed, from the steps that ran for it. Cloud trials
/// are not swept again: teardown's verify step listed every labelled type after the deletions.
pub async fn after_teardown(
    ctx: &Ctx,
    host: &dyn crate::hosts::Host,
    steps: &[crate::plan::teardown::TeardownStep],
    destroyed: &[String],
    keep: &[ResourceKind],
) -> Vec<serde_json::Value> {
    use crate::plan::teardown::TeardownStep;
    let mut out = Vec::new();
    for t in destroyed {
        let mut mine: Vec<DestroyStep> = Vec::new();
        let mut listed_by_api = false;
        for s in steps {
            match s {
                TeardownStep::DeleteAll { provider, resources, .. } => {
                    listed_by_api = true;
                    mine.extend(resources.iter().filter(|r| r.trial() == Some(t.as_str())).map(|r| DestroyStep::delete(*provider, t, r)));
                }
                TeardownStep::DestroyTrial { trial, steps, .. } if trial == t => mine.extend(steps.iter().cloned()),
                _ => {}
            }
        }
        let i = Issue {
            trial: t,
            provider: host.kind(),
            action: "teardown",
            on_host: on_host(&mine),
            deleted: gone(&mine, None),
            known: Default::default(),
            keep: keep.to_vec(),
            sweep: !listed_by_api,
        };
        let mut v = issue(ctx, host, i).await;
        v["trial"] = json!(t);
        out.push(v);
    }
    out
}
