//! `ssh <TRIAL> [-- COMMAND...]`: a command over the pinned connection (exit status passed
//! through), or an interactive shell through OpenSSH with a known_hosts holding only the pinned
//! key (StrictHostKeyChecking=yes).

use std::process::Stdio;

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::SshArgs;
use crate::output::Report;
use crate::remote;
use crate::ssh::{Echo, RemoteCmd};
use crate::ctx::Ctx;

pub async fn run(ctx: &Ctx, args: &SshArgs) -> Result<Report> {
    let trial = remote::load_trial(ctx, &args.trial)?;
    if !args.command.is_empty() {
        let s = remote::connect(ctx, &trial).await?;
        // One word is taken as a shell snippet (`ssh t -- 'df -h | tail -1'`), several as argv.
        let cmd = if args.command.len() == 1 { RemoteCmd::shell(args.command[0].clone()) } else { RemoteCmd::Argv(args.command.clone()) };
        let echo = if ctx.out.is_json() { Echo::Capture } else { Echo::Passthrough };
        let out = s.exec_with(&cmd, None::<tokio::io::Empty>, echo).await;
        s.close().await;
        let out = out?;
        let code = out.status.unwrap_or(255);
        let mut r = Report::new(
            json!({"ok": code == 0, "command": "ssh", "trial": trial.name, "exit_status": code,
                   "stdout": out.stdout_str(), "stderr": out.stderr_str()}),
            "",
        );
        r.exit_code = code.min(255) as u8;
        return Ok(r);
    }
    let t = remote::target(ctx, &trial)?;
    let dir = tempfile_dir()?;
    let kh = dir.join("known_hosts");
    let host_field = if t.port == 22 { t.host.clone() } else { format!("[{}]:{}", t.host, t.port) };
    std::fs::write(&kh, format!("{host_field} {}\n", t.host_key.to_openssh().context("encoding the pinned key")?))?;
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(["-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no", "-p"])
        .arg(t.port.to_string());
    if let Some(id) = &t.identity {
        cmd.args(["-o", "IdentitiesOnly=yes", "-i"]).arg(id);
    }
    cmd.arg(format!("{}@{}", t.user, t.host));
    let st = cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit()).status();
    let _ = std::fs::remove_dir_all(&dir);
    let st = st.context("running ssh (OpenSSH client) for the interactive shell")?;
    let mut r = Report::new(json!({"ok": st.success(), "command": "ssh", "trial": trial.name}), "");
    r.exit_code = st.code().unwrap_or(255).clamp(0, 255) as u8;
    Ok(r)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let d = std::env::temp_dir().join(format!("munero-ssh-{}", std::process::id()));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&d)?;
    Ok(d)
}
