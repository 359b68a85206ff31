//! `create`: validate -> keys -> ensure ssh key -> ensure firewall -> find or create server ->
//! wait running -> record. Re-running resumes; a failure half-way deletes what this run created.

use anyhow::{anyhow, Context, Result};
use munero_provider::{
    trial_labels, Direction, FirewallRule, FirewallSpec, Labels, Protocol, Provider, ProviderError, ResourceKind,
    ServerInfo, ServerSpec, SshKeySpec,
};
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::cli::{CreateArgs, DockerSource, ProviderKind};
use crate::cloudinit::{self, UserDataInput};
use crate::error::usage;
use crate::keys::{self, KeyPair};
use crate::output::Report;
use crate::plan::{self, KeyRole, Step};
use crate::trial::{self, Keys, Trial};
use crate::{providers, validate, Ctx};

/// Everything create decided before touching a provider.
#[derive(Debug)]
pub struct Prepared {
    pub trial: Trial,
    pub login: KeyPair,
    pub host: KeyPair,
    pub reuse_keys: bool,
    pub existed: bool,
    pub user_data: String,
    pub user_data_redacted: String,
    pub labels: Labels,
    pub firewall: FirewallSpec,
    pub ssh_key: SshKeySpec,
    pub type_checked: bool,
}

pub async fn run(ctx: &Ctx, args: &CreateArgs) -> Result<Report> {
    validate::trial_name(&args.trial)?;
    let kind = args.provider.or(ctx.config.provider).ok_or_else(|| {
        usage("--provider is required (hetzner|aws|local|ssh), or set `provider` in munero.toml")
    })?;
    if kind == ProviderKind::Ssh {
        return crate::ssh_provider::create(ctx, args).await;
    }
    providers::ensure_available(kind)?;
    let provider: Option<Box<dyn Provider>> = if args.dry_run && providers::hetzner_token().is_none() {
        None
    } else {
        Some(providers::connect(kind)?)
    };
    // Before prepare: it reads the record and keys another run of this trial may be writing.
    let _lock = crate::lock::for_command(ctx, &args.trial, "create", args.dry_run)?;
    let prep = prepare(ctx, args, kind, provider.as_deref()).await?;
    let warnings = ctx.out.warn_all(validate::ssh_from_policy(&prep.trial.ssh_from, args.allow_ssh_from_anywhere)?);
    let steps = create_plan(ctx, &prep);

    if args.dry_run {
        let text = plan::render(&steps);
        ctx.out.progress(format!("Plan for trial {} (dry run: nothing is created):", prep.trial.name));
        if !prep.type_checked {
            ctx.out.progress("note: no HCLOUD_TOKEN, so the server type was not checked against the API");
        }
        let json = json!({
            "ok": true,
            "command": "create",
            "dry_run": true,
            "trial": prep.trial.name,
            "provider": prep.trial.provider,
            "server_type": prep.trial.server_type,
            "server_type_checked": prep.type_checked,
            "expires": prep.trial.expires,
            "expires_unix": prep.trial.expires_unix,
            "ssh_from": prep.trial.ssh_from,
            "plan": steps,
            "plan_text": text,
            "user_data_bytes": prep.user_data.len(),
            "user_data_limit": cloudinit::limit_for(&prep.trial.provider),
            "user_data": prep.user_data_redacted,
        });
        return Ok(Report::new(json, text).with_warnings(&warnings));
    }

    let provider = provider.expect("connected when not a dry run");
    execute(ctx, provider.as_ref(), prep, steps).await.map(|r| r.with_warnings(&warnings))
}

