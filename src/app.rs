//! The top of the program: parse, dispatch to one command, print, and map errors to exit codes.

use std::ffi::OsString;

use clap::Parser;
use serde_json::json;
use time::OffsetDateTime;

use crate::cli::{Cli, Command};
use crate::ctx::Ctx;
use crate::output::{self, OutputFormat};
use crate::config::Config;
use crate::output::Out;
use crate::{commands, error};
use crate::store::Store;

/// Parse, run, print, and return the exit code (0 ok, 1 failure, 2 usage/validation).
pub fn run_from_args<I: IntoIterator<Item = OsString>>(args: I) -> u8 {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            if code == 0 {
                return 0;
            }
            // Even a parse error gives one JSON document when JSON output was asked for.
            if wants_json(&args) {
                let msg = e.kind().to_string();
                let detail = e.to_string();
                let first = detail.lines().next().unwrap_or(&msg).trim_start_matches("error: ").to_string();
                Out::new(OutputFormat::Json)
                    .emit(&output::Report::new(json!({"ok": false, "error": first, "exit_code": 2}), ""));
            }
            return 2;
        }
    };
    init_tracing(cli.verbose);
    let out = Out::new(cli.output);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(report) => {
            out.emit(&report);
            report.exit_code
        }
        Err(err) => {
            let code = error::exit_code_of(&err);
            eprintln!("error: {err:#}");
            if out.format == OutputFormat::Json {
                out.emit(&output::Report::new(json!({"ok": false, "error": format!("{err:#}"), "exit_code": code}), ""));
            }
            code
        }
    }
}

fn wants_json(args: &[OsString]) -> bool {
    let a: Vec<String> = args.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    a.iter().any(|x| x == "--output=json") || a.windows(2).any(|w| w[0] == "--output" && w[1] == "json")
}

async fn run(cli: Cli) -> anyhow::Result<output::Report> {
    let config = Config::load(cli.config.as_deref())?;
    let store = Store::resolve(cli.state_dir.as_deref())?;
    let ctx = Ctx { store, config, out: Out::new(cli.output), now: OffsetDateTime::now_utc() };
    let result = match &cli.command {
        Command::Create(a) => commands::create::run(&ctx, a).await,
        Command::Status(a) => commands::status::run(&ctx, a).await,
        Command::Destroy(a) => commands::destroy::run(&ctx, a).await,
        Command::Teardown(a) => commands::teardown::run(&ctx, a).await,
        Command::Deploy(a) => commands::deploy::run(&ctx, a).await,
        Command::Smoke(a) => commands::smoke::run(&ctx, a).await,
        Command::Wipe(a) => commands::wipe::run(&ctx, a).await,
        Command::Logs(a) => commands::logs::run(&ctx, a).await,
        Command::Ssh(a) => commands::ssh::run(&ctx, a).await,
        Command::Image(crate::cli::ImageCommand::Build(a)) => commands::image::build(&ctx, a).await,
        Command::Schedule(a) => commands::schedule::run(&ctx, a),
        Command::Extend(a) => commands::extend::run(&ctx, a).await,
        Command::Snapshot(a) => commands::snapshot::snapshot(&ctx, a).await,
        Command::Restore(a) => commands::snapshot::restore(&ctx, a).await,
        Command::Receipt(a) => commands::receipt::run(&ctx, a),
        Command::Auth(a) => commands::auth::run(&ctx, a).await,
        Command::Onboard(a) => commands::onboard::run(&ctx, a).await,
        Command::History(a) => commands::history::run(&ctx, a),
        Command::Init(a) => commands::init::run(&ctx, a),
        Command::Completions(a) => commands::completions::run(a),
        Command::Doctor(a) => commands::doctor::run(&ctx, a).await,
    };
    crate::audit::after_command(&ctx, &cli.command, &result).await;
    result
}

fn init_tracing(verbose: u8) {
    // Only our crates get more verbose: HTTP and SSH libraries' debug output could carry headers
    // (the API token) or request bodies (the user-data with the host key).
    let default = match verbose {
        0 => "warn",
        1 => "warn,munero_infra=info,munero_hetzner=info,munero_aws=info,munero_provider=info",
        _ => "warn,munero_infra=debug,munero_hetzner=debug,munero_aws=debug,munero_provider=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MUNERO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(output::stderr_colour()).with_target(false).try_init();
}
