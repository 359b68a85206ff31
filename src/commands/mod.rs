//! One command, one file.

pub mod create;
pub mod deploy;
pub mod destroy;
pub mod logs;
pub mod smoke;
pub mod ssh;
pub mod status;
pub mod teardown;
pub mod wipe;

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::usage;

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// Confirm a destructive command by typing the trial's name on a terminal; without a terminal
/// refuse (exit 2) and ask for --yes, so a script never destroys anything by accident.
/// `what` says what would be lost ("deletes trial x and its data"), `question` is the prompt.
pub fn confirm_by_name(trial: &str, what: &str, question: &str, nothing_done: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!("{what} for good; not run from a terminal, so pass --yes to confirm")));
    }
    eprint!("{question} Type the trial name to confirm: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() == trial {
        Ok(())
    } else {
        Err(usage(format!("not confirmed (expected {trial:?}); {nothing_done}")))
    }
}
