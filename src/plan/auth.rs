//! The steps of an `auth` change: the new set saved here (0600), its hashes written on the host,
//! Caddy reloaded in its running container.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::ssh::RemoteCmd;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum AuthStep {
    /// users.toml (passwords and hashes) and basic-auth.toml (the first user), mode 0600.
    SaveLocal { file: PathBuf, users: Vec<String>, locked: bool },
    /// The Caddy users file: names and bcrypt hashes, mode 0600, written atomically.
    PutUsers { host: String, remote: String, users: Vec<String> },
    /// `caddy reload` inside the running container (no restart).
    Reload { host: String, cmd: RemoteCmd },
}

fn names(users: &[String], locked: bool) -> String {
    if users.is_empty() {
        if locked { "none (locked: every request gets 401)".into() } else { "none".into() }
    } else {
        users.join(", ")
    }
}

impl fmt::Display for AuthStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthStep::SaveLocal { file, users, locked } => {
                write!(f, "[save-local] write {} with mode 0600: users {}", file.display(), names(users, *locked))
            }
            AuthStep::PutUsers { host, remote, users } => write!(
                f,
                "[put-users] on {host}: write {remote} with mode 0600: {} (bcrypt hashes only)",
                names(users, users.is_empty())
            ),
            AuthStep::Reload { host, cmd } => write!(f, "[reload] on {host}: {cmd}"),
        }
    }
}
