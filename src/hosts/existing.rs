//! A host that already exists (a client's VPS, bare metal), docker-machine's `generic` driver:
//! "create" pins the host key the operator vouches for and proves it by logging in; "destroy"
//! wipes the client data, takes the stack down, removes exactly what deploy put there (its
//! manifest) and forgets the record. An unreachable host is a failure, never a silent forget.

use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use munero_provider::{ProviderKind, ServerInfo};
use serde_json::json;

use crate::config::Config;
use crate::ctx::Ctx;
use crate::deploy::manifest;
use crate::error::usage;
use crate::hosts::lifecycle::{plan_teardown_by_records, teardown_each, CreatePlan, Host, TeardownOutcome, TeardownPlan};
use crate::output::Report;
use crate::plan::create::CreateStep;
use crate::plan::destroy::DestroyStep;
use crate::plan::teardown::TeardownStep;
use crate::remote;
use crate::resolve::{CreateRequest, Defaults};
use crate::ssh::{hostkey, ConnectOptions, Echo, RemoteCmd, Session, Target};
use crate::trial::{Keys, Trial};
use crate::validate;

pub const PINNED_HOST_KEY_FILE: &str = "pinned_host_key.pub";

pub struct ExistingHost;

struct Prepared {
    target: Target,
    host_key_line: String,
}

/// Is `docker compose` (or `docker-compose`) there? Prints its version, nothing when missing.
fn docker_check_cmd() -> RemoteCmd {
    RemoteCmd::shell("docker compose version --short 2>/dev/null || docker-compose version --short 2>/dev/null || true")
}

