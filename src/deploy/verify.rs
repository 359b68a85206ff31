//! Deploy steps 7 and 8, also run by `smoke`: wait healthy, HTTPS checks with Basic Auth over the
//! public URL, the exposure probe from here and the published ports on the host.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::deploy::{self, Step};
use crate::site::Tls;
use crate::{acme, remote};
use crate::smoke::{self, Site};
use crate::ssh::Session;
use crate::trial::Trial;
use crate::model_speed::{self, Verdict};

/// The host's nvidia-smi answer from the model-speed command's output (its lines before the
/// `nvidia-smi exit N` line).
fn nvidia_smi(out: &str) -> Result<String, String> {
    let lines: Vec<&str> = out.lines().collect();
    let Some(i) = lines.iter().position(|l| l.starts_with("nvidia-smi exit ")) else {
        return Err("no answer".into());
    };
    let text = lines[..i].join("\n");
    if lines[i].trim_end() == "nvidia-smi exit 0" { Ok(text) } else { Err(text) }
}

/// Kept beside the record for `status` (the last figure); a file that cannot be written is a warning.
fn save_speed(ctx: &Ctx, trial: &Trial, sp: &model_speed::ModelSpeed) {
    let path = ctx.store.trial_dir(&trial.name).join(model_speed::FILE);
    let body = serde_json::to_vec_pretty(sp).unwrap_or_default();
    if let Err(e) = crate::store::atomic_write(&path, &body, 0o600) {
        ctx.out.progress(format!("warning: the speed figure was not kept: {e:#}"));
    }
}

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

/// Who vouches for the site's certificate, for people.
fn verified_against(tls: Tls, trust_ca: Option<&[u8]>) -> &'static str {
    match (tls, trust_ca) {
        (Tls::Internal, _) => "the stack's own CA (read from the host)",
        (_, Some(_)) => "the root given with --trust-ca",
        (Tls::Acme, None) => "this machine's root certificates",
        (Tls::AcmeStaging, None) => "nothing: a staging CA's chain is not trusted anywhere (name and expiry checked only)",
    }
}

/// One check step. `trust_ca`: a root (PEM) the operator vouches for, such as a private ACME
/// CA's in a rehearsal; without it an ACME site must chain to this machine's roots.
/// Caddy's recent log lines on the host, when they can be read.
async fn caddy_log(trial: &Trial, s: &Session) -> Option<String> {
    let cmd = deploy::compose_cmd(&remote::remote_dir(trial), trial.gpu, &["logs", "--no-color", "--tail", "300", "caddy"]);
    s.run(&cmd).await.ok().map(|o| format!("{}{}", o.stdout_str(), String::from_utf8_lossy(&o.stderr)))
}

/// The root the site's certificate is checked against: the operator's (`--trust-ca`), else for a
/// site without a domain the stack's own CA, read from the host once per run (each read is a
/// `docker compose exec`, a third of a second).
pub struct Trust {
    given: Option<Vec<u8>>,
    read: Option<Option<Vec<u8>>>,
}

impl Trust {
    pub fn new(given: Option<Vec<u8>>) -> Trust {
        Trust { given, read: None }
    }

    async fn root(&mut self, ctx: &Ctx, trial: &Trial, s: &Session) -> Result<Option<Vec<u8>>> {
        if let Some(pem) = &self.given {
            return Ok(Some(pem.clone()));
        }
        if self.read.is_none() {
            self.read = Some(caddy_root(ctx, trial, s).await?);
        }
        Ok(self.read.clone().flatten())
    }
}

async fn site(ctx: &Ctx, trial: &Trial, s: &Session, user: &str, password: &str, trust: &mut Trust) -> Result<Site> {
    let host = remote::ssh_host(trial)?;
    Ok(Site {
        name: remote::site_name(trial)?,
        connect: host.parse().ok(),
        port: remote::host_port(trial, 443),
        user: user.to_string(),
        password: password.to_string(),
        extra_root_pem: trust.root(ctx, trial, s).await?,
        accept_untrusted: remote::tls_mode(trial) == Tls::AcmeStaging && trust.given.is_none(),
    })
}

