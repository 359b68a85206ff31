//! The trial record: what the provider cannot hold (keys, pinned host key) plus a cache of
//! what it can (ids, address). Stored as `trial.toml` in the trial's directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use munero_provider::ProviderKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Trial {
    pub name: String,
    pub provider: ProviderKind,
    /// What was asked for: cpu, gpu or a provider type.
    pub size: String,
    pub gpu: bool,
    pub server_type: String,
    pub location: Option<String>,
    /// `--subnet`: the network the server was placed in (AWS: a subnet id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    pub image: String,
    pub docker_source: String,
    pub created_unix: i64,
    pub expires_unix: i64,
    /// The same instant as RFC 3339, for people.
    pub expires: String,
    pub domain: Option<String>,
    /// `--domain auto`: the wildcard DNS service the name is derived under from the IPv4.
    pub domain_auto: Option<String>,
    /// Where the certificate comes from; absent in records made before it was chosen (then: acme
    /// with a domain, internal without).
    pub tls: Option<crate::site::Tls>,
    /// `--dns`: where the domain's record was made (found again by its labels there).
    pub dns: Option<crate::site::DnsService>,
    pub ssh_from: Vec<String>,
    pub ssh_user: String,
    pub ipv4: Option<String>,
    /// The server's IPv6 address, when it has one (an AAAA record with `--dns`).
    pub ipv6: Option<String>,
    /// SSH address when it is not the IPv4 (a host name; `--provider ssh`).
    pub ssh_host: Option<String>,
    /// SSH port when not 22.
    pub ssh_port: Option<u16>,
    /// Directory of the stack on the host (default `munero` under the login's home).
    pub remote_dir: Option<String>,
    /// creating | running | failed (last known; `status` refreshes it from the provider).
    pub state: String,
    pub resources: Resources,
    pub keys: Keys,
    /// Host ports that stand for the server's ports, by guest port ("22" -> 40022): a local VM
    /// is reached through port forwards on 127.0.0.1.
    pub forwards: BTreeMap<String, u16>,
    /// A local VM's process and files.
    pub vm: Option<LocalVm>,
}

/// What the local provider needs to find, stop and remove a trial's VM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalVm {
    pub pid: u32,
    /// The VM's own directory: overlay disk, seed, QMP socket, serial console log.
    pub dir: PathBuf,
    pub qmp: PathBuf,
    pub console: PathBuf,
    /// kvm or tcg.
    pub accel: String,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk_gb: u32,
    /// The base image the overlay sits on.
    pub base: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub server_id: Option<String>,
    pub firewall_id: Option<String>,
    pub ssh_key_id: Option<String>,
}

/// Key files are named relative to the trial directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Keys {
    pub ssh_private_key: String,
    pub ssh_public_key: String,
    pub ssh_key_fingerprint: String,
    pub host_private_key: String,
    pub host_public_key: String,
    /// Pinned: the only host key the server serves (injected by cloud-init).
    pub host_key_fingerprint: String,
}

pub const SSH_KEY_FILE: &str = "id_ed25519";
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";
pub const DEPLOY_USER: &str = "deploy";

impl Trial {
    /// Resource name used for the provider's SSH key and firewall.
    pub fn resource_name(&self) -> String {
        resource_name(&self.name)
    }

    /// A local VM under software emulation (QEMU TCG): every instruction is translated, so it
    /// runs many times slower than any real server.
    pub fn software_emulated(&self) -> bool {
        self.vm.as_ref().is_some_and(|v| v.accel == "tcg")
    }
}

pub fn resource_name(trial: &str) -> String {
    format!("munero-{trial}")
}
