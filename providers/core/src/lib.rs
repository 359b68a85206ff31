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

/// Every kind of host a trial can live on. Parsed once at the edge (flags, config, the trial
/// record); what differs between kinds lives behind the lifecycle interface, not in commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[default]
    Hetzner,
    Aws,
    Local,
    /// An existing host reached over SSH (no provider API).
    Ssh,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [ProviderKind::Hetzner, ProviderKind::Aws, ProviderKind::Local, ProviderKind::Ssh];

    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Hetzner => "hetzner",
            ProviderKind::Aws => "aws",
            ProviderKind::Local => "local",
            ProviderKind::Ssh => "ssh",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown provider {s:?}; use one of: {}", names.join(", "))
        })
    }
}

/// An error with every cause after it (`timed out: connection reset`): transport errors hide the
/// useful part in their sources.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Label key/value pairs (Hetzner labels, AWS tags).
pub type Labels = BTreeMap<String, String>;

pub const LABEL_MANAGED: &str = "munero-managed";
pub const LABEL_TRIAL: &str = "munero-trial";
pub const LABEL_EXPIRES: &str = "munero-expires";
/// On snapshots: when it was taken (unix seconds), so "the latest" needs no provider date format.
pub const LABEL_CREATED: &str = "munero-created";

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
    /// The network the server will be placed in (AWS: a subnet id, whose VPC gets the group).
    #[serde(default)]
    pub subnet: Option<String>,
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
    /// A network to place the server in (AWS: a subnet id); None: the provider's default.
    #[serde(default)]
    pub subnet: Option<String>,
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
    /// The server's own IPv6 address (the first of its network), when it has one.
    pub ipv6: Option<String>,
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

/// What a server costs by the provider's own price list, net of VAT, in `currency`. `parts` says
/// what the figures include (e.g. the server type and its primary IPv4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceQuote {
    pub currency: String,
    pub hourly: f64,
    /// The most one month costs (hourly billing stops there), when the provider caps it.
    pub monthly_cap: Option<f64>,
    pub parts: Vec<String>,
    /// Where the figures come from ("Hetzner API /server_types and /pricing", a dated table).
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Server,
    Firewall,
    SshKey,
    /// A DNS record set the tool made; id `<zone id>/<name>/<type>`, name the full name.
    DnsRecord,
    /// A provider snapshot of a trial's server (Hetzner image of type snapshot, AWS AMI).
    Snapshot,
    /// A block volume (the tool makes none; the orphan sweep still looks for labelled ones).
    Volume,
    /// A primary / elastic IP (as for volumes: swept, never made).
    PrimaryIp,
}

impl ResourceKind {
    /// Every kind, in the order the orphan sweep reports them.
    pub const ALL: [ResourceKind; 7] = [
        ResourceKind::DnsRecord,
        ResourceKind::Server,
        ResourceKind::Firewall,
        ResourceKind::SshKey,
        ResourceKind::Snapshot,
        ResourceKind::Volume,
        ResourceKind::PrimaryIp,
    ];
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Server => "server",
            ResourceKind::Firewall => "firewall",
            ResourceKind::SshKey => "ssh key",
            ResourceKind::DnsRecord => "dns record",
            ResourceKind::Snapshot => "snapshot",
            ResourceKind::Volume => "volume",
            ResourceKind::PrimaryIp => "primary ip",
        })
    }
}

/// A DNS zone at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    /// The nameservers that answer for the zone with authority.
    pub nameservers: Vec<String>,
}

/// One record set (a name and a type) in a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    pub zone_id: String,
    /// Relative to the zone; `@` is the apex.
    pub name: String,
    pub rtype: String,
    pub values: Vec<String>,
    pub labels: Labels,
}

impl RecordSet {
    /// The id a DNS record carries as a `Resource`.
    pub fn resource_id(zone_id: &str, name: &str, rtype: &str) -> String {
        format!("{zone_id}/{name}/{rtype}")
    }
    /// (zone id, name, type) from a resource id.
    pub fn parse_resource_id(id: &str) -> Option<(&str, &str, &str)> {
        let mut it = id.splitn(3, '/');
        Some((it.next()?, it.next()?, it.next()?)).filter(|(z, n, t)| !z.is_empty() && !n.is_empty() && !t.is_empty())
    }
}

/// The record name of `fqdn` inside `zone` (`@` at the apex), or None when it is not inside.
pub fn name_in_zone(fqdn: &str, zone: &str) -> Option<String> {
    let (f, z) = (fqdn.trim_end_matches('.').to_ascii_lowercase(), zone.trim_end_matches('.').to_ascii_lowercase());
    if f == z {
        return Some("@".into());
    }
    f.strip_suffix(&format!(".{z}")).map(str::to_string)
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

/// A fresh lookup of one resource by id, as the provider answered it: the receipt's proof that
/// a deleted resource is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    /// The request as sent, without credentials (`GET /servers/42`).
    pub request: String,
    /// The answer (`404 not_found`, `200`).
    pub answer: String,
    /// True when the provider says the resource does not exist.
    pub gone: bool,
}

