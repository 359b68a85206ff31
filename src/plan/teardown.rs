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
    /// One listing per resource type: nothing of these trials may be left.
    VerifyGone { provider: ProviderKind, trials: Vec<String> },
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
            TeardownStep::VerifyGone { provider, trials } => write!(
                f,
                "verify with one {provider} listing per resource type that nothing of {} is left",
                trials.join(", ")
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
