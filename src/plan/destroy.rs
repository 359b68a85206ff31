//! The steps of `destroy`: delete each labelled resource (server, firewall, key), verify none is
//! left, forget the local record; on an existing host, remove what the tool put there.

use std::fmt;
use std::path::PathBuf;

use munero_provider::{ProviderKind, Resource, ResourceKind};
use serde::Serialize;

use crate::ssh::RemoteCmd;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum DestroyStep {
    /// Delete one labelled resource (NotFound counts as done).
    DeleteResource { provider: ProviderKind, kind: ResourceKind, id: String, name: String, trial: String },
    /// List the trial's labelled resources again: none may be left.
    VerifyGone { provider: ProviderKind, trial: String },
    /// Run this on the trial's host (an existing host: wipe, then remove what the tool put there).
    /// `skip_if_unreachable` (`destroy --forget`): a host that cannot be reached is left as it is.
    OnHost { host: String, what: String, cmd: RemoteCmd, skip_if_unreachable: bool },
    /// Power off a local VM (QMP system_powerdown, then quit, then SIGKILL) and check it is gone.
    StopVm { pid: u32, qmp: PathBuf },
    /// Remove a local VM's files (overlay disk, seed, console log, sockets).
    RemoveVmFiles { dir: PathBuf },
    /// Remove the trial's local record and secrets.
    ForgetLocal { trial: String, path: PathBuf },
}

impl DestroyStep {
    pub fn delete(provider: ProviderKind, trial: &str, r: &Resource) -> DestroyStep {
        DestroyStep::DeleteResource { provider, kind: r.kind, id: r.id.clone(), name: r.name.clone(), trial: trial.to_string() }
    }
}

impl fmt::Display for DestroyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestroyStep::DeleteResource { provider, kind, id, name, trial } => {
                write!(f, "delete {provider} {kind} {name} (id {id}) of trial {trial}")
            }
            DestroyStep::VerifyGone { provider, trial } => {
                write!(f, "verify no {provider} resource labelled munero-trial={trial} is left")
            }
            DestroyStep::OnHost { host, what, cmd, skip_if_unreachable } => {
                write!(f, "on {host}: {what}{}: {cmd}", if *skip_if_unreachable { " (skipped if unreachable: --forget)" } else { "" })
            }
            DestroyStep::StopVm { pid, qmp } => write!(
                f,
                "power off VM process {pid} through {} (system_powerdown, then quit, then SIGKILL); verify it is gone",
                qmp.display()
            ),
            DestroyStep::RemoveVmFiles { dir } => write!(f, "remove the VM's disk, seed and logs: {}", dir.display()),
            DestroyStep::ForgetLocal { trial, path } => write!(f, "remove local secrets of {trial}: {}", path.display()),
        }
    }
}
