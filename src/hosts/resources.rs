//! The one place that lists a trial's labelled resources and orders their deletion: DNS records
//! first, then servers (a firewall or key in use by a server cannot go), then firewalls, SSH keys, volumes,
//! primary IPs and snapshots. Used by
//! destroy (one trial) and teardown (every expired trial at once).

use anyhow::{Context, Result};
use munero_provider::{is_managed, is_managed_for, Provider, Resource, ResourceKind};

pub fn deletion_rank(kind: ResourceKind) -> u8 {
    match kind {
        // The name goes before the address it points at can pass to someone else's server.
        ResourceKind::DnsRecord => 0,
        ResourceKind::Server => 1,
        ResourceKind::Firewall => 2,
        ResourceKind::SshKey => 3,
        // A volume detaches and an IP unassigns when their server goes.
        ResourceKind::Volume => 4,
        ResourceKind::PrimaryIp => 5,
        ResourceKind::Snapshot => 6,
    }
}

/// Every resource carrying `munero-managed=true`, one listing per type (side by side), in
/// deletion order.
pub async fn managed(p: &dyn Provider) -> Result<Vec<Resource>> {
    let (servers, others) = tokio::join!(p.list_managed_servers(), p.list_managed_resources());
    let mut all: Vec<Resource> = servers
        .with_context(|| format!("listing the managed servers at {}", p.name()))?
        .into_iter()
        .map(|s| Resource { kind: ResourceKind::Server, id: s.id, name: s.name, labels: s.labels })
        .collect();
    all.extend(others.with_context(|| format!("listing the managed firewalls, keys, DNS records, snapshots, volumes and IPs at {}", p.name()))?);
    all.retain(|r| is_managed(&r.labels));
    all.sort_by_key(|r| deletion_rank(r.kind));
    Ok(all)
}

/// The resources of one trial out of a listing, in deletion order.
pub fn of_trial(all: &[Resource], trial: &str) -> Vec<Resource> {
    all.iter().filter(|r| is_managed_for(&r.labels, trial)).cloned().collect()
}

/// The labelled resources of `trial` at `p`, in deletion order.
pub async fn trial_resources(p: &dyn Provider, trial: &str) -> Result<Vec<Resource>> {
    Ok(of_trial(&managed(p).await?, trial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use munero_provider::{trial_labels, Labels, LABEL_TRIAL};

    fn res(kind: ResourceKind, id: &str, labels: Labels) -> Resource {
        Resource { kind, id: id.into(), name: id.into(), labels }
    }

    #[test]
    fn a_trials_resources_are_only_its_managed_ones() {
        let mut unmanaged = Labels::new();
        unmanaged.insert(LABEL_TRIAL.into(), "acme".into());
        let all = vec![
            res(ResourceKind::Server, "s1", trial_labels("acme", 1)),
            res(ResourceKind::Server, "s2", trial_labels("other", 1)),
            res(ResourceKind::Server, "decoy", unmanaged),
            res(ResourceKind::Firewall, "f1", trial_labels("acme", 1)),
        ];
        let ids: Vec<String> = of_trial(&all, "acme").into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["s1", "f1"]);
    }

    #[test]
    fn servers_go_before_firewalls_before_keys() {
        let mut v = [ResourceKind::SshKey, ResourceKind::Server, ResourceKind::Firewall];
        v.sort_by_key(|k| deletion_rank(*k));
        assert_eq!(v, [ResourceKind::Server, ResourceKind::Firewall, ResourceKind::SshKey]);
    }
}