/// Validate every input and build the keys, user-data and specs. Creates nothing.
pub async fn prepare(ctx: &Ctx, args: &CreateArgs, kind: ProviderKind, provider: Option<&dyn Provider>) -> Result<Prepared> {
    let cfg = &ctx.config;
    let name = args.trial.clone();
    // When resuming, what the trial was created with fills in for flags not given again.
    let prior = ctx.store.load(&name)?;
    let was = |f: fn(&Trial) -> Option<String>| prior.as_ref().and_then(f).filter(|v| !v.is_empty());

    // Size and server type.
    let size = args.size.clone().or_else(|| was(|t| Some(t.size.clone()))).unwrap_or_else(|| "cpu".to_string());
    let gpu = size == "gpu";
    if gpu && kind == ProviderKind::Hetzner {
        return Err(usage(
            "--size gpu is not offered on Hetzner Cloud (no GPU server types); use --provider aws --size gpu, or --size cpu",
        ));
    }
    let server_type = match size.as_str() {
        "cpu" => cfg.hetzner.size_cpu.clone(),
        other => {
            validate::token("--size", other)?;
            other.to_string()
        }
    };
    let location = args.location.clone().or_else(|| was(|t| t.location.clone())).or_else(|| cfg.hetzner.location.clone());
    if let Some(l) = &location {
        validate::token("--location", l)?;
    }
    let image = args.image.clone().or_else(|| was(|t| Some(t.image.clone()))).unwrap_or_else(|| cfg.hetzner.image.clone());
    validate::token("--image", &image)?;

    // Expiry.
    let expires_at = match (&args.expires, args.days.or(cfg.days)) {
        (Some(e), _) => validate::expires(e, ctx.now)?,
        (None, d) => ctx.now + time::Duration::days(validate::days(d.unwrap_or(validate::DEFAULT_DAYS))?),
    };
    let mut expires_at = expires_at.replace_nanosecond(0).unwrap_or(expires_at);
    // A resumed trial keeps the expiry it was created with: its resources already carry it.
    if let Some(t) = prior.as_ref().filter(|t| t.expires_unix > 0) {
        if t.expires_unix != expires_at.unix_timestamp() && (args.days.is_some() || args.expires.is_some()) {
            ctx.out.progress(format!(
                "note: trial {name} exists; keeping its expiry {} (set when it was first created)",
                t.expires
            ));
        }
        expires_at = time::OffsetDateTime::from_unix_timestamp(t.expires_unix).unwrap_or(expires_at);
    }
    let expires_unix = expires_at.unix_timestamp();
    let expires_rfc = expires_at.format(&Rfc3339).unwrap_or_default();
    let expires_systemd = expires_at
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
        .unwrap_or_default();

    // Domain.
    let domain_arg = args.domain.clone().or_else(|| was(|t| t.domain.clone()));
    let domain = match (&domain_arg, &cfg.domain_pattern) {
        (Some(d), _) => Some(validate::fqdn(d)?),
        (None, Some(p)) => Some(validate::fqdn(&p.replace("{trial}", &name))?),
        (None, None) => None,
    };

    // Trusted CAs.
    let ca_paths = if args.trusted_ca.is_empty() { cfg.trusted_ca.clone() } else { args.trusted_ca.clone() };
    let trusted_cas = ca_paths.iter().map(|p| validate::trusted_ca(p)).collect::<Result<Vec<_>>>()?;

    let prior_docker = match was(|t| Some(t.docker_source.clone())).as_deref() {
        Some("distro") => Some(DockerSource::Distro),
        Some("upstream") => Some(DockerSource::Upstream),
        _ => None,
    };
    let docker_source = args.docker_source.or(prior_docker).or(cfg.docker_source).unwrap_or(DockerSource::Upstream);

    // Who may reach SSH.
    let prior_ssh_from = prior.as_ref().map(|t| t.ssh_from.clone()).unwrap_or_default();
    let mut ssh_from_in = if !args.ssh_from.is_empty() {
        args.ssh_from.clone()
    } else if !prior_ssh_from.is_empty() {
        prior_ssh_from
    } else {
        cfg.ssh_from.clone()
    };
    if ssh_from_in.is_empty() {
        ssh_from_in.push("auto".to_string());
    }
    let mut ssh_from = Vec::new();
    for s in &ssh_from_in {
        let c = if s == "auto" { crate::echo_ip::detect_public_cidr(&cfg.ip_echo_url()).await? } else { validate::cidr(s)? };
        if !ssh_from.contains(&c) {
            ssh_from.push(c);
        }
    }

    // Existing local record (resume) and keys.
    let existing = prior;
    if let Some(t) = &existing {
        if t.provider != kind.as_str() {
            return Err(usage(format!(
                "trial {name} already exists on provider {}; destroy it first or choose another name",
                t.provider
            )));
        }
    }

    // Provider-side checks (read only).
    let mut type_checked = false;
    if let Some(p) = provider {
        p.check_server_type(&server_type).await.map_err(|e| match e {
            ProviderError::Invalid(m) => usage(m),
            other => anyhow!(other).context("checking the server type"),
        })?;
        p.check_placement(&image, location.as_deref()).await.map_err(|e| match e {
            ProviderError::Invalid(m) => usage(m),
            other => anyhow!(other).context("checking the image and location"),
        })?;
        type_checked = true;
        if existing.is_none() {
            if let Some(s) = p.find_server(&name).await.context("looking for an existing server of the trial")? {
                return Err(anyhow!(
                    "trial {name} already has server {} at {} but no local record in {} (its keys are not here); \
                     use the state dir that created it, or run `munero-infra destroy {name} --yes` and create it again",
                    s.id,
                    p.name(),
                    ctx.store.root().display()
                ));
            }
        }
    }

    let dir = ctx.store.trial_dir(&name);
    let (login, host, reuse_keys) = match &existing {
        Some(t) if !t.keys.ssh_private_key.is_empty() && dir.join(&t.keys.host_private_key).exists() => {
            let login = keys::from_private(&ctx.store.read_file(&name, &t.keys.ssh_private_key)?)
                .context("reading the trial's login key")?;
            let host = keys::from_private(&ctx.store.read_file(&name, &t.keys.host_private_key)?)
                .context("reading the trial's host key")?;
            (login, host, true)
        }
        _ => (
            keys::generate_ed25519(&format!("munero-{name}"))?,
            keys::generate_ed25519(&format!("root@{name}"))?,
            false,
        ),
    };

    let input = UserDataInput {
        trial: name.clone(),
        provider: kind.as_str().to_string(),
        size: size.clone(),
        gpu,
        docker_source: docker_source.as_str().to_string(),
        expires_unix,
        expires_rfc3339: expires_rfc.clone(),
        expires_systemd,
        domain: domain.clone(),
        deploy_user: trial::DEPLOY_USER.to_string(),
        authorized_key: login.public_openssh.clone(),
        host_public_key: host.public_openssh.clone(),
        host_private_key: host.private_openssh.clone(),
        trusted_cas,
    };
    let user_data = cloudinit::render(&input)?;
    let user_data_redacted = cloudinit::render_redacted(&input)?;
    cloudinit::check_size(kind.as_str(), &user_data).map_err(|e| usage(e.to_string()))?;

    let labels = trial_labels(&name, expires_unix);
    let rname = trial::resource_name(&name);
    let firewall = FirewallSpec { name: rname.clone(), labels: labels.clone(), rules: firewall_rules(&ssh_from) };
    let ssh_key = SshKeySpec { name: rname, public_key: login.public_openssh.clone(), labels: labels.clone() };

    let mut t = existing.clone().unwrap_or_default();
    t.name = name.clone();
    t.provider = kind.as_str().to_string();
    t.size = size;
    t.gpu = gpu;
    t.server_type = server_type;
    t.location = location;
    t.image = image;
    t.docker_source = docker_source.as_str().to_string();
    if t.created_unix == 0 {
        t.created_unix = ctx.now.unix_timestamp();
    }
    t.expires_unix = expires_unix;
    t.expires = expires_rfc;
    t.domain = domain;
    t.ssh_from = ssh_from;
    t.ssh_user = trial::DEPLOY_USER.to_string();
    if t.state.is_empty() {
        t.state = "creating".into();
    }
    t.keys = Keys {
        ssh_private_key: trial::SSH_KEY_FILE.into(),
        ssh_public_key: format!("{}.pub", trial::SSH_KEY_FILE),
        ssh_key_fingerprint: login.fingerprint.clone(),
        host_private_key: trial::HOST_KEY_FILE.into(),
        host_public_key: format!("{}.pub", trial::HOST_KEY_FILE),
        host_key_fingerprint: host.fingerprint.clone(),
    };

    Ok(Prepared {
        trial: t,
        login,
        host,
        reuse_keys,
        existed: existing.is_some(),
        user_data,
        user_data_redacted,
        labels,
        firewall,
        ssh_key,
        type_checked,
    })
}

