//! Create on a cloud: keys -> ssh key -> firewall -> find or create the server -> wait running ->
//! record. Re-running resumes; a failure half-way deletes what this run created.

use anyhow::{anyhow, Context, Result};
use munero_provider::{
    trial_labels, Direction, FirewallRule, FirewallSpec, Labels, Protocol, Provider, ProviderError, ResourceKind,
    ServerInfo, ServerSpec, SshKeySpec,
};
use serde_json::json;

use crate::hosts::provision::{self, TrialKeys, UserData};
use crate::ctx::Ctx;
use crate::error::usage;
use crate::hosts::lifecycle::CreatePlan;
use crate::output::Report;
use crate::plan::create::{CreateStep, KeyRole};
use crate::resolve::CreateRequest;
use crate::trial::{self, Trial};

/// What the steps need besides the record: keys and user-data (secret) and the specs.
pub struct Prepared {
    keys: TrialKeys,
    existed: bool,
    user_data: UserData,
    labels: Labels,
    firewall: FirewallSpec,
    ssh_key: SshKeySpec,
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

/// Read-only checks at the provider (when connected), keys, user-data, specs and steps.
pub async fn plan(ctx: &Ctx, api: Option<&dyn Provider>, req: &CreateRequest, user_data_limit: usize, gzip: bool) -> Result<CreatePlan> {
    let name = req.name.clone();
    let kind = req.kind;
    let mut notes = Vec::new();
    crate::validate::token("--image", &req.image)?;
    if let Some(p) = api {
        p.check_server_type(&req.server_type).await.map_err(|e| match e {
            ProviderError::Invalid(m) => usage(m),
            other => anyhow!(other).context("checking the server type"),
        })?;
        p.check_placement(&req.image, req.location.as_deref()).await.map_err(|e| match e {
            ProviderError::Invalid(m) => usage(m),
            other => anyhow!(other).context("checking the image and location"),
        })?;
        if let Some(s) = &req.subnet {
            p.check_subnet(s, req.location.as_deref()).await.map_err(|e| match e {
                ProviderError::Invalid(m) => usage(m),
                other => anyhow!(other).context("checking the subnet"),
            })?;
        }
        if req.prior.is_none() {
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
    } else {
        notes.push(format!("note: no credentials for {kind}, so the server type was not checked against the API"));
    }

    let dir = ctx.store.trial_dir(&name);
    let keys = TrialKeys::for_request(ctx, req)?;
    let user_data = provision::user_data(req, kind, &keys, user_data_limit, gzip)?;

    let labels = trial_labels(&name, req.expires_unix());
    let rname = trial::resource_name(&name);
    let firewall = FirewallSpec { name: rname.clone(), labels: labels.clone(), rules: firewall_rules(&req.ssh_from), subnet: req.subnet.clone() };
    let ssh_key = SshKeySpec { name: rname, public_key: keys.login.public_openssh.clone(), labels: labels.clone() };

    let t = provision::record(ctx, req, &keys);

    let mut steps: Vec<CreateStep> = keys.steps(ctx, &name).into();
    steps.extend([
        CreateStep::EnsureSshKey { name: ssh_key.name.clone(), fingerprint: keys.login.fingerprint.clone(), labels: labels.clone() },
        CreateStep::EnsureFirewall { name: firewall.name.clone(), rules: firewall.rules.clone(), labels: labels.clone(), subnet: t.subnet.clone() },
        CreateStep::EnsureServer {
            name: name.clone(),
            server_type: t.server_type.clone(),
            image: t.image.clone(),
            location: t.location.clone(),
            subnet: t.subnet.clone(),
            user_data_bytes: user_data.text.len(),
            labels: labels.clone(),
        },
        CreateStep::WaitRunning { name: name.clone() },
    ]);
    steps.extend(super::dns::plan(api, req, &labels, &mut notes).await?);
    steps.push(CreateStep::RecordTrial { path: dir.join(crate::store::RECORD_FILE) });
    let details = json!({
        "server_type": t.server_type,
        "server_type_checked": api.is_some(),
        "expires": t.expires,
        "expires_unix": t.expires_unix,
        "ssh_from": t.ssh_from,
        "user_data_bytes": user_data.text.len(),
        "user_data_limit": user_data_limit,
        "user_data": user_data.redacted,
    });
    let prepared = Prepared {
        keys,
        existed: req.prior.is_some(),
        user_data,
        labels,
        firewall,
        ssh_key,
    };
    Ok(CreatePlan { trial: t, steps, details, notes, prepared: Box::new(prepared) })
}

/// What this run changed at the provider, for clean-up after a failure.
#[derive(Default)]
struct Progress {
    created: Vec<(ResourceKind, String)>,
    firewall_id: Option<String>,
    server: Option<ServerInfo>,
    /// Reached the server step without finding an existing server: any server of the trial
    /// found later was made by this run.
    server_ours: bool,
    wrote_local: bool,
    resumed: bool,
}

pub async fn execute(ctx: &Ctx, p: &dyn Provider, plan: CreatePlan) -> Result<Report> {
    let prep = plan.prepared.downcast::<Prepared>().map_err(|_| anyhow!("a cloud create needs a cloud plan"))?;
    let steps = plan.steps;
    let mut trial = plan.trial;
    let mut prog = Progress::default();
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{total}] {}", i + 1, crate::plan::headline(step)));
        if let Err(e) = run_step(ctx, p, &prep, &mut trial, step, &mut prog).await {
            let cleanup = rollback(ctx, p, &prep, &trial.name, &prog).await;
            return Err(e.context(format!("create {} failed at step {}/{total} ({}); {cleanup}", trial.name, i + 1, step.name())));
        }
    }
    let dir = ctx.store.trial_dir(&trial.name);
    let (server_name, location) = prog.server.as_ref().map(|s| (s.name.clone(), s.location.clone())).unwrap_or_default();
    let human = format!(
        "Trial {} is {} on {}: {} ({}), IPv4 {}, expires {}.\nSSH: ssh -i {} {}@{}  (host key {})",
        trial.name,
        if prog.resumed { "running (resumed)" } else { "running" },
        trial.provider,
        server_name,
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
        "resumed": prog.resumed,
        "trial": trial.name,
        "provider": trial.provider,
        "server_type": trial.server_type,
        "location": location,
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
            "host_public_key": prep.keys.host.public_openssh,
        },
        "state_dir": dir,
        "plan": steps,
        "user_data_bytes": prep.user_data.text.len(),
        "user_data": prep.user_data.redacted,
    });
    Ok(Report::new(json, human))
}

