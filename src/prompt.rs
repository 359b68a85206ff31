//! Confirmation of destructive commands.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

use crate::error::usage;

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