/// Inbound tcp 80 and 443 from anywhere, tcp 22 only from `ssh_from`; nothing else.
pub fn firewall_rules(ssh_from: &[String]) -> Vec<FirewallRule> {
    let any = vec!["0.0.0.0/0".to_string(), "::/0".to_string()];
    let rule = |port: &str, src: Vec<String>, d: &str| FirewallRule {
        direction: Direction::In,
        protocol: Protocol::Tcp,
        port: Some(port.into()),
        source_ips: src,
        description: d.into(),
    };
    vec![rule("80", any.clone(), "http"), rule("443", any, "https"), rule("22", ssh_from.to_vec(), "ssh from the operator")]
}

/// The ordered steps create walks (and `--dry-run` prints).
pub fn create_plan(ctx: &Ctx, p: &Prepared) -> Vec<Step> {
    let dir = ctx.store.trial_dir(&p.trial.name);
    vec![
        Step::GenerateKey { role: KeyRole::Login, path: dir.join(trial::SSH_KEY_FILE), reuse: p.reuse_keys },
        Step::GenerateKey { role: KeyRole::Host, path: dir.join(trial::HOST_KEY_FILE), reuse: p.reuse_keys },
        Step::EnsureSshKey { name: p.ssh_key.name.clone(), fingerprint: p.login.fingerprint.clone(), labels: p.labels.clone() },
        Step::EnsureFirewall { name: p.firewall.name.clone(), rules: p.firewall.rules.clone(), labels: p.labels.clone() },
        Step::EnsureServer {
            name: p.trial.name.clone(),
            server_type: p.trial.server_type.clone(),
            image: p.trial.image.clone(),
            location: p.trial.location.clone(),
            user_data_bytes: p.user_data.len(),
            labels: p.labels.clone(),
        },
        Step::WaitRunning { name: p.trial.name.clone() },
        Step::RecordTrial { path: dir.join(crate::store::RECORD_FILE) },
    ]
}

