//! The `Provider` trait every cloud implements, and the types they share.
//!
//! A provider creates, finds by label and destroys. Everything after "the server is up"
//! (SSH, deploy) knows no provider. Every resource a provider creates carries the labels
//! from [`trial_labels`]; destroy and teardown only ever touch resources that carry
//! `munero-managed=true` (and, for destroy, `munero-trial=<name>`).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Label key/value pairs (Hetzner labels, AWS tags).
pub type Labels = BTreeMap<String, String>;

pub const LABEL_MANAGED: &str = "munero-managed";
pub const LABEL_TRIAL: &str = "munero-trial";
pub const LABEL_EXPIRES: &str = "munero-expires";

/// The labels every resource of a trial carries. Values hold no colons (Hetzner forbids them),
/// so the expiry is unix seconds.
pub fn trial_labels(trial: &str, expires_unix: i64) -> Labels {
    let mut l = Labels::new();
    l.insert(LABEL_MANAGED.into(), "true".into());
    l.insert(LABEL_TRIAL.into(), trial.into());
    l.insert(LABEL_EXPIRES.into(), expires_unix.to_string());
    l
}

/// Label selector matching every managed resource.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED}=true")
}

/// Label selector matching the managed resources of one trial.
pub fn trial_selector(trial: &str) -> String {
    format!("{LABEL_MANAGED}=true,{LABEL_TRIAL}={trial}")
}

/// True when `labels` mark a resource as managed by munero-infra.
pub fn is_managed(labels: &Labels) -> bool {
    labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
}

/// True when `labels` mark a resource as managed AND belonging to `trial`.
pub fn is_managed_for(labels: &Labels, trial: &str) -> bool {
    is_managed(labels) && labels.get(LABEL_TRIAL).map(String::as_str) == Some(trial)
}

/// The trial's expiry from its labels, when present and well-formed.
pub fn expires_of(labels: &Labels) -> Option<i64> {
    labels.get(LABEL_EXPIRES)?.parse().ok()
}

/// Display labels as `k=v,k=v` (sorted, stable).
pub fn labels_to_string(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        })
    }
}

/// One firewall rule. Only inbound rules are used: with no outbound rules, outbound is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallRule {
    pub direction: Direction,
    pub protocol: Protocol,
    /// A port or range ("443", "8000-8010"); None for icmp.
    pub port: Option<String>,
    /// CIDRs the traffic may come from.
    pub source_ips: Vec<String>,
    pub description: String,
}

impl fmt::Display for FirewallRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::In => "in",
            Direction::Out => "out",
        };
        write!(f, "{dir} {}", self.protocol)?;
        if let Some(p) = &self.port {
            write!(f, " {p}")?;
        }
        write!(f, " from {}", self.source_ips.join(", "))?;
        if !self.description.is_empty() {
            write!(f, " ({})", self.description)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallSpec {
    pub name: String,
    pub labels: Labels,
    pub rules: Vec<FirewallRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKeySpec {
    pub name: String,
    /// OpenSSH public key line.
    pub public_key: String,
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSpec {
    pub name: String,
    pub server_type: String,
    pub image: String,
    pub location: Option<String>,
    /// The rendered cloud-init user-data (contains the host private key: never log it).
    #[serde(skip_serializing)]
    pub user_data: String,
    pub labels: Labels,
    pub ssh_key_ids: Vec<String>,
    pub firewall_ids: Vec<String>,
}

/// A server as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub id: String,
    pub name: String,
    pub ipv4: Option<String>,
    /// Provider status as reported ("running", "initializing", ...).
    pub status: String,
    pub labels: Labels,
    pub server_type: String,
    pub location: Option<String>,
}

impl ServerInfo {
    pub fn trial(&self) -> Option<&str> {
        self.labels.get(LABEL_TRIAL).map(String::as_str)
    }
    pub fn expires(&self) -> Option<i64> {
        expires_of(&self.labels)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Server,
    Firewall,
    SshKey,
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Server => "server",
            ResourceKind::Firewall => "firewall",
            ResourceKind::SshKey => "ssh key",
        })
    }
}

/// Any labelled resource (used for orphan detection and destroy reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub kind: ResourceKind,
    pub id: String,
    pub name: String,
    pub labels: Labels,
}

impl Resource {
    pub fn trial(&self) -> Option<&str> {
        self.labels.get(LABEL_TRIAL).map(String::as_str)
    }
    pub fn expires(&self) -> Option<i64> {
        expires_of(&self.labels)
    }
}

