//! The steps of `create`: on a cloud, keys -> ssh key -> firewall -> server -> running -> record;
//! on an existing host, pin its key -> log in and check it -> record.

use std::fmt;
use std::path::PathBuf;

use munero_provider::{labels_to_string, FirewallRule, Labels};
use serde::Serialize;

use crate::ssh::RemoteCmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// The trial's login key (deploy user).
    Login,
    /// The server's SSH host key, injected through cloud-init and pinned.
    Host,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum CreateStep {
    /// Generate (or reuse, when resuming) an ed25519 key stored 0600 in the trial dir.
    GenerateKey { role: KeyRole, path: PathBuf, reuse: bool },
    /// Find the SSH key by label, or register it.
    EnsureSshKey { name: String, fingerprint: String, labels: Labels },
    /// Find the firewall by label, or create it; its rules are set to these.
    EnsureFirewall {
        name: String,
        rules: Vec<FirewallRule>,
        labels: Labels,
        /// In the network of this subnet (AWS: its VPC) instead of the default one.
        #[serde(skip_serializing_if = "Option::is_none")]
        subnet: Option<String>,
    },
    /// Find the trial's server by label (resume), or create it with the user-data, key,
    /// firewall and labels, and wait for the create action.
    EnsureServer {
        name: String,
        server_type: String,
        image: String,
        location: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        subnet: Option<String>,
        user_data_bytes: usize,
        labels: Labels,
    },
    /// Wait for the running state and the public IPv4.
    WaitRunning { name: String },
    /// Keep the host key the operator vouches for (nothing is trusted on first use).
    PinHostKey { fingerprint: String, from: PathBuf, to: PathBuf },
    /// Log in with the pinned host key and run this check on the host.
    VerifyLogin { target: String, with: String, cmd: RemoteCmd },
    /// Have the base disk of a local VM (download once and verify, or a local file).
    PrepareImage { source: String, disk: PathBuf },
    /// Run this program here (a local VM's overlay disk and seed).
    RunLocal { what: String, argv: Vec<String> },
    /// Start the local VM (daemonized QEMU) with this command line.
    BootVm { accel: String, argv: Vec<String> },
    /// Wait until SSH answers on the forwarded port with exactly the pinned host key.
    WaitSsh { target: String, timeout_s: u64 },
    /// Point `fqdn` at the server's IPv4: an A record set in the operator's zone, labelled like
    /// the trial's other resources (found again by label on a resumed create).
    EnsureDnsRecord { fqdn: String, zone: String, zone_id: String, name: String, labels: Labels },
    /// Ask the zone's authoritative nameservers until they give the server's IPv4 (a CA asks
    /// them too); a slow answer is a warning: deploy checks the name again.
    WaitDns { fqdn: String, nameservers: Vec<String>, timeout_s: u64 },
    /// Write the trial record.
    RecordTrial { path: PathBuf },
}

impl CreateStep {
    /// Short name for error messages ("failed at step 3/7 (firewall)").
    pub fn name(&self) -> &'static str {
        match self {
            CreateStep::GenerateKey { .. } => "keys",
            CreateStep::EnsureSshKey { .. } => "ssh key",
            CreateStep::EnsureFirewall { .. } => "firewall",
            CreateStep::EnsureServer { .. } => "server",
            CreateStep::WaitRunning { .. } => "wait running",
            CreateStep::PinHostKey { .. } => "pin host key",
            CreateStep::VerifyLogin { .. } => "log in",
            CreateStep::PrepareImage { .. } => "image",
            CreateStep::RunLocal { .. } => "disk",
            CreateStep::BootVm { .. } => "boot",
            CreateStep::WaitSsh { .. } => "wait ssh",
            CreateStep::EnsureDnsRecord { .. } => "dns record",
            CreateStep::WaitDns { .. } => "wait dns",
            CreateStep::RecordTrial { .. } => "record",
        }
    }
}

