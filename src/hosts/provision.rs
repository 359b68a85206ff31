//! What every VM we boot gets, cloud or local: its login and host keys (made once, reused when
//! a create resumes), the cloud-init input built from them, and the keys written 0600.

use anyhow::{Context, Result};
use munero_provider::ProviderKind;

use crate::cloudinit::{self, UserDataInput};
use crate::ctx::Ctx;
use crate::error::usage;
use crate::keys::{self, KeyPair};
use crate::plan::create::{CreateStep, KeyRole};
use crate::resolve::CreateRequest;
use crate::trial::{self, Keys, Trial};

/// The trial's keys: those of its earlier record when resuming, else new ones.
pub struct TrialKeys {
    pub login: KeyPair,
    pub host: KeyPair,
    pub reused: bool,
}

impl TrialKeys {
    pub fn for_request(ctx: &Ctx, req: &CreateRequest) -> Result<TrialKeys> {
        let name = &req.name;
        let dir = ctx.store.trial_dir(name);
        Ok(match &req.prior {
            Some(t) if !t.keys.ssh_private_key.is_empty() && dir.join(&t.keys.host_private_key).exists() => TrialKeys {
                login: keys::from_private(&ctx.store.read_file(name, &t.keys.ssh_private_key)?)
                    .context("reading the trial's login key")?,
                host: keys::from_private(&ctx.store.read_file(name, &t.keys.host_private_key)?)
                    .context("reading the trial's host key")?,
                reused: true,
            },
            _ => TrialKeys {
                login: keys::generate_ed25519(&format!("munero-{name}"))?,
                host: keys::generate_ed25519(&format!("root@{name}"))?,
                reused: false,
            },
        })
    }

    /// The record's key entries (file names relative to the trial directory).
    pub fn record(&self) -> Keys {
        Keys {
            ssh_private_key: trial::SSH_KEY_FILE.into(),
            ssh_public_key: format!("{}.pub", trial::SSH_KEY_FILE),
            ssh_key_fingerprint: self.login.fingerprint.clone(),
            host_private_key: trial::HOST_KEY_FILE.into(),
            host_public_key: format!("{}.pub", trial::HOST_KEY_FILE),
            host_key_fingerprint: self.host.fingerprint.clone(),
        }
    }

    /// The two key steps that open every create plan.
    pub fn steps(&self, ctx: &Ctx, trial: &str) -> [CreateStep; 2] {
        let dir = ctx.store.trial_dir(trial);
        [
            CreateStep::GenerateKey { role: KeyRole::Login, path: dir.join(trial::SSH_KEY_FILE), reuse: self.reused },
            CreateStep::GenerateKey { role: KeyRole::Host, path: dir.join(trial::HOST_KEY_FILE), reuse: self.reused },
        ]
    }

    /// Run one key step: write the key (unless reused) 0600; after the host key the record is
    /// saved, so a later failure can be resumed or destroyed.
    pub fn write(&self, ctx: &Ctx, trial: &Trial, role: KeyRole) -> Result<()> {
        if !self.reused {
            let (file, kp) = match role {
                KeyRole::Login => (trial::SSH_KEY_FILE, &self.login),
                KeyRole::Host => (trial::HOST_KEY_FILE, &self.host),
            };
            ctx.store.write_secret(&trial.name, file, kp.private_openssh.as_bytes())?;
            ctx.store.write_secret(&trial.name, &format!("{file}.pub"), format!("{}\n", kp.public_openssh).as_bytes())?;
        }
        if role == KeyRole::Host {
            ctx.store.save(trial)?;
        }
        Ok(())
    }
}

/// The trial record a create writes, from the request (over the earlier record when resuming):
/// what every kind of host records alike; each adds its own (addresses, resources, VM).
pub fn record(ctx: &Ctx, req: &CreateRequest, keys: &TrialKeys) -> Trial {
    let mut t = req.prior.clone().unwrap_or_default();
    t.name = req.name.clone();
    t.provider = req.kind;
    t.size = req.size.clone();
    t.gpu = req.gpu;
    t.server_type = req.server_type.clone();
    t.location = req.location.clone();
    t.subnet = req.subnet.clone();
    t.image = req.image.clone();
    t.docker_source = req.docker_source.as_str().to_string();
    if t.created_unix == 0 {
        t.created_unix = ctx.now.unix_timestamp();
    }
    t.expires_unix = req.expires_unix();
    t.expires = req.expires_rfc3339();
    t.domain = req.domain.clone();
    t.domain_auto = req.domain_auto.clone();
    t.tls = Some(req.tls);
    t.dns = req.dns;
    t.ssh_from = req.ssh_from.clone();
    t.ssh_user = trial::DEPLOY_USER.to_string();
    if t.state.is_empty() {
        t.state = "creating".into();
    }
    t.keys = keys.record();
    t
}

/// The rendered user-data (secret: holds the host private key) and its redacted form, checked
/// against the provider's limit.
pub struct UserData {
    pub text: String,
    pub redacted: String,
}

pub fn user_data(req: &CreateRequest, kind: ProviderKind, keys: &TrialKeys, limit: usize, gzip: bool) -> Result<UserData> {
    let input = UserDataInput {
        trial: req.name.clone(),
        provider: kind.as_str().to_string(),
        size: req.size.clone(),
        gpu: req.gpu,
        docker_source: req.docker_source.as_str().to_string(),
        expires_unix: req.expires_unix(),
        expires_rfc3339: req.expires_rfc3339(),
        expires_systemd: req.expires_systemd(),
        wipe_grace_s: crate::resolve::WIPE_GRACE_S,
        wipe_at_systemd: req.systemd_at(req.expires_unix() + crate::resolve::WIPE_GRACE_S),
        domain: req.domain.clone(),
        deploy_user: trial::DEPLOY_USER.to_string(),
        authorized_key: keys.login.public_openssh.clone(),
        host_public_key: keys.host.public_openssh.clone(),
        host_private_key: keys.host.private_openssh.clone(),
        trusted_cas: req.trusted_cas.clone(),
    };
    let text = cloudinit::render(&input)?;
    let redacted = cloudinit::render_redacted(&input)?;
    let checked = if gzip { cloudinit::check_size_gzipped(limit, &text) } else { cloudinit::check_size(limit, &text) };
    checked.map_err(|e| usage(e.to_string()))?;
    Ok(UserData { text, redacted })
}
