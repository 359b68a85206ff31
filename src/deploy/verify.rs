//! Deploy steps 7 and 8, also run by `smoke`: wait healthy, HTTPS checks with Basic Auth over the
//! public URL, the exposure probe from here and the published ports on the host.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::deploy::{self, Step};
use crate::remote;
use crate::smoke::{self, Site};
use crate::ssh::Session;
use crate::trial::Trial;

/// Caddy's internal root certificate, for trials served without a public domain.
pub async fn caddy_root(ctx: &Ctx, trial: &Trial, s: &Session) -> Result<Option<Vec<u8>>> {
    if remote::tls_mode(trial) != crate::site::Tls::Internal {
        return Ok(None);
    }
    let cmd = deploy::compose_cmd(
        &remote::remote_dir(trial),
        trial.gpu,
        &["exec", "-T", "caddy", "cat", "/data/caddy/pki/authorities/local/root.crt"],
    );
    // Caddy writes its CA at start-up; give a freshly started stack a minute.
    let mut last = None;
    for _ in 0..30 {
        match s.run(&cmd).await {
            Ok(out) if out.stdout.starts_with(b"-----BEGIN CERTIFICATE-----") => {
                ctx.out.progress("      trusting the site's own CA (Caddy tls internal: the trial has no domain)");
                return Ok(Some(out.stdout));
            }
            Ok(_) => last = Some(anyhow!("Caddy's root certificate is not a PEM certificate")),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(last.unwrap_or_else(|| anyhow!("no answer")).context("reading Caddy's internal root certificate on the host"))
}

pub async fn run_step(ctx: &Ctx, trial: &Trial, s: &Session, step: &Step, user: &str, password: &str) -> Result<Value> {
    let site = || async {
        let host = remote::ssh_host(trial)?;
        Ok::<Site, anyhow::Error>(Site {
            name: remote::site_name(trial)?,
            connect: host.parse().ok(),
            port: remote::host_port(trial, 443),
            user: user.to_string(),
            password: password.to_string(),
            extra_root_pem: caddy_root(ctx, trial, s).await?,
        })
    };
    match step {
        Step::WaitHealthy { require_model, .. } => {
            let timeout = std::env::var("MUNERO_HEALTH_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
            let full = smoke::wait_healthy(&site().await?, Duration::from_secs(timeout), *require_model).await?;
            ctx.out.progress(if full {
                "      ok: /health answers 200"
            } else {
                "      warn: /health is degraded (no model) while the dashboard answers: going on"
            });
            Ok(json!({"ok": true, "model_missing": !full}))
        }
        Step::Smoke { require_model, .. } => {
            let checks = smoke::smoke(&site().await?, *require_model).await?;
            for c in &checks {
                ctx.out.progress(format!(
                    "      {} {} -> {} {}",
                    if !c.ok { "FAIL" } else if c.warning { "warn" } else { "ok  " },
                    c.name,
                    c.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                    c.detail
                ));
            }
            let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
            if !failed.is_empty() {
                bail!("smoke checks failed: {}", failed.join("; "));
            }
            Ok(json!(checks))
        }
        Step::ExposureProbe { host, open, closed } => {
            let ports = smoke::exposure_probe(host, open, closed).await?;
            for p in &ports {
                ctx.out.progress(format!(
                    "      tcp {:<5} {} (expected {})",
                    p.port,
                    if p.answered { "answers" } else { "closed" },
                    if p.expected_open { "open" } else { "closed" }
                ));
            }
            let ps = s.run(&deploy::published_ports_cmd()).await?.stdout_str();
            let others = smoke::non_caddy_published(&ps);
            let exposed: Vec<String> = ports.iter().filter(|p| p.answered && !p.expected_open).map(|p| p.port.to_string()).collect();
            let missing: Vec<String> = ports.iter().filter(|p| !p.answered && p.expected_open).map(|p| p.port.to_string()).collect();
            if !exposed.is_empty() || !others.is_empty() {
                bail!(
                    "exposure probe failed: ports answering that must not: [{}]; containers other than caddy publishing ports: [{}]",
                    exposed.join(", "),
                    others.join("; ")
                );
            }
            if !missing.is_empty() {
                bail!("exposure probe: expected ports do not answer: {}", missing.join(", "));
            }
            ctx.out.progress("      ok: only caddy publishes ports on the host");
            Ok(json!(ports))
        }
        other => bail!("smoke cannot run step {other}"),
    }
}
