//! Thin binary: parse arguments, run, map errors to exit codes (0 ok, 1 failure, 2 usage).
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(munero_infra::run_from_args(std::env::args_os()))
}
