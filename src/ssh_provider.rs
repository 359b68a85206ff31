//! The `ssh` provider: a machine that already exists (a client's VPS, bare metal). There is no
//! provider API, so it does not implement the cloud `Provider` trait: create registers the host
//! (address, login, the host key the operator vouches for, checked by logging in), destroy wipes
//! the stack when the host is reachable and forgets the record. Everything in between (deploy,
//! smoke, wipe, logs, ssh) is the same as for a cloud trial.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::cli::{CreateArgs, DestroyArgs};
use crate::error::usage;
use crate::output::Report;
use crate::remote;
use crate::ssh::{hostkey, ConnectOptions, Echo, RemoteCmd, Session, Target};
use crate::trial::{Keys, Trial};
use crate::{deploy, validate, Ctx};

pub const PINNED_HOST_KEY_FILE: &str = "pinned_host_key.pub";

/// Flags of `create --provider ssh` (flattened into `create`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SshHostArgs {
    /// --provider ssh: address or name of the existing host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// --provider ssh: SSH port (default 22).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// --provider ssh: login user (default deploy); it must be able to run docker.
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// --provider ssh: private key to log in with (default: the ssh-agent's keys).
    #[arg(long, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// --provider ssh: the host's public key (e.g. a copy of /etc/ssh/ssh_host_ed25519_key.pub); pinned.
    #[arg(long = "host-key", value_name = "PUBKEYFILE")]
    pub host_key: Option<PathBuf>,
    /// --provider ssh: directory of the stack on the host (default: munero, under the user's home).
    #[arg(long = "remote-dir", value_name = "DIR")]
    pub remote_dir: Option<String>,
}

pub async fn create(ctx: &Ctx, args: &CreateArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let h = &args.ssh;
    let host = h
        .host
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| usage("--provider ssh needs --host HOST (and --host-key PUBKEYFILE)"))?;
    let key_file = h
        .host_key
        .clone()
        .ok_or_else(|| usage("--provider ssh needs --host-key PUBKEYFILE: the host key is pinned, never trusted on first use"))?;
    let host_key = hostkey::load_pinned(&key_file).map_err(|e| usage(format!("--host-key {}: {e:#}", key_file.display())))?;
    let identity = match &h.identity {
        Some(p) => {
            let abs = std::fs::canonicalize(p).map_err(|_| usage(format!("--identity {}: no such file", p.display())))?;
            russh::keys::load_secret_key(&abs, None)
                .map_err(|e| usage(format!("--identity {}: not a usable private key ({e})", p.display())))?;
            Some(abs)
        }
        None => None,
    };
    let domain = args.domain.as_deref().map(validate::fqdn).transpose()?;
    let days = args.days.or(ctx.config.days).unwrap_or(validate::DEFAULT_DAYS);
    let expires_at = match &args.expires {
        Some(e) => validate::expires(e, ctx.now)?,
        None => ctx.now + time::Duration::days(validate::days(days)?),
    };
    let expires_at = expires_at.replace_nanosecond(0).unwrap_or(expires_at);
    let user = h.user.clone().unwrap_or_else(|| crate::trial::DEPLOY_USER.to_string());
    let port = h.port.unwrap_or(22);
    let remote_dir = h.remote_dir.clone().unwrap_or_else(|| remote::DEFAULT_REMOTE_DIR.to_string());
    let fp = hostkey::fingerprint(&host_key);
    let gpu = args.size.as_deref() == Some("gpu");

    let plan = format!(
        " 1. pin host key {fp} from {}\n 2. log in as {user}@{host}:{port} with {} (the host must present exactly that key)\n \
         3. check docker compose on the host\n 4. record the trial (expires {}, nothing at a provider to delete)",
        key_file.display(),
        identity.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the ssh-agent".into()),
        expires_at.format(&Rfc3339).unwrap_or_default()
    );
    if args.dry_run {
        return Ok(Report::new(json!({"ok": true, "command": "create", "dry_run": true, "provider": "ssh", "trial": args.trial, "plan_text": plan}), plan));
    }
    let _lock = crate::lock::for_command(ctx, &args.trial, "create", false)?;

    let target = Target { host: host.clone(), port, user: user.clone(), identity: identity.clone(), host_key: host_key.clone() };
    ctx.out.progress(format!("connecting to {} (pinned host key {fp})", target.display()));
    let s = Session::connect(&target, &ConnectOptions::default()).await?;
    let docker = s
        .exec(&RemoteCmd::shell("docker compose version --short 2>/dev/null || docker-compose version --short 2>/dev/null"))
        .await?;
    s.close().await;
    let docker_version = docker.stdout_str().trim().to_string();
    if docker_version.is_empty() {
        ctx.out.progress("warning: no docker compose on the host yet; deploy needs Docker Engine + Compose v2 there");
    }

    ctx.store.ensure_dir(&args.trial)?;
    ctx.store.write_secret(&args.trial, PINNED_HOST_KEY_FILE, format!("{}\n", host_key.to_openssh()?).as_bytes())?;
    let trial = Trial {
        name: args.trial.clone(),
        provider: "ssh".into(),
        size: args.size.clone().unwrap_or_else(|| "existing".into()),
        gpu,
        server_type: "existing host".into(),
        created_unix: ctx.now.unix_timestamp(),
        expires_unix: expires_at.unix_timestamp(),
        expires: expires_at.format(&Rfc3339).unwrap_or_default(),
        domain,
        ssh_user: user.clone(),
        ipv4: host.parse::<std::net::Ipv4Addr>().ok().map(|a| a.to_string()),
        ssh_host: Some(host.clone()),
        ssh_port: Some(port),
        remote_dir: Some(remote_dir.clone()),
        state: "running".into(),
        keys: Keys {
            ssh_private_key: identity.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            host_public_key: PINNED_HOST_KEY_FILE.into(),
            host_key_fingerprint: fp.clone(),
            ..Keys::default()
        },
        ..Trial::default()
    };
    let path = ctx.store.save(&trial)?;
    Ok(Report::new(
        json!({"ok": true, "command": "create", "provider": "ssh", "trial": trial.name, "host": host, "port": port,
               "user": user, "host_key_fingerprint": fp, "remote_dir": remote_dir, "docker_compose": docker_version,
               "expires": trial.expires, "record": path}),
        format!(
            "Trial {} registers {user}@{host}:{port} (host key {fp}); stack directory {remote_dir}; expires {}.\nNext: munero-infra deploy {}",
            trial.name, trial.expires, trial.name
        ),
    ))
}

