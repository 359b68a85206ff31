//! `logs <TRIAL> [SERVICE]`: `docker compose logs` of the trial's stack.

use anyhow::Result;
use serde_json::json;

use crate::deploy;
use crate::cli::LogsArgs;
use crate::output::Report;
use crate::remote;
use crate::ssh::Echo;
use crate::ctx::Ctx;

pub async fn run(ctx: &Ctx, args: &LogsArgs) -> Result<Report> {
    let trial = remote::load_trial(ctx, &args.trial)?;
    let cmd = deploy::logs_cmd(
        &remote::remote_dir(&trial),
        trial.gpu,
        args.service.as_deref(),
        args.follow,
        args.since.as_deref(),
    );
    let s = remote::connect(ctx, &trial).await?;
    let echo = if ctx.out.is_json() { Echo::Capture } else { Echo::Passthrough };
    let out = s.run_with(&cmd, None::<tokio::io::Empty>, echo).await;
    s.close().await;
    let out = out?;
    Ok(Report::new(json!({"ok": true, "command": "logs", "trial": trial.name, "logs": out.stdout_str()}), ""))
}