/// What this run changed at the provider, for clean-up after a failure.
#[derive(Default)]
struct Progress {
    created: Vec<(ResourceKind, String)>,
    ssh_key_id: Option<String>,
    firewall_id: Option<String>,
    firewall_created: bool,
    server: Option<ServerInfo>,
    /// Reached the server step without finding an existing server: any server of the trial
    /// found later was made by this run.
    server_ours: bool,
    wrote_local: bool,
}

async fn execute(ctx: &Ctx, p: &dyn Provider, prep: Prepared, steps: Vec<Step>) -> Result<Report> {
    let mut prog = Progress::default();
    let mut trial = prep.trial.clone();
    let total = steps.len();
    let mut resumed = false;
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] {}", i + 1, step.to_string().lines().next().unwrap_or("")));
        let r = run_step(ctx, p, &prep, &mut trial, step, &mut prog, &mut resumed).await;
        if let Err(e) = r {
            let cleanup = rollback(ctx, p, &prep, &prog).await;
            return Err(e.context(format!("create {} failed at step {}/{total} ({}); {cleanup}", trial.name, i + 1, step_name(step))));
        }
    }
    let server = prog.server.clone().unwrap_or_else(|| ServerInfo {
        id: String::new(),
        name: String::new(),
        ipv4: None,
        status: String::new(),
        labels: Labels::new(),
        server_type: String::new(),
        location: None,
    });
    let dir = ctx.store.trial_dir(&trial.name);
    let human = format!(
        "Trial {} is {} on {}: {} ({}), IPv4 {}, expires {}.\nSSH: ssh -i {} {}@{}  (host key {})",
        trial.name,
        if resumed { "running (resumed)" } else { "running" },
        trial.provider,
        server.name,
        trial.server_type,
        trial.ipv4.as_deref().unwrap_or("-"),
        trial.expires,
        dir.join(&trial.keys.ssh_private_key).display(),
        trial.ssh_user,
        trial.ipv4.as_deref().unwrap_or("-"),
        trial.keys.host_key_fingerprint,
    );
    let json = json!({
        "ok": true,
        "command": "create",
        "dry_run": false,
        "resumed": resumed,
        "trial": trial.name,
        "provider": trial.provider,
        "server_type": trial.server_type,
        "location": server.location,
        "image": trial.image,
        "ipv4": trial.ipv4,
        "state": trial.state,
        "expires": trial.expires,
        "expires_unix": trial.expires_unix,
        "domain": trial.domain,
        "ssh_from": trial.ssh_from,
        "resources": {
            "server_id": trial.resources.server_id,
            "firewall_id": trial.resources.firewall_id,
            "ssh_key_id": trial.resources.ssh_key_id,
        },
        "ssh": {
            "user": trial.ssh_user,
            "private_key_path": dir.join(&trial.keys.ssh_private_key),
            "key_fingerprint": trial.keys.ssh_key_fingerprint,
            "host_key_fingerprint": trial.keys.host_key_fingerprint,
            "host_public_key": prep.host.public_openssh,
        },
        "state_dir": dir,
        "plan": steps,
        "user_data_bytes": prep.user_data.len(),
        "user_data": prep.user_data_redacted,
    });
    Ok(Report::new(json, human))
}

