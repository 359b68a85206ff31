//! A lifecycle as data: an ordered list of typed steps. `--dry-run` prints the list; the
//! executor walks the same list.

use std::fmt;
use std::path::PathBuf;

use munero_provider::{labels_to_string, FirewallRule, Labels, ResourceKind};
use serde::Serialize;

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
pub enum Step {
    /// Generate (or reuse, when resuming) an ed25519 key stored 0600 in the trial dir.
    GenerateKey { role: KeyRole, path: PathBuf, reuse: bool },
    /// Find the SSH key by label, or register it.
    EnsureSshKey { name: String, fingerprint: String, labels: Labels },
    /// Find the firewall by label, or create it; its rules are set to these.
    EnsureFirewall { name: String, rules: Vec<FirewallRule>, labels: Labels },
    /// Find the trial's server by label (resume), or create it with the user-data, key,
    /// firewall and labels, and wait for the create action.
    EnsureServer {
        name: String,
        server_type: String,
        image: String,
        location: Option<String>,
        user_data_bytes: usize,
        labels: Labels,
    },
    /// Wait for the running state and the public IPv4.
    WaitRunning { name: String },
    /// Write the trial record.
    RecordTrial { path: PathBuf },
    /// Delete one labelled resource (NotFound counts as done) and wait until it is gone.
    DeleteResource { provider: String, kind: ResourceKind, id: String, name: String, trial: String },
    /// List the trial's labelled resources again: none may be left.
    VerifyGone { provider: String, trial: String },
    /// Remove the trial's local record and secrets.
    ForgetLocal { trial: String, path: PathBuf },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::GenerateKey { role, path, reuse } => {
                let what = match role {
                    KeyRole::Login => "trial login key",
                    KeyRole::Host => "server host key",
                };
                let verb = if *reuse { "reuse" } else { "generate" };
                write!(f, "{verb} ed25519 {what} -> {} (0600)", path.display())
            }
            Step::EnsureSshKey { name, fingerprint, labels } => {
                write!(f, "ensure ssh key {name} ({fingerprint}) labels {}", labels_to_string(labels))
            }
            Step::EnsureFirewall { name, rules, labels } => {
                write!(f, "ensure firewall {name} labels {}", labels_to_string(labels))?;
                for r in rules {
                    write!(f, "\n     rule: {r}")?;
                }
                write!(f, "\n     rule: everything else inbound is dropped")
            }
            Step::EnsureServer { name, server_type, image, location, user_data_bytes, labels } => {
                write!(
                    f,
                    "ensure server {name}: find by label, else create type={server_type} image={image} location={} \
                     user-data={user_data_bytes} bytes labels {}; wait for the create action",
                    location.as_deref().unwrap_or("(provider default)"),
                    labels_to_string(labels)
                )
            }
            Step::WaitRunning { name } => write!(f, "wait until server {name} is running with a public IPv4"),
            Step::RecordTrial { path } => write!(f, "record the trial in {}", path.display()),
            Step::DeleteResource { provider, kind, id, name, trial } => {
                write!(f, "delete {provider} {kind} {name} (id {id}) of trial {trial}; wait until gone")
            }
            Step::VerifyGone { provider, trial } => {
                write!(f, "verify no {provider} resource labelled munero-trial={trial} is left")
            }
            Step::ForgetLocal { trial, path } => write!(f, "remove local secrets of {trial}: {}", path.display()),
        }
    }
}

/// A numbered plan, one step per line.
pub fn render(steps: &[Step]) -> String {
    steps.iter().enumerate().map(|(i, s)| format!("{:>2}. {s}", i + 1)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use munero_provider::{trial_labels, Direction, Protocol};

    #[test]
    fn plan_renders_numbered_steps_with_rules() {
        let labels = trial_labels("acme", 1_800_000_000);
        let steps = vec![
            Step::EnsureFirewall {
                name: "munero-acme".into(),
                rules: vec![FirewallRule {
                    direction: Direction::In,
                    protocol: Protocol::Tcp,
                    port: Some("22".into()),
                    source_ips: vec!["203.0.113.7/32".into()],
                    description: "ssh".into(),
                }],
                labels: labels.clone(),
            },
            Step::WaitRunning { name: "acme".into() },
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
}
