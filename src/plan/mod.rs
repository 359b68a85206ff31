//! Lifecycles as data: each command has its own step type, an ordered list of which `--dry-run`
//! prints and the executor walks. A step that runs something on a host carries its `RemoteCmd`,
//! and its text is rendered from that value, so the printed plan is the plan that runs.

pub mod auth;
pub mod create;
pub mod destroy;
pub mod extend;
pub mod snapshot;
pub mod teardown;
pub mod wipe;

use std::fmt::Display;

/// A numbered plan, one step per line (continuation lines indented).
pub fn render<S: Display>(steps: &[S]) -> String {
    steps.iter().enumerate().map(|(i, s)| format!("{:>2}. {s}", i + 1)).collect::<Vec<_>>().join("\n")
}

/// The first line of a step, for progress output.
pub fn headline<S: Display>(step: &S) -> String {
    step.to_string().lines().next().unwrap_or("").to_string()
}