/// Result of a find-or-create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ensured {
    pub id: String,
    /// True when this call created the resource (false: found by label).
    pub created: bool,
}

/// What a destroy removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestroyReport {
    pub deleted: Vec<Resource>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{kind} {id} not found")]
    NotFound { kind: String, id: String },
    #[error("authentication failed: {0} (check the API token)")]
    Unauthorized(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("API error {status} {code}: {message}")]
    Api { status: u16, code: String, message: String },
    #[error("action {command} failed: {code}: {message}")]
    ActionFailed { command: String, code: String, message: String },
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: String },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProviderError::NotFound { .. })
    }
}

pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

/// A cloud (or an existing host). Object safe: used as `Box<dyn Provider>`.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name used in records and output ("hetzner").
    fn name(&self) -> &'static str;

    /// Checks that `server_type` exists at this provider; Err(Invalid) names the known ones.
    async fn check_server_type(&self, server_type: &str) -> Result<()>;

    /// Checks that the image and location exist; Err(Invalid) names the known ones.
    async fn check_placement(&self, _image: &str, _location: Option<&str>) -> Result<()> {
        Ok(())
    }

    /// Find the SSH key by name+labels, or register it.
    async fn ensure_ssh_key(&self, spec: &SshKeySpec) -> Result<Ensured>;

    /// Find the firewall by name+labels, or create it with the rules.
    async fn ensure_firewall(&self, spec: &FirewallSpec) -> Result<Ensured>;

    /// Attach a firewall to a server (no-op when already attached).
    async fn attach_firewall(&self, firewall_id: &str, server_id: &str) -> Result<()>;

    /// The trial's server, found by its labels.
    async fn find_server(&self, trial: &str) -> Result<Option<ServerInfo>>;

    /// Create the server and wait for the create action; does not wait for `running`.
    async fn create_server(&self, spec: &ServerSpec) -> Result<ServerInfo>;

    /// Wait until the server is running and has a public IPv4.
    async fn wait_running(&self, id: &str) -> Result<ServerInfo>;

    /// Every server carrying `munero-managed=true`.
    async fn list_managed_servers(&self) -> Result<Vec<ServerInfo>>;

    /// Every firewall and SSH key carrying `munero-managed=true` (for orphan clean-up).
    async fn list_managed_resources(&self) -> Result<Vec<Resource>>;

    /// Delete one resource by id. NotFound counts as done. The provider re-checks the labels and
    /// refuses (Err(Invalid)) a resource that is not managed.
    async fn delete_resource(&self, kind: ResourceKind, id: &str) -> Result<()>;

    /// Delete server, then firewall, then SSH key of `trial` (only managed+labelled ones), and
    /// verify they are gone. The default walks the listings; a provider may do better.
    async fn destroy_trial(&self, trial: &str) -> Result<DestroyReport> {
        let mut mine: Vec<Resource> = self
            .list_managed_servers()
            .await?
            .into_iter()
            .filter(|s| is_managed_for(&s.labels, trial))
            .map(|s| Resource { kind: ResourceKind::Server, id: s.id, name: s.name, labels: s.labels })
            .collect();
        let mut rest: Vec<Resource> =
            self.list_managed_resources().await?.into_iter().filter(|r| is_managed_for(&r.labels, trial)).collect();
        rest.sort_by_key(|r| r.kind != ResourceKind::Firewall);
        mine.extend(rest);
        for r in &mine {
            self.delete_resource(r.kind, &r.id).await?;
        }
        let left = self.list_managed_servers().await?.iter().filter(|s| is_managed_for(&s.labels, trial)).count()
            + self.list_managed_resources().await?.iter().filter(|r| is_managed_for(&r.labels, trial)).count();
        if left > 0 {
            return Err(ProviderError::Other(format!("{left} resources of trial {trial} still exist after deletion")));
        }
        Ok(DestroyReport { deleted: mine })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_labels_carry_managed_trial_and_expiry_without_colons() {
        let l = trial_labels("acme-demo", 1_800_000_000);
        assert_eq!(
            labels_to_string(&l),
            "munero-expires=1800000000,munero-managed=true,munero-trial=acme-demo"
        );
        assert!(l.values().all(|v| !v.contains(':')));
        assert!(is_managed_for(&l, "acme-demo"));
        assert!(!is_managed_for(&l, "other"));
        assert_eq!(expires_of(&l), Some(1_800_000_000));
    }

    #[test]
    fn unmanaged_labels_are_not_managed_whatever_the_trial_label() {
        let mut l = Labels::new();
        l.insert(LABEL_TRIAL.into(), "acme".into());
        assert!(!is_managed(&l));
        assert!(!is_managed_for(&l, "acme"));
        l.insert(LABEL_MANAGED.into(), "false".into());
        assert!(!is_managed_for(&l, "acme"));
    }

    #[test]
    fn selectors_match_the_label_names() {
        assert_eq!(trial_selector("t1x"), "munero-managed=true,munero-trial=t1x");
        assert_eq!(managed_selector(), "munero-managed=true");
    }

    #[test]
    fn firewall_rule_displays_port_and_sources() {
        let r = FirewallRule {
            direction: Direction::In,
            protocol: Protocol::Tcp,
            port: Some("22".into()),
            source_ips: vec!["203.0.113.7/32".into()],
            description: "ssh".into(),
        };
        assert_eq!(r.to_string(), "in tcp 22 from 203.0.113.7/32 (ssh)");
    }

    /// An in-memory provider: enough to exercise the default `destroy_trial` through `dyn Provider`.
    struct Mem {
        items: std::sync::Mutex<Vec<Resource>>,
        deleted: std::sync::Mutex<Vec<(ResourceKind, String)>>,
    }

    fn res(kind: ResourceKind, id: &str, labels: Labels) -> Resource {
        Resource { kind, id: id.into(), name: id.into(), labels }
    }

    #[async_trait]
    impl Provider for Mem {
        fn name(&self) -> &'static str {
            "mem"
        }
        async fn check_server_type(&self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn ensure_ssh_key(&self, _: &SshKeySpec) -> Result<Ensured> {
            unimplemented!()
        }
        async fn ensure_firewall(&self, _: &FirewallSpec) -> Result<Ensured> {
            unimplemented!()
        }
        async fn attach_firewall(&self, _: &str, _: &str) -> Result<()> {
            Ok(())
        }
        async fn find_server(&self, _: &str) -> Result<Option<ServerInfo>> {
            Ok(None)
        }
        async fn create_server(&self, _: &ServerSpec) -> Result<ServerInfo> {
            unimplemented!()
        }
        async fn wait_running(&self, _: &str) -> Result<ServerInfo> {
            unimplemented!()
        }
        async fn list_managed_servers(&self) -> Result<Vec<ServerInfo>> {
            Ok(self
                .items
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.kind == ResourceKind::Server && is_managed(&r.labels))
                .map(|r| ServerInfo {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    ipv4: None,
                    status: "running".into(),
                    labels: r.labels.clone(),
                    server_type: "x".into(),
                    location: None,
                })
                .collect())
        }
        async fn list_managed_resources(&self) -> Result<Vec<Resource>> {
            // Keys first on purpose: destroy_trial must still delete firewalls before keys.
            let mut v: Vec<Resource> = self
                .items
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.kind != ResourceKind::Server && is_managed(&r.labels))
                .cloned()
                .collect();
            v.sort_by_key(|r| r.kind != ResourceKind::SshKey);
            Ok(v)
        }
        async fn delete_resource(&self, kind: ResourceKind, id: &str) -> Result<()> {
            self.items.lock().unwrap().retain(|r| !(r.kind == kind && r.id == id));
            self.deleted.lock().unwrap().push((kind, id.to_string()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn default_destroy_trial_deletes_only_the_trials_managed_resources_server_first() {
        let mine = trial_labels("acme", 1);
        let other = trial_labels("other", 1);
        let mut unmanaged = Labels::new();
        unmanaged.insert(LABEL_TRIAL.into(), "acme".into());
        let mem = Mem {
            items: std::sync::Mutex::new(vec![
                res(ResourceKind::SshKey, "k1", mine.clone()),
                res(ResourceKind::Firewall, "f1", mine.clone()),
                res(ResourceKind::Server, "s1", mine.clone()),
                res(ResourceKind::Server, "s2", other),
                res(ResourceKind::Server, "decoy", unmanaged),
            ]),
            deleted: Default::default(),
        };
        let p: Box<dyn Provider> = Box::new(mem);
        let report = p.destroy_trial("acme").await.unwrap();
        assert_eq!(report.deleted.len(), 3);
        let order: Vec<ResourceKind> = report.deleted.iter().map(|r| r.kind).collect();
        assert_eq!(order, vec![ResourceKind::Server, ResourceKind::Firewall, ResourceKind::SshKey]);
        let left = p.list_managed_servers().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, "s2");
    }
}