impl fmt::Display for CreateStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateStep::GenerateKey { role, path, reuse } => {
                let what = match role {
                    KeyRole::Login => "trial login key",
                    KeyRole::Host => "server host key",
                };
                let verb = if *reuse { "reuse" } else { "generate" };
                write!(f, "{verb} ed25519 {what} -> {} (0600)", path.display())
            }
            CreateStep::EnsureSshKey { name, fingerprint, labels } => {
                write!(f, "ensure ssh key {name} ({fingerprint}) labels {}", labels_to_string(labels))
            }
            CreateStep::EnsureFirewall { name, rules, labels, subnet } => {
                write!(f, "ensure firewall {name} labels {}", labels_to_string(labels))?;
                if let Some(s) = subnet {
                    write!(f, " in the network of subnet {s}")?;
                }
                for r in rules {
                    write!(f, "\n     rule: {r}")?;
                }
                write!(f, "\n     rule: everything else inbound is dropped")
            }
            CreateStep::EnsureServer { name, server_type, image, location, subnet, user_data_bytes, labels } => write!(
                f,
                "ensure server {name}: find by label, else create type={server_type} image={image} location={}{} \
                 user-data={user_data_bytes} bytes labels {}; wait for the create action",
                location.as_deref().unwrap_or("(provider default)"),
                subnet.as_deref().map(|s| format!(" subnet={s}")).unwrap_or_default(),
                labels_to_string(labels)
            ),
            CreateStep::WaitRunning { name } => write!(f, "wait until server {name} is running with a public IPv4"),
            CreateStep::PinHostKey { fingerprint, from, to } => {
                write!(f, "pin host key {fingerprint} from {} -> {} (0600)", from.display(), to.display())
            }
            CreateStep::VerifyLogin { target, with, cmd } => write!(
                f,
                "log in as {target} with {with} (the host must present exactly the pinned key) and run: {cmd}"
            ),
            CreateStep::PrepareImage { source, disk } => write!(f, "base image {source} -> {}", disk.display()),
            CreateStep::RunLocal { what, argv } => write!(f, "{what}: {}", argv_line(argv)),
            CreateStep::BootVm { accel, argv } => write!(f, "boot the VM ({accel}): {}", argv_line(argv)),
            CreateStep::WaitSsh { target, timeout_s } => write!(
                f,
                "wait up to {timeout_s} s until {target} answers with the pinned host key (the serial console's tail on failure)"
            ),
            CreateStep::EnsureDnsRecord { fqdn, zone, name, labels, .. } => write!(
                f,
                "ensure DNS record {fqdn} A -> the server's IPv4, and AAAA -> its IPv6 when it has one (zone {zone}, name \
                 {name}, ttl 60) labels {}; a record of that name not made for this trial is never changed: the create stops",
                labels_to_string(labels)
            ),
            CreateStep::WaitDns { fqdn, nameservers, timeout_s } => write!(
                f,
                "wait up to {timeout_s} s until {} answer {fqdn} with the server's IPv4",
                if nameservers.is_empty() { "the zone's nameservers".to_string() } else { nameservers.join(", ") }
            ),
            CreateStep::RecordTrial { path } => write!(f, "record the trial in {}", path.display()),
        }
    }
}

/// A local command line as a shell would read it.
pub fn argv_line(argv: &[String]) -> String {
    argv.iter().map(|w| crate::ssh::quote(w)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::render;
    use munero_provider::{trial_labels, Direction, Protocol};

    #[test]
    fn plan_renders_numbered_steps_with_rules() {
        let labels = trial_labels("acme", 1_800_000_000);
        let steps = vec![
            CreateStep::EnsureFirewall {
                name: "munero-acme".into(),
                rules: vec![FirewallRule {
                    direction: Direction::In,
                    protocol: Protocol::Tcp,
                    port: Some("22".into()),
                    source_ips: vec!["203.0.113.7/32".into()],
                    description: "ssh".into(),
                }],
                labels: labels.clone(),
                subnet: None,
            },
            CreateStep::WaitRunning { name: "acme".into() },
        ];
        assert_eq!(
            render(&steps),
            " 1. ensure firewall munero-acme labels munero-expires=1800000000,munero-managed=true,munero-trial=acme\n     \
             rule: in tcp 22 from 203.0.113.7/32 (ssh)\n     rule: everything else inbound is dropped\n \
             2. wait until server acme is running with a public IPv4"
        );
        let j = serde_json::to_value(&steps[1]).unwrap();
        assert_eq!(j["step"], "wait_running");
    }

    #[test]
    fn a_login_check_shows_the_command_it_runs() {
        let s = CreateStep::VerifyLogin {
            target: "deploy@h:22".into(),
            with: "the ssh-agent".into(),
            cmd: RemoteCmd::argv(["docker", "compose", "version"]),
        };
        assert!(s.to_string().ends_with("and run: docker compose version"));
        assert_eq!(serde_json::to_value(&s).unwrap()["cmd"], "docker compose version");
    }
}
