//! One command, one file: each wires its arguments to resolved inputs, a plan and its run.

pub mod auth;
pub mod completions;
pub mod create;
pub mod deploy;
pub mod destroy;
pub mod extend;
pub mod doctor;
pub mod history;
pub mod image;
pub mod init;
pub mod logs;
pub mod onboard;
pub mod receipt;
pub mod smoke;
pub mod snapshot;
pub mod schedule;
pub mod ssh;
pub mod status;
pub mod teardown;
pub mod wipe;
