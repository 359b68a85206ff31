//! The steps of `snapshot` (the plan's rollback point before onboarding) and `restore` (the
//! trial's server made again from its latest snapshot, same key, firewall and pinned host key).

use std::fmt;
use std::path::PathBuf;

use munero_provider::{labels_to_string, Labels, ProviderKind};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SnapshotStep {
    /// Image the server's disk at the provider and wait until the image is usable.
    Take { provider: ProviderKind, server_id: String, server: String, description: String, labels: Labels },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RestoreStep {
    /// `--replace`: delete the trial's current server (labelled; its disk goes with it).
    DeleteServer { provider: ProviderKind, id: String, name: String },
    /// Create the server from the snapshot, with the trial's key, firewall and labels; its
    /// user-data only re-installs the pinned host key (everything else is on the snapshot).
    CreateServer {
        provider: ProviderKind,
        name: String,
        server_type: String,
        location: Option<String>,
        snapshot_id: String,
        snapshot: String,
        ssh_key: String,
        firewall_id: String,
        labels: Labels,
    },
    /// Wait until it runs with a public IPv4.
    WaitRunning { provider: ProviderKind },
    /// `--dns` trials: point the trial's own record (A, and AAAA when the server has IPv6) at
    /// the new address; a record not made for the trial is never changed.
    PointDns { fqdn: String, zone_id: String, name: String },
    /// Write the new server id and address into the trial record.
    Record { path: PathBuf },
}

impl fmt::Display for SnapshotStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotStep::Take { provider, server_id, server, description, labels } => write!(
                f,
                "snapshot {provider} server {server} (id {server_id}) as {description:?}, labelled {}; wait until it is available",
                labels_to_string(labels)
            ),
        }
    }
}

impl fmt::Display for RestoreStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreStep::DeleteServer { provider, id, name } => write!(f, "delete {provider} server {name} (id {id}) (--replace)"),
            RestoreStep::CreateServer { provider, name, server_type, location, snapshot_id, snapshot, ssh_key, firewall_id, labels } => write!(
                f,
                "create {provider} server {name} ({server_type}{}) from snapshot {snapshot:?} (id {snapshot_id}), ssh key {ssh_key}, \
                 firewall {firewall_id}, labelled {}; user-data re-installs the pinned host key",
                location.as_deref().map(|l| format!(" in {l}")).unwrap_or_default(),
                labels_to_string(labels)
            ),
            RestoreStep::WaitRunning { provider } => write!(f, "wait until the {provider} server runs and has a public IPv4"),
            RestoreStep::PointDns { fqdn, .. } => write!(f, "point the trial's DNS record {fqdn} at the new address"),
            RestoreStep::Record { path } => write!(f, "record the new server id and address in {}", path.display()),
        }
    }
}