async fn run_step(
    ctx: &Ctx,
    p: &dyn Provider,
    prep: &Prepared,
    trial: &mut Trial,
    step: &CreateStep,
    prog: &mut Progress,
) -> Result<()> {
    let name = trial.name.clone();
    match step {
        CreateStep::GenerateKey { role, .. } => {
            prep.keys.write(ctx, trial, *role)?;
            if *role == KeyRole::Host {
                prog.wrote_local = !prep.existed;
            }
        }
        CreateStep::EnsureSshKey { .. } => {
            let e = p.ensure_ssh_key(&prep.ssh_key).await.context("ensuring the ssh key")?;
            if e.created {
                prog.created.push((ResourceKind::SshKey, e.id.clone()));
            }
            ctx.out.progress(format!("      ssh key {} {}", e.id, if e.created { "created" } else { "found" }));
            trial.resources.ssh_key_id = Some(e.id);
            ctx.store.save(trial)?;
        }
        CreateStep::EnsureFirewall { .. } => {
            let e = p.ensure_firewall(&prep.firewall).await.context("ensuring the firewall")?;
            if e.created {
                prog.created.push((ResourceKind::Firewall, e.id.clone()));
            }
            ctx.out.progress(format!("      firewall {} {}", e.id, if e.created { "created" } else { "found, rules set" }));
            trial.resources.firewall_id = Some(e.id.clone());
            prog.firewall_id = Some(e.id);
            ctx.store.save(trial)?;
        }
        CreateStep::EnsureServer { .. } => {
            let fw = prog.firewall_id.clone().context("no firewall id")?;
            if let Some(s) = p.find_server(&name).await.context("looking for the trial's server")? {
                ctx.out.progress(format!("      server {} exists ({}): resuming", s.id, s.status));
                prog.resumed = true;
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
                    subnet: trial.subnet.clone(),
                    user_data: prep.user_data.text.clone(),
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
        CreateStep::WaitRunning { .. } => {
            let id = prog.server.as_ref().map(|s| s.id.clone()).context("no server id")?;
            let s = p.wait_running(&id).await.context("waiting for the server to run")?;
            trial.ipv4 = s.ipv4.clone();
            trial.ipv6 = s.ipv6.clone();
            trial.state = s.status.clone();
            if trial.location.is_none() {
                trial.location = s.location.clone();
            }
            ctx.out.progress(format!("      running, IPv4 {}", s.ipv4.as_deref().unwrap_or("-")));
            prog.server = Some(s);
        }
        CreateStep::EnsureDnsRecord { .. } => {
            let ip = trial.ipv4.clone().context("the server has no IPv4 for its DNS record")?;
            let mut want = vec![("A", ip)];
            want.extend(trial.ipv6.clone().map(|v6| ("AAAA", v6)));
            for (rtype, value) in want {
                if let Some(id) = super::dns::ensure(ctx, p, &name, step, rtype, &value).await? {
                    prog.created.push((ResourceKind::DnsRecord, id));
                }
            }
        }
        CreateStep::WaitDns { fqdn, nameservers, timeout_s } => {
            let ip = trial.ipv4.clone().context("the server has no IPv4")?;
            super::dns::wait(ctx, fqdn, nameservers, &ip, std::time::Duration::from_secs(*timeout_s)).await?;
        }
        CreateStep::RecordTrial { .. } => {
            ctx.store.save(trial)?;
        }
        other => return Err(anyhow!("a cloud create has no step {}", other.name())),
    }
    Ok(())
}

/// Delete what this run created, newest first. Returns a sentence for the error message.
async fn rollback(ctx: &Ctx, p: &dyn Provider, prep: &Prepared, trial: &str, prog: &Progress) -> String {
    let mut targets: Vec<(ResourceKind, String)> = Vec::new();
    if prog.server_ours {
        // The server may exist even when its create call failed (action error, lost answer).
        match p.find_server(trial).await {
            Ok(Some(s)) => targets.push((ResourceKind::Server, s.id)),
            Ok(None) => {}
            Err(e) => {
                return format!(
                    "could not check for a half-made server ({e}); anything left is labelled munero-trial={trial}: \
                     run `munero-infra destroy {trial} --yes`"
                )
            }
        }
    }
    for (k, id) in prog.created.iter().rev() {
        if *k != ResourceKind::Server && !targets.contains(&(*k, id.clone())) {
            targets.push((*k, id.clone()));
        }
    }
    let forget = || {
        if prog.wrote_local {
            let _ = ctx.store.remove(trial);
        }
    };
    if targets.is_empty() {
        forget();
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
        forget();
        let earlier = if prep.existed { " (resources from an earlier run are kept: re-run create to resume)" } else { "" };
        format!("deleted what this run created: {}{earlier}", deleted.join(", "))
    } else {
        format!(
            "deleted {}; could NOT delete {}: they stay labelled munero-trial={trial} so `munero-infra destroy {trial} --yes` removes them",
            if deleted.is_empty() { "nothing".to_string() } else { deleted.join(", ") },
            left.join(", "),
        )
    }
}