#[async_trait]
impl Host for ExistingHost {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Ssh
    }

    fn boots_our_cloud_init(&self) -> bool {
        false
    }

    fn defaults(&self, _cfg: &Config) -> Defaults {
        Defaults { cpu: "existing host".into(), gpu: Ok("existing host".into()), image: String::new(), location: None, subnets: false, firewall: false,
                   docker_source: crate::cloudinit::DockerSource::Upstream, user_data_limit: 0, user_data_gzip: false, public_address: true }
    }

    async fn plan_create(&self, ctx: &Ctx, req: &CreateRequest) -> Result<CreatePlan> {
        let h = &req.existing;
        let host = h
            .host
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| usage("--provider ssh needs --host HOST (and --host-key PUBKEYFILE)"))?;
        let key_file = h.host_key.clone().ok_or_else(|| {
            usage("--provider ssh needs --host-key PUBKEYFILE: the host key is pinned, never trusted on first use")
        })?;
        let host_key =
            hostkey::load_pinned(&key_file).map_err(|e| usage(format!("--host-key {}: {e:#}", key_file.display())))?;
        let identity = match &h.identity {
            Some(p) => {
                let abs = std::fs::canonicalize(p).map_err(|_| usage(format!("--identity {}: no such file", p.display())))?;
                russh::keys::load_secret_key(&abs, None)
                    .map_err(|e| usage(format!("--identity {}: not a usable private key ({e})", p.display())))?;
                Some(abs)
            }
            None => None,
        };
        let user = h.user.clone().unwrap_or_else(|| crate::trial::DEPLOY_USER.to_string());
        let port = h.port.unwrap_or(22);
        let remote_dir = validate::remote_dir(h.remote_dir.as_deref().unwrap_or(remote::DEFAULT_REMOTE_DIR), &user)?;
        let fp = hostkey::fingerprint(&host_key);
        let dir = ctx.store.trial_dir(&req.name);
        let target = Target { host: host.clone(), port, user: user.clone(), identity: identity.clone(), host_key: host_key.clone() };
        let trial = Trial {
            name: req.name.clone(),
            provider: ProviderKind::Ssh,
            size: if req.size == "cpu" { "existing".into() } else { req.size.clone() },
            gpu: req.gpu,
            server_type: "existing host".into(),
            created_unix: ctx.now.unix_timestamp(),
            expires_unix: req.expires_unix(),
            expires: req.expires_rfc3339(),
            domain: req.domain.clone(),
            domain_auto: req.domain_auto.clone(),
            tls: Some(req.tls),
            dns: None,
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
        let steps = vec![
            CreateStep::PinHostKey { fingerprint: fp.clone(), from: key_file, to: dir.join(PINNED_HOST_KEY_FILE) },
            CreateStep::VerifyLogin {
                target: target.display(),
                with: identity.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the ssh-agent".into()),
                cmd: docker_check_cmd(),
            },
            CreateStep::RecordTrial { path: dir.join(crate::store::RECORD_FILE) },
        ];
        let details = json!({"host": host, "port": port, "user": user, "host_key_fingerprint": fp,
                              "remote_dir": remote_dir, "expires": trial.expires, "expires_unix": trial.expires_unix});
        let prepared = Prepared { target, host_key_line: format!("{}\n", host_key.to_openssh()?) };
        Ok(CreatePlan { trial, steps, details, notes: vec![], prepared: Box::new(prepared) })
    }

    async fn create(&self, ctx: &Ctx, plan: CreatePlan) -> Result<Report> {
        let prep = plan.prepared.downcast::<Prepared>().map_err(|_| anyhow!("an existing host needs its own plan"))?;
        let trial = plan.trial;
        let existed = ctx.store.exists(&trial.name);
        let total = plan.steps.len();
        let mut docker_version = String::new();
        for (i, step) in plan.steps.iter().enumerate() {
            ctx.out.progress(format!("[{}/{total}] {}", i + 1, crate::plan::headline(step)));
            let r: Result<()> = async {
                match step {
                    CreateStep::PinHostKey { .. } => {
                        ctx.store.ensure_dir(&trial.name)?;
                        ctx.store.write_secret(&trial.name, PINNED_HOST_KEY_FILE, prep.host_key_line.as_bytes())?;
                    }
                    CreateStep::VerifyLogin { cmd, .. } => {
                        let s = Session::connect(&prep.target, &ConnectOptions::default()).await?;
                        let out = s.exec(cmd).await;
                        s.close().await;
                        docker_version = out?.stdout_str().trim().to_string();
                        if docker_version.is_empty() {
                            ctx.out.progress("warning: no docker compose on the host yet; deploy needs Docker Engine + Compose v2 there");
                        }
                    }
                    CreateStep::RecordTrial { .. } => {
                        ctx.store.save(&trial)?;
                    }
                    other => return Err(anyhow!("an existing host has no create step {}", other.name())),
                }
                Ok(())
            }
            .await;
            if let Err(e) = r {
                if !existed {
                    let _ = ctx.store.remove(&trial.name);
                }
                return Err(e.context(format!("create {} failed at step {}/{total} ({}); nothing was kept", trial.name, i + 1, step.name())));
            }
        }
        let mut json = plan.details;
        json["ok"] = json!(true);
        json["command"] = json!("create");
        json["provider"] = json!(ProviderKind::Ssh);
        json["trial"] = json!(trial.name);
        json["docker_compose"] = json!(docker_version);
        json["record"] = json!(ctx.store.trial_dir(&trial.name).join(crate::store::RECORD_FILE));
        json["plan"] = json!(plan.steps);
        let rd = remote::remote_dir(&trial);
        Ok(Report::new(
            json,
            format!(
                "Trial {} registers {} (host key {}); stack directory {rd}; expires {}.\nNext: munero-infra deploy {}",
                trial.name,
                prep.target.display(),
                trial.keys.host_key_fingerprint,
                trial.expires,
                trial.name
            ),
        ))
    }

    async fn plan_destroy(&self, ctx: &Ctx, trial: &str, record: Option<&Trial>) -> Result<Vec<DestroyStep>> {
        let t = record.ok_or_else(|| usage(format!("no trial named {trial} in {}", ctx.store.root().display())))?;
        let rd = remote::remote_dir(t);
        let host = remote::ssh_host(t)?;
        Ok(vec![
            DestroyStep::OnHost { host: host.clone(), what: "wipe the client data".into(), cmd: manifest::wipe_if_deployed_cmd(&rd, t.gpu), skip_if_unreachable: false },
            DestroyStep::OnHost {
                host,
                what: "take the stack down and remove what deploy put there (its manifest), nothing else".into(),
                cmd: manifest::remove_ours_cmd(&rd, t.gpu),
                skip_if_unreachable: false,
            },
            DestroyStep::ForgetLocal { trial: trial.to_string(), path: ctx.store.trial_dir(trial) },
        ])
    }

    async fn destroy(&self, ctx: &Ctx, steps: &[DestroyStep]) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let mut sess: Option<Session> = None;
        let mut unreachable = false;
        let total = steps.len();
        for (i, step) in steps.iter().enumerate() {
            ctx.out.progress(format!("[{}/{total}] {}", i + 1, crate::plan::headline(step)));
            match step {
                DestroyStep::OnHost { what, cmd, skip_if_unreachable, .. } => {
                    if sess.is_none() && !unreachable {
                        let t = remote::load_trial(ctx, trial_of(steps).unwrap_or_default())?;
                        match remote::connect(ctx, &t).await {
                            Ok(s) => sess = Some(s),
                            Err(e) if *skip_if_unreachable => {
                                ctx.out.progress(format!(
                                    "warning: {e:#}; --forget: the host is not touched, and the client data may still be on it"
                                ));
                                unreachable = true;
                            }
                            Err(e) => {
                                return Err(anyhow!(
                                    "{e:#}\nthe host cannot be reached, so the client data may still be on it; the record is kept: \
                                     run destroy again when the host answers, or `munero-infra destroy {} --yes --forget` to drop the record anyway",
                                    t.name
                                ))
                            }
                        }
                    }
                    let Some(s) = sess.as_ref() else {
                        done.push(format!("skipped (host unreachable): {what}"));
                        continue;
                    };
                    s.run_with(cmd, None::<tokio::io::Empty>, Echo::Progress).await.with_context(|| what.clone())?;
                    done.push(what.clone());
                }
                DestroyStep::ForgetLocal { trial, .. } => {
                    ctx.store.remove(trial)?;
                    done.push("local record forgotten".into());
                }
                other => return Err(anyhow!("an existing host has no destroy step {other}")),
            }
        }
        if let Some(s) = sess {
            s.close().await;
        }
        Ok(done)
    }

    async fn plan_teardown(&self, ctx: &Ctx, at_unix: i64) -> Result<TeardownPlan> {
        plan_teardown_by_records(self, ctx, at_unix).await
    }

    async fn teardown(&self, ctx: &Ctx, steps: &[TeardownStep]) -> TeardownOutcome {
        teardown_each(self, ctx, steps).await
    }

    async fn servers(&self, _ctx: &Ctx) -> Result<Option<Vec<ServerInfo>>> {
        Ok(None)
    }
}

fn trial_of(steps: &[DestroyStep]) -> Option<&str> {
    steps.iter().find_map(|s| match s {
        DestroyStep::ForgetLocal { trial, .. } => Some(trial.as_str()),
        _ => None,
    })
}
