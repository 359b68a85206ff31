//! The steps of `extend`: the provider's expiry labels first (what teardown reads), then the
//! VM's own timer (the on-box kill path), then the local record.

use std::fmt;
use std::path::PathBuf;

use munero_provider::{ProviderKind, Resource};
use serde::Serialize;

use crate::ssh::RemoteCmd;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum ExtendStep {
    /// Set `munero-expires` on each of the trial's labelled resources.
    Relabel { provider: ProviderKind, resources: Vec<Resource>, expires: String, expires_unix: i64 },
    /// Move the VM's expiry (its trial env and its wipe timer) over SSH.
    OnHost { host: String, cmd: RemoteCmd },
    /// Write the new expiry into the trial record.
    Record { path: PathBuf, expires: String },
}

impl fmt::Display for ExtendStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtendStep::Relabel { provider, resources, expires, expires_unix } => {
                let names: Vec<String> = resources.iter().map(|r| format!("{} {}", r.kind, r.name)).collect();
                write!(f, "set munero-expires={expires_unix} ({expires}) on {provider}: {}", names.join(", "))
            }
            ExtendStep::OnHost { host, cmd } => write!(f, "move the VM's expiry and wipe timer on {host}: {cmd}"),
            ExtendStep::Record { path, expires } => write!(f, "record the new expiry {expires} in {}", path.display()),
        }
    }
}

/// The VM side: the trial env the on-box script reads, and the timer at expiry plus the grace.
pub fn on_host_cmd(expires_unix: i64, wipe_at_systemd: &str) -> RemoteCmd {
    RemoteCmd::shell(format!(
        "sudo sed -i 's/^MUNERO_EXPIRES=.*/MUNERO_EXPIRES={expires_unix}/' /etc/munero/trial.env && \
         sudo sed -i 's/^OnCalendar=.*/OnCalendar={wipe_at_systemd}/' /etc/systemd/system/munero-expire.timer && \
         sudo systemctl daemon-reload && sudo systemctl restart munero-expire.timer && \
         grep -q '^MUNERO_EXPIRES={expires_unix}$' /etc/munero/trial.env && \
         systemctl show -p NextElapseUSecRealtime --value munero-expire.timer"
    ))
}
