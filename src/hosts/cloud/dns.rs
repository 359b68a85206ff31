//! `--dns`: the trial's A record in the operator's zone at the provider, planned with the other
//! create steps (zone found, a record of the name that is not the trial's stops the create before
//! anything is made) and waited for at the zone's authoritative nameservers.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use munero_provider::{is_managed_for, name_in_zone, Labels, Provider, ProviderError, RecordSet, ResourceKind};

use crate::ctx::Ctx;
use crate::error::usage;
use crate::plan::create::CreateStep;
use crate::resolve::CreateRequest;

/// How long the authoritative answer is waited for (`MUNERO_DNS_WAIT_S`).
fn wait_s() -> u64 {
    std::env::var("MUNERO_DNS_WAIT_S").ok().and_then(|v| v.parse().ok()).unwrap_or(180)
}

/// The record and wait steps, when the request asks for a record.
pub async fn plan(api: Option<&dyn Provider>, req: &CreateRequest, labels: &Labels, notes: &mut Vec<String>) -> Result<Vec<CreateStep>> {
    let (Some(service), Some(fqdn)) = (req.dns, req.domain.as_ref()) else { return Ok(vec![]) };
    let name = &req.name;
    let (zone, zone_id, rr, nameservers) = match api {
        Some(p) => {
            let z = p
                .find_zone(fqdn)
                .await
                .map_err(|e| match e {
                    ProviderError::Invalid(m) => usage(m),
                    other => anyhow!(other).context(format!("looking up the DNS zone of {fqdn}")),
                })?
                .ok_or_else(|| {
                    usage(format!(
                        "no DNS zone in your {service:?} account holds {fqdn}: add the zone there, or leave out --dns and \
                         create the A record yourself (deploy checks it); nothing was created"
                    ))
                })?;
            let rr = name_in_zone(fqdn, &z.name).ok_or_else(|| anyhow!("{fqdn} is not inside zone {}", z.name))?;
            for rtype in ["A", "AAAA"] {
                if let Some(existing) = p.get_record(&z.id, &rr, rtype).await.context("reading the DNS record")? {
                    if !is_managed_for(&existing.labels, name) {
                        return Err(usage(format!(
                            "a DNS record {fqdn} {rtype} already exists in zone {} (-> {}) and was not made for trial {name}: \
                             it is never changed; remove it yourself or choose another --domain; nothing was created",
                            z.name,
                            existing.values.join(", ")
                        )));
                    }
                }
            }
            (z.name, z.id, rr, z.nameservers)
        }
        None => {
            notes.push(format!("note: no credentials, so the DNS zone of {fqdn} was not looked up"));
            ("(looked up at create)".to_string(), String::new(), fqdn.clone(), vec![])
        }
    };
    Ok(vec![
        CreateStep::EnsureDnsRecord { fqdn: fqdn.clone(), zone, zone_id, name: rr, labels: labels.clone() },
        CreateStep::WaitDns { fqdn: fqdn.clone(), nameservers, timeout_s: wait_s() },
    ])
}

/// Make (or find) the `rtype` record pointing at `ip`; returns its resource id when this run
/// made it.
pub async fn ensure(ctx: &Ctx, p: &dyn Provider, trial: &str, step: &CreateStep, rtype: &str, ip: &str) -> Result<Option<String>> {
    let CreateStep::EnsureDnsRecord { fqdn, zone_id, name, labels, .. } = step else { return Ok(None) };
    let id = RecordSet::resource_id(zone_id, name, rtype);
    match p.get_record(zone_id, name, rtype).await.context("reading the DNS record")? {
        Some(r) if !is_managed_for(&r.labels, trial) => {
            return Err(usage(format!(
                "a DNS record {fqdn} {rtype} (-> {}) appeared that was not made for trial {trial}: it is not changed",
                r.values.join(", ")
            )))
        }
        Some(r) if r.values == [ip] => {
            ctx.out.progress(format!("      {fqdn} {rtype} {ip} found (made by an earlier run)"));
            return Ok(None);
        }
        // Ours, pointing elsewhere (a server made again): replaced.
        Some(_) => p.delete_resource(ResourceKind::DnsRecord, &id).await.context("replacing the trial's old DNS record")?,
        None => {}
    }
    let record = RecordSet { zone_id: zone_id.clone(), name: name.clone(), rtype: rtype.into(), values: vec![ip.to_string()], labels: labels.clone() };
    p.create_record(&record, 60).await.with_context(|| format!("creating the DNS record {fqdn} {rtype} {ip}"))?;
    ctx.out.progress(format!("      {fqdn} {rtype} {ip} created"));
    Ok(Some(id))
}