/// Wipe and remove the stack when the host is reachable, then forget the record.
pub async fn destroy(ctx: &Ctx, args: &DestroyArgs) -> Result<Report> {
    let trial = remote::load_trial(ctx, &args.trial)?;
    let rd = remote::remote_dir(&trial);
    let down = deploy::compose_cmd(&rd, trial.gpu, &["down", "--volumes", "--remove-orphans"]);
    let plan = format!(
        " 1. if {} is reachable and has the stack: wipe the client data ({})\n 2. {down}\n 3. remove {rd} on the host\n \
         4. remove local secrets of {}: {}",
        remote::ssh_host(&trial)?,
        deploy::wipe_cmd(&rd, trial.gpu),
        trial.name,
        ctx.store.trial_dir(&trial.name).display()
    );
    if args.dry_run {
        return Ok(Report::new(json!({"ok": true, "command": "destroy", "dry_run": true, "provider": "ssh", "trial": trial.name, "plan_text": plan}), plan));
    }
    if !args.yes {
        return Err(usage(format!(
            "destroy removes the stack and client data of trial {} from its host and forgets it; pass --yes to confirm",
            trial.name
        )));
    }
    let mut notes = Vec::new();
    match remote::connect(ctx, &trial).await {
        Ok(s) => {
            let has_stack = s.exec(&RemoteCmd::argv(["test", "-f", &format!("{rd}/deploy/docker-compose.yml")])).await?.success();
            if has_stack {
                ctx.out.progress("wiping the client data on the host");
                let w = s.run_with(&deploy::wipe_cmd(&rd, trial.gpu), None::<tokio::io::Empty>, Echo::Progress).await;
                if let Err(e) = &w {
                    ctx.out.progress(format!("warning: the wipe did not verify: {e:#}"));
                }
                s.run_with(&down, None::<tokio::io::Empty>, Echo::Progress)
                    .await
                    .context("removing the stack and its volumes")?;
                notes.push("stack and volumes removed from the host".to_string());
            } else {
                notes.push("no stack on the host".to_string());
            }
            s.run(&RemoteCmd::argv(["rm", "-rf", "--", &rd])).await?;
            s.close().await;
        }
        Err(e) => {
            ctx.out.progress(format!("warning: host not reachable, nothing wiped there: {e:#}"));
            notes.push("host not reachable: nothing wiped".to_string());
        }
    }
    ctx.store.remove(&trial.name)?;
    notes.push("local record forgotten".into());
    Ok(Report::new(
        json!({"ok": true, "command": "destroy", "provider": "ssh", "trial": trial.name, "done": notes}),
        format!("Trial {} destroyed: {}", trial.name, notes.join("; ")),
    ))
}
