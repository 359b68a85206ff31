//! The steps of `teardown --expired`: whole resource types at once across every expired trial of
//! a provider (servers, then firewalls, then keys, a bounded number in flight), one listing per
//! type to verify, then the local records; existing-host trials run their own destroy steps.

use std::fmt;
use std::path::PathBuf;

use munero_provider::{ProviderKind, Resource, ResourceKind};
use serde::Serialize;

use super::destroy::DestroyStep;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum TeardownStep {
    /// Delete these resources of one kind, `in_flight` at a time. A trial whose earlier resource
    /// failed keeps its later ones (a firewall still holding its server stays).
    DeleteAll { provider: ProviderKind, kind: ResourceKind, resources: Vec<Resource>, in_flight: usize },
    /// One listing per resource type: nothing of these trials may be left (but the kinds in
    /// `keep`: `--keep-snapshots`).
    VerifyGone {
        provider: ProviderKind,
        trials: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        keep: Vec<ResourceKind>,
    },
    /// A trial on a host without a provider API: its own destroy steps.
    DestroyTrial { provider: ProviderKind, trial: String, steps: Vec<DestroyStep> },
    /// Remove the local records of the trials that are gone.
    ForgetLocal { trials: Vec<String>, root: PathBuf },
}

impl fmt::Display for TeardownStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TeardownStep::DeleteAll { provider, kind, resources, in_flight } => {
                write!(f, "delete {} {provider} {kind}(s), {in_flight} at a time:", resources.len())?;
                for r in resources {
                    write!(f, "\n     {kind} {} (id {}) of trial {}", r.name, r.id, r.trial().unwrap_or("?"))?;
                }
                Ok(())
            }
            TeardownStep::VerifyGone { provider, trials, keep } => write!(
                f,
                "verify with one {provider} listing per resource type that nothing of {} is left{}",
                trials.join(", "),
                super::destroy::kept_text(keep)
            ),
            TeardownStep::DestroyTrial { provider, trial, steps } => {
                write!(f, "destroy {provider} trial {trial}:")?;
                for s in steps {
                    write!(f, "\n     {s}")?;
                }
                Ok(())
            }
            TeardownStep::ForgetLocal { trials, root } => {
                write!(f, "remove the local records of {} from {}", trials.join(", "), root.display())
            }
        }
    }
}

/// `--keep-snapshots`: the plan deletes no resource of the `keep` kinds and verifies without them.
pub fn keep_kinds(steps: &mut Vec<TeardownStep>, keep: &[ResourceKind]) {
    if keep.is_empty() {
        return;
    }
    steps.retain(|s| !matches!(s, TeardownStep::DeleteAll { kind, .. } if keep.contains(kind)));
    for s in steps.iter_mut() {
        match s {
            TeardownStep::VerifyGone { keep: k, .. } => *k = keep.to_vec(),
            TeardownStep::DestroyTrial { steps, .. } => super::destroy::keep_kinds(steps, keep),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use munero_provider::trial_labels;

    fn res(kind: ResourceKind, id: &str) -> Resource {
        Resource { kind, id: id.into(), name: id.into(), labels: trial_labels("t1", 1) }
    }

    #[test]
    fn keeping_snapshots_drops_their_deletion_and_tells_the_verify_step() {
        let p = ProviderKind::Hetzner;
        let mut steps = vec![
            TeardownStep::DeleteAll { provider: p, kind: ResourceKind::Server, resources: vec![res(ResourceKind::Server, "1")], in_flight: 8 },
            TeardownStep::DeleteAll { provider: p, kind: ResourceKind::Snapshot, resources: vec![res(ResourceKind::Snapshot, "9")], in_flight: 8 },
            TeardownStep::VerifyGone { provider: p, trials: vec!["t1".into()], keep: vec![] },
        ];
        keep_kinds(&mut steps, &[ResourceKind::Snapshot]);
        assert_eq!(steps.len(), 2);
        assert!(matches!(&steps[0], TeardownStep::DeleteAll { kind: ResourceKind::Server, .. }));
        assert!(steps[1].to_string().ends_with("nothing of t1 is left (snapshots are kept)"), "{}", steps[1]);
        let mut same = steps.clone();
        keep_kinds(&mut same, &[]);
        assert_eq!(same, steps);
    }
}
