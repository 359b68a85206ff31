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
            DestroyStep::ForgetLocal { trial, path } => write!(f, "remove local secrets of {trial}: {}", path.display()),
        }
    }
}