fn step_name(s: &Step) -> &'static str {
    match s {
        Step::GenerateKey { .. } => "keys",
        Step::EnsureSshKey { .. } => "ssh key",
        Step::EnsureFirewall { .. } => "firewall",
        Step::EnsureServer { .. } => "server",
        Step::WaitRunning { .. } => "wait running",
        Step::RecordTrial { .. } => "record",
        Step::DeleteResource { .. } => "delete",
        Step::VerifyGone { .. } => "verify",
        Step::ForgetLocal { .. } => "forget",
    }
}

async fn run_step(
    ctx: &Ctx,
    p: &dyn Provider,
    prep: &Prepared,
    trial: &mut Trial,
    step: &Step,
    prog: &mut Progress,
    resumed: &mut bool,
) -> Result<()> {
    let name = trial.name.clone();
    match step {
        Step::GenerateKey { role, reuse, .. } => {
            if !*reuse {
                let (file, kp) = match role {
                    KeyRole::Login => (trial::SSH_KEY_FILE, &prep.login),
                    KeyRole::Host => (trial::HOST_KEY_FILE, &prep.host),
                };
                ctx.store.write_secret(&name, file, kp.private_openssh.as_bytes())?;
                ctx.store.write_secret(&name, &format!("{file}.pub"), format!("{}\n", kp.public_openssh).as_bytes())?;
            }
            if *role == KeyRole::Host {
                // The record exists from here on, so a later failure can be resumed or destroyed.
                ctx.store.save(trial)?;
                prog.wrote_local = !prep.existed;
            }
        }
        Step::EnsureSshKey { .. } => {
            let e = p.ensure_ssh_key(&prep.ssh_key).await.context("ensuring the ssh key")?;
            if e.created {
                prog.created.push((ResourceKind::SshKey, e.id.clone()));
            }
            ctx.out.progress(format!("      ssh key {} {}", e.id, if e.created { "created" } else { "found" }));
            trial.resources.ssh_key_id = Some(e.id.clone());
            prog.ssh_key_id = Some(e.id);
            ctx.store.save(trial)?;
        }
        Step::EnsureFirewall { .. } => {
            let e = p.ensure_firewall(&prep.firewall).await.context("ensuring the firewall")?;
            if e.created {
                prog.created.push((ResourceKind::Firewall, e.id.clone()));
            }
            ctx.out.progress(format!("      firewall {} {}", e.id, if e.created { "created" } else { "found, rules set" }));
            trial.resources.firewall_id = Some(e.id.clone());
            prog.firewall_created = e.created;
            prog.firewall_id = Some(e.id);
            ctx.store.save(trial)?;
        }
        Step::EnsureServer { .. } => {
            let fw = prog.firewall_id.clone().context("no firewall id")?;
            if let Some(s) = p.find_server(&name).await.context("looking for the trial's server")? {
                ctx.out.progress(format!("      server {} exists ({}): resuming", s.id, s.status));
                *resumed = true;
                p.attach_firewall(&fw, &s.id).await.context("attaching the firewall to the existing server")?;
                trial.resources.server_id = Some(s.id.clone());
                prog.server = Some(s);
            } else {
                prog.server_ours = true;
                let spec = ServerSpec {
                    name: name.clone(),
                    server_type: trial.server_type.clone(),
                    image: trial.image.clone(),
                    location: trial.location.clone(),
                    user_data: prep.user_data.clone(),
                    labels: prep.labels.clone(),
                    ssh_key_ids: vec![prep.ssh_key.name.clone()],
                    firewall_ids: vec![fw],
                };
                let s = p.create_server(&spec).await.context("creating the server")?;
                ctx.out.progress(format!("      server {} created", s.id));
                prog.created.push((ResourceKind::Server, s.id.clone()));
                trial.resources.server_id = Some(s.id.clone());
                prog.server = Some(s);
            }
            ctx.store.save(trial)?;
        }
        Step::WaitRunning { .. } => {
            let id = prog.server.as_ref().map(|s| s.id.clone()).context("no server id")?;
            let s = p.wait_running(&id).await.context("waiting for the server to run")?;
            trial.ipv4 = s.ipv4.clone();
            trial.state = s.status.clone();
            if trial.location.is_none() {
                trial.location = s.location.clone();
            }
            ctx.out.progress(format!("      running, IPv4 {}", s.ipv4.as_deref().unwrap_or("-")));
            prog.server = Some(s);
        }
        Step::RecordTrial { .. } => {
            ctx.store.save(trial)?;
        }
        other => return Err(anyhow!("create cannot run step {other}")),
    }
    Ok(())
}

