//! Snapshots at a cloud: the trial's server imaged and labelled like the trial (plus when it was
//! taken), and restore: the server made again from the latest one, with the trial's key, its
//! firewall and its pinned host key.

use anyhow::{anyhow, Context, Result};
use munero_provider::{trial_labels, Provider, ProviderKind, Resource, ResourceKind, ServerSpec, LABEL_CREATED};
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::usage;
use crate::hosts::resources;
use crate::plan::create::CreateStep;
use crate::plan::snapshot::{RestoreStep, SnapshotStep};
use crate::timefmt::rfc3339;
use crate::trial::Trial;

/// A snapshot as `status` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub created: Option<String>,
}

impl Snapshot {
    pub fn of(r: &Resource) -> Snapshot {
        let created = r.labels.get(LABEL_CREATED).and_then(|c| c.parse().ok()).map(rfc3339);
        Snapshot { id: r.id.clone(), name: r.name.clone(), created }
    }
}

/// The snapshots under `status`'s table, one line each (empty when there are none).
pub fn listing<'a>(all: impl Iterator<Item = (ProviderKind, &'a str, &'a Snapshot)>) -> String {
    let lines: Vec<String> = all
        .map(|(p, trial, s)| format!("  {p} {trial}: snapshot {:?} (id {}), taken {}", s.name, s.id, s.created.as_deref().unwrap_or("?")))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!("\nSnapshots:\n{}", lines.join("\n"))
    }
}

pub async fn plan(p: &dyn Provider, kind: ProviderKind, t: &Trial, description: &str, created_unix: i64) -> Result<Vec<SnapshotStep>> {
    let s = p
        .find_server(&t.name)
        .await?
        .ok_or_else(|| usage(format!("trial {} has no server at {kind} to snapshot; `munero-infra status {}` shows it", t.name, t.name)))?;
    let mut labels = trial_labels(&t.name, t.expires_unix);
    labels.insert(LABEL_CREATED.into(), created_unix.to_string());
    Ok(vec![SnapshotStep::Take { provider: kind, server_id: s.id, server: s.name, description: description.to_string(), labels }])
}

pub async fn take(ctx: &Ctx, p: &dyn Provider, steps: &[SnapshotStep]) -> Result<Resource> {
    let mut made = None;
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{}] {}", i + 1, steps.len(), crate::plan::headline(step)));
        let SnapshotStep::Take { server_id, description, labels, .. } = step;
        let r = p.create_snapshot(server_id, description, labels).await.context("taking the snapshot")?;
        ctx.out.progress(format!("      snapshot {} ({}) available", r.id, r.name));
        made = Some(r);
    }
    made.ok_or_else(|| anyhow!("the snapshot plan had no step"))
}

/// The trial's latest snapshot by its `munero-created` label (then by id).
pub fn latest(rs: &[Resource]) -> Option<&Resource> {
    rs.iter().filter(|r| r.kind == ResourceKind::Snapshot).max_by_key(|r| {
        let created: i64 = r.labels.get(LABEL_CREATED).and_then(|v| v.parse().ok()).unwrap_or(0);
        (created, r.id.parse::<u64>().unwrap_or(0))
    })
}

pub async fn plan_restore(ctx: &Ctx, p: &dyn Provider, kind: ProviderKind, t: &Trial, replace: bool) -> Result<Vec<RestoreStep>> {
    let all = resources::trial_resources(p, &t.name).await?;
    let snap = latest(&all).ok_or_else(|| {
        usage(format!("trial {} has no snapshot at {kind}: take one with `munero-infra snapshot {}`", t.name, t.name))
    })?;
    let mut steps = Vec::new();
    if let Some(s) = all.iter().find(|r| r.kind == ResourceKind::Server) {
        if !replace {
            return Err(usage(format!(
                "trial {} still has its server {} (id {}); restore makes it again from snapshot {:?}: pass --replace to delete the current one first",
                t.name, s.name, s.id, snap.name
            )));
        }
        steps.push(RestoreStep::DeleteServer { provider: kind, id: s.id.clone(), name: s.name.clone() });
    }
    let firewall = all.iter().find(|r| r.kind == ResourceKind::Firewall).ok_or_else(|| {
        anyhow!("trial {}'s firewall is gone at {kind}; a server is never made without it: run `munero-infra create {}` to make it again", t.name, t.name)
    })?;
    let key = all.iter().find(|r| r.kind == ResourceKind::SshKey).ok_or_else(|| {
        anyhow!("trial {}'s SSH key is gone at {kind}: run `munero-infra create {}` to register it again", t.name, t.name)
    })?;
    steps.push(RestoreStep::CreateServer {
        provider: kind,
        name: t.name.clone(),
        server_type: t.server_type.clone(),
        location: t.location.clone(),
        snapshot_id: snap.id.clone(),
        snapshot: snap.name.clone(),
        ssh_key: key.name.clone(),
        firewall_id: firewall.id.clone(),
        labels: trial_labels(&t.name, t.expires_unix),
    });
    steps.push(RestoreStep::WaitRunning { provider: kind });
    let mut names: Vec<(String, String, String)> = all
        .iter()
        .filter(|r| r.kind == ResourceKind::DnsRecord)
        .filter_map(|r| munero_provider::RecordSet::parse_resource_id(&r.id).map(|(z, n, _)| (r.name.clone(), z.to_string(), n.to_string())))
        .collect();
    names.sort();
    names.dedup();
    steps.extend(names.into_iter().map(|(fqdn, zone_id, name)| RestoreStep::PointDns { fqdn, zone_id, name }));
    steps.push(RestoreStep::Record { path: ctx.store.trial_dir(&t.name).join(crate::store::RECORD_FILE) });
    Ok(steps)
}

