//! `completions bash|zsh|fish`: the shell's completion script on stdout, from the same clap
//! definitions the binary parses with, so it never lists a flag that does not exist.

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;
use serde_json::json;

use crate::cli::{Cli, CompletionShell, CompletionsArgs};
use crate::output::Report;

pub fn script(shell: CompletionShell) -> String {
    let sh = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut Cli::command(), "munero-infra", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn run(args: &CompletionsArgs) -> Result<Report> {
    let s = script(args.shell);
    Ok(Report::new(json!({"ok": true, "command": "completions", "script": s}), s))
}