/// Delete what this run created, newest first. Returns a sentence for the error message.
async fn rollback(ctx: &Ctx, p: &dyn Provider, prep: &Prepared, prog: &Progress) -> String {
    let mut targets: Vec<(ResourceKind, String)> = Vec::new();
    if prog.server_ours {
        // The server may exist even when its create call failed (action error, lost answer).
        match p.find_server(&prep.trial.name).await {
            Ok(Some(s)) => targets.push((ResourceKind::Server, s.id)),
            Ok(None) => {}
            Err(e) => {
                return format!(
                    "could not check for a half-made server ({e}); anything left is labelled munero-trial={}: \
                     run `munero-infra destroy {} --yes`",
                    prep.trial.name, prep.trial.name
                )
            }
        }
    }
    for (k, id) in prog.created.iter().rev() {
        if *k != ResourceKind::Server && !targets.contains(&(*k, id.clone())) {
            targets.push((*k, id.clone()));
        }
    }
    if targets.is_empty() {
        if prog.wrote_local {
            let _ = ctx.store.remove(&prep.trial.name);
        }
        return "this run created nothing at the provider".into();
    }
    let mut deleted = Vec::new();
    let mut left = Vec::new();
    for (k, id) in &targets {
        ctx.out.progress(format!("      cleaning up: deleting {k} {id}"));
        match p.delete_resource(*k, id).await {
            Ok(()) => deleted.push(format!("{k} {id}")),
            Err(e) => left.push(format!("{k} {id} ({e})")),
        }
    }
    if left.is_empty() {
        if prog.wrote_local {
            let _ = ctx.store.remove(&prep.trial.name);
        }
        let earlier = if prep.existed { " (resources from an earlier run are kept: re-run create to resume)" } else { "" };
        format!("deleted what this run created: {}{earlier}", deleted.join(", "))
    } else {
        format!(
            "deleted {}; could NOT delete {}: they stay labelled munero-trial={} so `munero-infra destroy {} --yes` removes them",
            if deleted.is_empty() { "nothing".to_string() } else { deleted.join(", ") },
            left.join(", "),
            prep.trial.name,
            prep.trial.name
        )
    }
}
