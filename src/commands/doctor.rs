//! `doctor`: what the next commands need, one line per check, and a non-zero exit when anything
//! is missing.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::cli::DoctorArgs;
use crate::ctx::Ctx;
use crate::doctor::{self, Finding};
use crate::hosts;
use crate::output::{table, Report};

/// Room for a dataset snapshot and shipped images.
const NEED_FREE: u64 = 5 << 30;

pub async fn run(ctx: &Ctx, args: &DoctorArgs) -> Result<Report> {
    let kind = args.provider.or(ctx.config.provider).unwrap_or_default();
    let mut found: Vec<Finding> = Vec::new();
    match hosts::connect(kind, true) {
        Ok(h) => found.extend(h.preflight().await),
        Err(e) => found.push(Finding::missing(&format!("provider {kind}"), format!("{e:#}"))),
    }
    let path = std::env::var("PATH").ok();
    for (t, why) in doctor::tools_for(kind) {
        found.push(doctor::tool(t, why, path.as_deref()));
    }
    let sock = std::env::var("SSH_AUTH_SOCK").ok().filter(|s| !s.is_empty());
    let agent_keys = sock.is_some()
        && tokio::process::Command::new("ssh-add").arg("-l").output().await.is_ok_and(|o| o.status.success());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    found.push(doctor::ssh_keys(sock.as_deref(), agent_keys, home.as_deref()));
    if args.ship_images {
        let f = doctor::tool("docker", "deploy --ship-images", path.as_deref());
        let reachable = f.ok && tokio::process::Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output().await.is_ok_and(|o| o.status.success());
        found.push(if f.ok && !reachable { Finding::missing("docker", "docker is installed but its engine does not answer (`docker info` fails): start dockerd") } else { f });
    }
    let root = ctx.store.root();
    let existing = root.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    found.push(doctor::disk(existing, doctor::free_bytes(existing), NEED_FREE));
    found.push(doctor::state_dir(root));

    let missing = found.iter().filter(|f| !f.ok).count();
    let rows: Vec<Vec<String>> =
        found.iter().map(|f| vec![if f.ok { "ok".into() } else { "MISSING".into() }, f.check.clone(), f.detail.clone()]).collect();
    let mut human = table(&["", "CHECK", "DETAIL"], &rows);
    human.push_str(&if missing == 0 { "\nEverything the next commands need is here.".to_string() } else { format!("\n{missing} missing.") });
    let mut r = Report::new(json!({"ok": missing == 0, "command": "doctor", "provider": kind, "checks": found, "missing": missing}), human);
    r.exit_code = if missing == 0 { 0 } else { 1 };
    Ok(r)
}
