//! The steps of `wipe`: the stack's own wipe on the host, then the uploaded copy of the dataset.

use std::fmt;

use serde::Serialize;

use crate::ssh::RemoteCmd;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum WipeStep {
    /// Stops the stack, removes the client_data and app_state volumes, starts it again, verifies,
    /// prints a receipt; then deletes the uploaded copy of the dataset.
    Wipe { host: String, cmd: RemoteCmd },
}

impl fmt::Display for WipeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WipeStep::Wipe { host, cmd } => write!(f, "[wipe] on {host}: {cmd}"),
        }
    }
}