pub async fn restore(ctx: &Ctx, p: &dyn Provider, t: &mut Trial, steps: &[RestoreStep]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut server = None;
    for (i, step) in steps.iter().enumerate() {
        ctx.out.progress(format!("[{}/{}] {}", i + 1, steps.len(), crate::plan::headline(step)));
        match step {
            RestoreStep::DeleteServer { id, name, .. } => {
                p.delete_resource(ResourceKind::Server, id).await.with_context(|| format!("deleting server {name} ({id})"))?;
                done.push(format!("deleted server {name} ({id})"));
            }
            RestoreStep::CreateServer { name, server_type, location, snapshot_id, ssh_key, firewall_id, labels, .. } => {
                let private = ctx.store.read_file(&t.name, &t.keys.host_private_key).context("reading the trial's host key")?;
                let public = ctx.store.read_file(&t.name, &t.keys.host_public_key).context("reading the trial's host key")?;
                let spec = ServerSpec {
                    name: name.clone(),
                    server_type: server_type.clone(),
                    image: snapshot_id.clone(),
                    location: location.clone(),
                    subnet: t.subnet.clone(),
                    user_data: crate::cloudinit::render_restore(&private, &public)?,
                    labels: labels.clone(),
                    ssh_key_ids: vec![ssh_key.clone()],
                    firewall_ids: vec![firewall_id.clone()],
                };
                let s = p.create_server(&spec).await.context("creating the server from the snapshot")?;
                ctx.out.progress(format!("      server {} created", s.id));
                t.resources.server_id = Some(s.id.clone());
                ctx.store.save(t)?;
                done.push(format!("created server {} ({}) from snapshot {snapshot_id}", s.name, s.id));
                server = Some(s);
            }
            RestoreStep::WaitRunning { .. } => {
                let id = server.as_ref().map(|s| s.id.clone()).context("no server id")?;
                let s = p.wait_running(&id).await.context("waiting for the restored server to run")?;
                ctx.out.progress(format!("      running, IPv4 {}", s.ipv4.as_deref().unwrap_or("-")));
                server = Some(s);
            }
            RestoreStep::PointDns { fqdn, zone_id, name } => {
                let s = server.as_ref().context("no server")?;
                let ensure = CreateStep::EnsureDnsRecord {
                    fqdn: fqdn.clone(),
                    zone: String::new(),
                    zone_id: zone_id.clone(),
                    name: name.clone(),
                    labels: trial_labels(&t.name, t.expires_unix),
                };
                let mut want = vec![("A", s.ipv4.clone().context("the restored server has no IPv4")?)];
                want.extend(s.ipv6.clone().map(|v6| ("AAAA", v6)));
                for (rtype, ip) in want {
                    super::dns::ensure(ctx, p, &t.name, &ensure, rtype, &ip).await?;
                }
                done.push(format!("pointed {fqdn} at {}", s.ipv4.as_deref().unwrap_or("-")));
            }
            RestoreStep::Record { .. } => {
                let s = server.as_ref().context("no server")?;
                t.ipv4 = s.ipv4.clone();
                t.ipv6 = s.ipv6.clone();
                t.state = s.status.clone();
                t.resources.server_id = Some(s.id.clone());
                ctx.store.save(t)?;
                done.push(format!("recorded server {} at {}", s.id, s.ipv4.as_deref().unwrap_or("-")));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, created: Option<&str>) -> Resource {
        let mut labels = trial_labels("t1", 1);
        if let Some(c) = created {
            labels.insert(LABEL_CREATED.into(), c.into());
        }
        Resource { kind: ResourceKind::Snapshot, id: id.into(), name: format!("s{id}"), labels }
    }

    #[test]
    fn the_latest_snapshot_is_the_newest_taken_then_the_highest_id() {
        let rs = vec![snap("30", Some("100")), snap("12", Some("200")), snap("40", None)];
        assert_eq!(latest(&rs).map(|r| r.id.as_str()), Some("12"));
        let rs = vec![snap("3", None), snap("9", None)];
        assert_eq!(latest(&rs).map(|r| r.id.as_str()), Some("9"));
        assert!(latest(&[]).is_none());
    }
}
