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
    /// List the trial's labelled resources again: none may be left (but the kinds in `keep`).
    VerifyGone {
        provider: ProviderKind,
        trial: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        keep: Vec<ResourceKind>,
    },
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
            DestroyStep::VerifyGone { provider, trial, keep } => {
                write!(f, "verify no {provider} resource labelled munero-trial={trial} is left{}", kept_text(keep))
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

/// " (snapshots are kept)" for a verify step that leaves some kinds alone.
pub fn kept_text(keep: &[ResourceKind]) -> String {
    if keep.is_empty() {
        return String::new();
    }
    let names: Vec<String> = keep.iter().map(|k| format!("{k}s")).collect();
    format!(" ({} are kept)", names.join(", "))
}

/// `--keep-snapshots`: no deletion of the `keep` kinds, and the verify step leaves them alone.
pub fn keep_kinds(steps: &mut Vec<DestroyStep>, keep: &[ResourceKind]) {
    if keep.is_empty() {
        return;
    }
    steps.retain(|s| !matches!(s, DestroyStep::DeleteResource { kind, .. } if keep.contains(kind)));
    for s in steps.iter_mut() {
        if let DestroyStep::VerifyGone { keep: k, .. } = s {
            *k = keep.to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeping_snapshots_leaves_them_out_of_the_deletions_and_the_check() {
        let p = ProviderKind::Hetzner;
        let del = |kind, id: &str| DestroyStep::DeleteResource { provider: p, kind, id: id.into(), name: id.into(), trial: "t1".into() };
        let mut steps = vec![
            del(ResourceKind::Server, "1"),
            del(ResourceKind::Snapshot, "9"),
            DestroyStep::VerifyGone { provider: p, trial: "t1".into(), keep: vec![] },
        ];
        keep_kinds(&mut steps, &[ResourceKind::Snapshot]);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].to_string(), "verify no hetzner resource labelled munero-trial=t1 is left (snapshots are kept)");
    }
}
