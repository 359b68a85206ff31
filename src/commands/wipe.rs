//! `wipe <TRIAL>`: run the stack's wipe (deploy/wipe_client_data.sh) on the host and show its
//! receipt.


use anyhow::Result;
use serde_json::json;

use crate::deploy;
use crate::output::Report;
use crate::remote;
use crate::ssh::Echo;
use crate::Ctx;

#[derive(Debug, Clone, clap::Args)]
pub struct WipeArgs {
    pub trial: String,
    /// Do not ask; required when not run from a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Print what would run, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(ctx: &Ctx, args: &WipeArgs) -> Result<Report> {
    let _lock = crate::lock::for_command(ctx, &args.trial, "wipe", args.dry_run)?;
    let trial = remote::load_trial(ctx, &args.trial)?;
    let cmd = deploy::wipe_cmd(&remote::remote_dir(&trial), trial.gpu);
    let plan = format!(
        " 1. [wipe] on {}: {cmd}\n     (stops the stack, removes the client_data and app_state volumes, starts it again, verifies, prints a receipt; then deletes the uploaded copy of the dataset)",
        remote::ssh_host(&trial)?
    );
    if args.dry_run {
        return Ok(Report::new(json!({"ok": true, "command": "wipe", "dry_run": true, "trial": trial.name, "remote_command": cmd.to_command_line()}), plan));
    }
    if !args.yes {
        super::confirm_by_name(
            &trial.name,
            &format!("wipe removes the client data of trial {}", trial.name),
            &format!("Wipe the client data of trial {}?", trial.name),
            "nothing was wiped",
        )?;
    }
    let s = remote::connect(ctx, &trial).await?;
    ctx.out.progress(format!("wiping the client data of trial {} on {}", trial.name, s.host()));
    let out = s.run_with(&cmd, None::<tokio::io::Empty>, Echo::Capture).await;
    s.close().await;
    let out = out?;
    let receipt = out.stdout_str();
    Ok(Report::new(
        json!({"ok": true, "command": "wipe", "trial": trial.name, "receipt": receipt}),
        receipt,
    ))
}