/// Result of a find-or-create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ensured {
    pub id: String,
    /// True when this call created the resource (false: found by label).
    pub created: bool,
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

    /// Checks that a server can be placed in `subnet` (at `location`, when given); Err(Invalid)
    /// says why not. Providers without subnets refuse every one.
    async fn check_subnet(&self, subnet: &str, _location: Option<&str>) -> Result<()> {
        Err(ProviderError::Invalid(format!("--subnet {subnet}: {} servers are not placed in subnets", self.name())))
    }

    /// Checks that the image and location exist; Err(Invalid) names the known ones.
    async fn check_placement(&self, _image: &str, _location: Option<&str>) -> Result<()> {
        Ok(())
    }

    /// The price of `server_type` at `location`, when the provider publishes one.
    async fn price(&self, _server_type: &str, _location: Option<&str>) -> Result<Option<PriceQuote>> {
        Ok(None)
    }

    /// A read-only request proving the credentials work; returns the API's clock (its Date
    /// header, unix seconds) when it sent one.
    async fn check_access(&self) -> Result<Option<i64>> {
        Ok(None)
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

    /// The DNS zone at this provider that holds `fqdn` (the longest matching zone name).
    async fn find_zone(&self, _fqdn: &str) -> Result<Option<Zone>> {
        Err(ProviderError::Invalid(format!("{} keeps no DNS zones here; drop --dns", self.name())))
    }

    /// One record set, whoever made it.
    async fn get_record(&self, _zone_id: &str, _name: &str, _rtype: &str) -> Result<Option<RecordSet>> {
        Ok(None)
    }

    /// Create a record set (never replaces one: the caller has checked there is none).
    async fn create_record(&self, _record: &RecordSet, _ttl: u32) -> Result<()> {
        Err(ProviderError::Invalid(format!("{} keeps no DNS zones here; drop --dns", self.name())))
    }

    /// Replace a managed resource's labels (extend moves `munero-expires`); one that is not
    /// managed is refused.
    async fn set_labels(&self, kind: ResourceKind, _id: &str, _labels: &Labels) -> Result<()> {
        Err(ProviderError::Invalid(format!("{} cannot relabel a {kind}", self.name())))
    }

    /// Take a snapshot of a server, labelled `labels`, and wait until it is usable.
    async fn create_snapshot(&self, _server_id: &str, _description: &str, _labels: &Labels) -> Result<Resource> {
        Err(ProviderError::Invalid(format!("{} takes no snapshots here", self.name())))
    }

    /// Look one resource up by id afresh (after a deletion: the provider's own word it is gone).
    async fn lookup(&self, kind: ResourceKind, id: &str) -> Result<Lookup> {
        Err(ProviderError::Invalid(format!("{} cannot look up a {kind} {id}", self.name())))
    }

    /// Every server carrying `munero-managed=true`.
    async fn list_managed_servers(&self) -> Result<Vec<ServerInfo>>;

    /// Every other resource carrying `munero-managed=true`: firewalls, SSH keys, DNS records,
    /// snapshots, volumes, primary IPs (for destroy, teardown and the orphan sweep).
    async fn list_managed_resources(&self) -> Result<Vec<Resource>>;

    /// Delete one resource by id. NotFound counts as done. The provider re-checks the labels and
    /// refuses (Err(Invalid)) a resource that is not managed.
    async fn delete_resource(&self, kind: ResourceKind, id: &str) -> Result<()>;

    /// Delete resources as a listing returned them (labels already read there), `in_flight` at
    /// a time; one result per resource, in order. Only managed resources are touched. The default
    /// goes through `delete_resource` one by one; a provider may batch (teardown of many trials).
    async fn delete_listed(&self, resources: &[Resource], _in_flight: usize) -> Vec<Result<()>> {
        let mut out = Vec::with_capacity(resources.len());
        for r in resources {
            out.push(if is_managed(&r.labels) {
                self.delete_resource(r.kind, &r.id).await
            } else {
                Err(ProviderError::Invalid(format!("{} {} ({}) does not carry munero-managed=true; not deleting it", r.kind, r.id, r.name)))
            });
        }
        out
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
    fn a_name_is_placed_in_its_zone_and_record_ids_round_trip() {
        assert_eq!(name_in_zone("t1.trials.example.com", "example.com").as_deref(), Some("t1.trials"));
        assert_eq!(name_in_zone("Example.com.", "example.com").as_deref(), Some("@"));
        assert_eq!(name_in_zone("t1.example.org", "example.com"), None);
        assert_eq!(name_in_zone("badexample.com", "example.com"), None);
        let id = RecordSet::resource_id("42", "t1.trials", "A");
        assert_eq!(RecordSet::parse_resource_id(&id), Some(("42", "t1.trials", "A")));
        assert_eq!(RecordSet::parse_resource_id("42/x"), None);
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
}
