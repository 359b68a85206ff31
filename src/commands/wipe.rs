//! `wipe <TRIAL>`: run the stack's wipe (deploy/wipe_client_data.sh) on the host and show its
//! receipt.

use std::collections::BTreeSet;

use anyhow::Result;
use munero_provider::ResourceKind;
use serde_json::json;

use crate::cli::WipeArgs;
use crate::ctx::Ctx;
use crate::output::Report;
use crate::plan::wipe::WipeStep;
use crate::ssh::Echo;
use crate::{deploy, plan, prompt, remote};

pub async fn run(ctx: &Ctx, args: &WipeArgs) -> Result<Report> {
    let _lock = crate::lock::for_command(ctx, &args.trial, "wipe", args.dry_run)?;
    let trial = remote::load_trial(ctx, &args.trial)?;
    let steps = vec![WipeStep::Wipe { host: remote::ssh_host(&trial)?, cmd: deploy::wipe_cmd(&remote::remote_dir(&trial), trial.gpu) }];
    let text = plan::render(&steps);
    if args.dry_run {
        return Ok(Report::new(
            json!({"ok": true, "command": "wipe", "dry_run": true, "trial": trial.name, "plan": steps, "plan_text": text}),
            text,
        ));
    }
    if !args.yes {
        prompt::confirm_by_name(
            &trial.name,
            &format!("wipe removes the client data of trial {}", trial.name),
            &format!("Wipe the client data of trial {}?", trial.name),
            "nothing was wiped",
        )?;
    }
    let s = remote::connect(ctx, &trial).await?;
    let mut receipt = Ok(String::new());
    for step in &steps {
        ctx.out.progress(format!("wiping the client data of trial {} on {}", trial.name, s.host()));
        let WipeStep::Wipe { cmd, .. } = step;
        match s.run_with(cmd, None::<tokio::io::Empty>, Echo::Capture).await {
            Ok(out) => receipt.as_mut().map(|r| r.push_str(&out.stdout_str())).unwrap_or(()),
            Err(e) => {
                receipt = Err(e);
                break;
            }
        }
    }
    s.close().await;
    let receipt = receipt?;
    crate::notify::send(&ctx.out, &ctx.config, &[crate::notify::Event::Wiped { trial: trial.name.clone() }]).await;
    // The trial lives on: the sweep leaves its own server, firewall and key (as the record names
    // them), its DNS names and its snapshots, and removes anything else labelled with it.
    let r = &trial.resources;
    let known: BTreeSet<String> = [(ResourceKind::Server, &r.server_id), (ResourceKind::Firewall, &r.firewall_id), (ResourceKind::SshKey, &r.ssh_key_id)]
        .into_iter()
        .filter_map(|(k, id)| id.as_deref().map(|id| crate::hosts::cloud::sweep::key(k, id)))
        .collect();
    // Without provider credentials the receipt still gets written; its sweep then says why it
    // could not run (the wipe itself is done either way).
    let host = crate::hosts::connect_trial(&trial, true)?;
    let issue = crate::commands::receipt::Issue {
        trial: &trial.name,
        provider: trial.provider,
        action: "wipe",
        on_host: crate::receipt::removed_on_host(&receipt),
        deleted: Vec::new(),
        known,
        keep: vec![ResourceKind::Server, ResourceKind::DnsRecord, ResourceKind::Snapshot],
        sweep: true,
    };
    let issued = crate::commands::receipt::issue(ctx, host.as_ref(), issue).await;
    let where_ = issued["text_file"].as_str().map(|f| format!("\nReceipt: {f}")).unwrap_or_default();
    Ok(Report::new(
        json!({"ok": true, "command": "wipe", "trial": trial.name, "receipt": receipt, "wipe_receipt": issued, "plan": steps}),
        format!("{}{where_}", receipt.trim_end()),
    ))
}