pub async fn run_step(
    ctx: &Ctx,
    trial: &Trial,
    s: &Session,
    step: &Step,
    user: &str,
    password: &str,
    trust: &mut Trust,
) -> Result<Value> {
    let tls = remote::tls_mode(trial);
    let trust_ca = trust.given.clone();
    let trust_ca = trust_ca.as_deref();
    match step {
        Step::Certificate { name, timeout_s, .. } => {
            let site = site(ctx, trial, s, user, password, trust).await?;
            let start = Instant::now();
            let last = loop {
                match smoke::certificate(&site).await {
                    Ok(c) => {
                        ctx.out.progress(format!(
                            "      ok: certificate for {name} from {}, valid until {} ({} days left); verified against {}",
                            c.issuer,
                            c.not_after,
                            c.days_left,
                            verified_against(tls, trust_ca)
                        ));
                        return Ok(json!({"issuer": c.issuer, "not_after": c.not_after, "days_left": c.days_left,
                                         "verified_against": verified_against(tls, trust_ca)}));
                    }
                    Err(e) if e.settled || start.elapsed() >= Duration::from_secs(*timeout_s) => break e,
                    Err(e) => {
                        ctx.out.progress(format!("      waiting for the certificate ({}s): {e}", start.elapsed().as_secs()));
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
            };
            let why = match tls.is_acme() {
                true => caddy_log(trial, s).await.and_then(|log| acme::explain(&log, name, &remote::ssh_host(trial).unwrap_or_default())),
                false => None,
            };
            bail!(
                "no certificate for {name} that {} trusts within {timeout_s}s: {last}{}",
                verified_against(tls, trust_ca),
                why.map(|w| format!("\n{w}")).unwrap_or_default()
            )
        }
        Step::WaitHealthy { require_model, .. } => {
            let timeout = std::env::var("MUNERO_HEALTH_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
            let full = smoke::wait_healthy(&site(ctx, trial, s, user, password, trust).await?, Duration::from_secs(timeout), *require_model).await?;
            ctx.out.progress(if full {
                "      ok: /health answers 200"
            } else {
                "      warn: /health is degraded (no model) while the dashboard answers: going on"
            });
            Ok(json!({"ok": true, "model_missing": !full}))
        }
        Step::Smoke { require_model, .. } => {
            let checks = smoke::smoke(&site(ctx, trial, s, user, password, trust).await?, *require_model).await?;
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
        Step::ModelSpeed { gpu, min_tps, require_model, cmd, .. } => {
            let input = std::io::Cursor::new(model_speed::SCRIPT.as_bytes().to_vec());
            let out = s.run_with(cmd, Some(input), crate::ssh::Echo::Capture).await?.stdout_str();
            let raw = model_speed::parse(&out).ok_or_else(|| anyhow!("the model-speed script printed no result: {}", out.trim()))?;
            let smi = gpu.then(|| nvidia_smi(&out));
            let now = crate::timefmt::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp());
            let (speed, problem) = match model_speed::judge(&raw, *gpu, smi, *min_tps, &now) {
                Verdict::Fast(sp) => (Some(sp), None),
                Verdict::Slow(sp, warning) => {
                    ctx.out.progress(format!("      {}", sp.summary()));
                    ctx.out.progress(format!("      warn: {warning}"));
                    save_speed(ctx, trial, &sp);
                    return Ok(json!({"speed": sp, "warning": warning}));
                }
                Verdict::Failed(sp, why) => (sp, Some(why)),
                Verdict::NoFigure(why) if *require_model => bail!("model speed: {why}"),
                Verdict::NoFigure(why) => {
                    ctx.out.progress(format!("      warn: no speed figure: {why}"));
                    return Ok(json!({"speed": null, "warning": why}));
                }
            };
            if let Some(sp) = &speed {
                ctx.out.progress(format!("      {}", sp.summary()));
                save_speed(ctx, trial, sp);
            }
            if let Some(why) = problem {
                bail!("model speed: {why}");
            }
            Ok(json!({"speed": speed}))
        }
        Step::ExposureProbe { host, open, closed } => {
            // The probe waits on the network; the host's list of published ports is read meanwhile.
            let ps_cmd = deploy::published_ports_cmd();
            let (ports, ps) = tokio::join!(smoke::exposure_probe(host, open, closed), s.run(&ps_cmd));
            let (ports, ps) = (ports?, ps?.stdout_str());
            for p in &ports {
                ctx.out.progress(format!(
                    "      tcp {:<5} {} (expected {})",
                    p.port,
                    if p.answered { "answers" } else { "closed" },
                    if p.expected_open { "open" } else { "closed" }
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_is_read_from_the_lines_before_its_exit_status() {
        assert_eq!(nvidia_smi("Tesla T4, 15360 MiB\nnvidia-smi exit 0\n{}"), Ok("Tesla T4, 15360 MiB".to_string()));
        assert_eq!(
            nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\nnvidia-smi exit 9\n{}"),
            Err("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.".to_string())
        );
        assert_eq!(nvidia_smi("{}"), Err("no answer".to_string()));
    }
}
