//! Command-line definitions (clap derive). Operators script against these names.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "munero-infra", version, about = "Stand up, deploy to and tear down client-trial VMs")]
pub struct Cli {
    /// Where trial records and keys live (default: $MUNERO_STATE_DIR, else the XDG data dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Output format: a table for people, or exactly one JSON document on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Operator config file (default: ./munero.toml, then $XDG_CONFIG_HOME/munero-infra/munero.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a trial VM (or resume a half-made one).
    Create(CreateArgs),
    /// One row per trial: provider, type, IPv4, state, expires.
    #[command(alias = "list")]
    Status(StatusArgs),
    /// Delete a trial's server, firewall and SSH key, then its local secrets.
    Destroy(DestroyArgs),
    /// Destroy every trial whose expiry has passed, on every provider with credentials.
    Teardown(TeardownArgs),
    /// Upload the data, env and stack to a trial, bring it up, prove it works from outside.
    Deploy(crate::commands::deploy::DeployArgs),
    /// Rerun the HTTPS smoke checks and the exposure probe against a deployed trial.
    Smoke(crate::commands::smoke::SmokeArgs),
    /// Remove the client's data from a trial's stack (with a receipt).
    Wipe(crate::commands::wipe::WipeArgs),
    /// `docker compose logs` of a trial's stack.
    Logs(crate::commands::logs::LogsArgs),
    /// A shell on the trial's host, or one command (`ssh TRIAL -- df -h`); host key pinned.
    Ssh(crate::commands::ssh::SshArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Hetzner,
    Aws,
    Local,
    Ssh,
}

impl ProviderKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Hetzner => "hetzner",
            ProviderKind::Aws => "aws",
            ProviderKind::Local => "local",
            ProviderKind::Ssh => "ssh",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerSource {
    /// Docker Engine + Compose v2 from Docker's apt repository.
    Upstream,
    /// The distribution's docker.io + compose + buildx packages.
    Distro,
}

impl DockerSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            DockerSource::Upstream => "upstream",
            DockerSource::Distro => "distro",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Trial name: lowercase letters, digits and '-', 3 to 32 characters.
    pub trial: String,

    /// Where to create it (default from munero.toml).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,

    /// `cpu`, `gpu`, or a provider server type (e.g. cpx41).
    #[arg(long)]
    pub size: Option<String>,

    /// Provider location (e.g. nbg1, fsn1, hel1).
    #[arg(long)]
    pub location: Option<String>,

    /// Lifetime in days, 1..90 (default 14).
    #[arg(long, conflicts_with = "expires")]
    pub days: Option<i64>,

    /// Expiry as RFC 3339 (e.g. 2026-12-31T18:00:00Z), in the future.
    #[arg(long)]
    pub expires: Option<String>,

    /// Who may reach SSH: `auto` (your public address) or a CIDR; repeatable.
    #[arg(long = "ssh-from", value_name = "auto|CIDR")]
    pub ssh_from: Vec<String>,

    /// Accept an --ssh-from of /0 (SSH open to the whole internet); refused without this.
    #[arg(long)]
    pub allow_ssh_from_anywhere: bool,

    /// Domain name the trial will be served under.
    #[arg(long, value_name = "FQDN")]
    pub domain: Option<String>,

    /// OS image (default ubuntu-24.04).
    #[arg(long)]
    pub image: Option<String>,

    /// Extra CA certificate (PEM) the VM should trust; repeatable.
    #[arg(long = "trusted-ca", value_name = "FILE")]
    pub trusted_ca: Vec<PathBuf>,

    /// Where Docker comes from (default upstream: Docker's apt repository).
    #[arg(long, value_enum)]
    pub docker_source: Option<DockerSource>,

    /// Print the plan, create nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub ssh: crate::ssh_provider::SshHostArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Show only this trial.
    pub trial: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    pub trial: String,
    /// Do not ask; required when not run from a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Print the plan, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TeardownArgs {
    /// Destroy trials whose expiry is before --at (required: the only mode).
    #[arg(long, required = true)]
    pub expired: bool,
    /// Reference time (RFC 3339), default now.
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Print the plan, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}
