//! `wipe <TRIAL>`: run the stack's wipe (deploy/wipe_client_data.sh) on the host and show its
//! receipt.

use anyhow::Result;
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
    Ok(Report::new(json!({"ok": true, "command": "wipe", "trial": trial.name, "receipt": receipt, "plan": steps}), receipt))
}