/// Ask each nameserver until all give `ip` for `fqdn`; a timeout is a warning, not a failure.
pub async fn wait(ctx: &Ctx, fqdn: &str, nameservers: &[String], ip: &str, timeout: Duration) -> Result<()> {
    let want: Ipv4Addr = ip.parse().with_context(|| format!("the server's address {ip:?}"))?;
    let servers = nameserver_addrs(nameservers).await;
    if servers.is_empty() {
        ctx.out.progress(format!("      warning: no nameserver of the zone could be found to ask for {fqdn}; deploy checks the name"));
        return Ok(());
    }
    let start = Instant::now();
    loop {
        let mut missing = Vec::new();
        for s in &servers {
            match crate::dns_query::query_a(*s, fqdn, Duration::from_secs(3)).await {
                Ok(a) if a.contains(&want) => {}
                Ok(a) => missing.push(format!("{s} gives {a:?}")),
                Err(e) => missing.push(format!("{s}: {e:#}")),
            }
        }
        if missing.is_empty() {
            ctx.out.progress(format!("      {} nameserver(s) answer {fqdn} A {ip} ({}s)", servers.len(), start.elapsed().as_secs()));
            return Ok(());
        }
        if start.elapsed() >= timeout {
            ctx.out.progress(format!(
                "      warning: after {}s not every nameserver answers {fqdn} A {ip} yet ({}); deploy checks the name again",
                timeout.as_secs(),
                missing.join("; ")
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// The nameservers' addresses; `MUNERO_DNS_NAMESERVER` (ip:port) stands for all of them.
async fn nameserver_addrs(names: &[String]) -> Vec<SocketAddr> {
    if let Some(a) = std::env::var("MUNERO_DNS_NAMESERVER").ok().and_then(|v| v.parse().ok()) {
        return vec![a];
    }
    let mut out = Vec::new();
    for n in names {
        if let Ok(addrs) = tokio::net::lookup_host((n.trim_end_matches('.'), 53)).await {
            out.extend(addrs.filter(SocketAddr::is_ipv4).take(1));
        }
    }
    out
}

/// Of a trial's labelled resources, its DNS records that point at something other than the
/// trial's server are left alone (someone repointed the name by hand): they are dropped from the
/// list, and said.
pub async fn only_ours(ctx: &Ctx, p: &dyn Provider, t: &crate::trial::Trial, found: Vec<munero_provider::Resource>) -> Result<Vec<munero_provider::Resource>> {
    let ours: Vec<&str> = t.ipv4.iter().chain(t.ipv6.iter()).map(String::as_str).collect();
    if ours.is_empty() {
        return Ok(found);
    }
    let mut keep = Vec::with_capacity(found.len());
    for r in found {
        if r.kind == ResourceKind::DnsRecord {
            if let Some((zone_id, name, rtype)) = RecordSet::parse_resource_id(&r.id) {
                if let Some(set) = p.get_record(zone_id, name, rtype).await.context("reading the DNS record")? {
                    if !set.values.iter().all(|v| ours.contains(&v.as_str())) {
                        ctx.out.progress(format!(
                            "warning: DNS record {} {rtype} points at {} now, not at the trial's server: left as it is",
                            r.name,
                            set.values.join(", ")
                        ));
                        continue;
                    }
                }
            }
        }
        keep.push(r);
    }
    Ok(keep)
}
