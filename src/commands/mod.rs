//! One command, one file: each wires its arguments to resolved inputs, a plan and its run.

pub mod create;
pub mod deploy;
pub mod destroy;
pub mod image;
pub mod logs;
pub mod smoke;
pub mod ssh;
pub mod status;
pub mod teardown;
pub mod wipe;
