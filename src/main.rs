//! Thin binary: parse arguments, run, map errors to exit codes (0 ok, 1 failure, 2 usage).
use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `munero-infra status | head` would panic on the first write after
    // head exits; restore the default so a closed pipe ends the process quietly, as it does for
    // every other Unix tool.
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    ExitCode::from(munero_infra::run_from_args(std::env::args_os()))
}
