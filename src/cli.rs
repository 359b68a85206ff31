//! Command-line definitions (clap derive). Operators script against these names.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use munero_provider::ProviderKind;

use crate::cloudinit::DockerSource;
use crate::output::OutputFormat;

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
    Deploy(DeployArgs),
    /// Rerun the HTTPS smoke checks and the exposure probe against a deployed trial.
    Smoke(SmokeArgs),
    /// Remove the client's data from a trial's stack (with a receipt).
    Wipe(WipeArgs),
    /// `docker compose logs` of a trial's stack.
    Logs(LogsArgs),
    /// VM images for the local provider (`image build`: one made here, without downloading).
    #[command(subcommand)]
    Image(ImageCommand),
    /// Move a trial's expiry: provider labels, then the VM's own wipe timer, then the record.
    Extend(ExtendArgs),
    /// Take a provider snapshot of the trial's server (the rollback point before onboarding).
    Snapshot(SnapshotArgs),
    /// Create the trial's server again from its latest snapshot.
    Restore(RestoreArgs),
    /// The trial's latest wipe or destroy receipt (kept here after destroy).
    Receipt(ReceiptArgs),
    /// Run `teardown --expired` on a schedule here (systemd timer, else cron): install, remove, status.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// A shell on the trial's host, or one command (`ssh TRIAL -- df -h`); host key pinned.
    Ssh(SshArgs),
    /// The trial's Basic Auth users: list, add, rotate, revoke (Caddy reloaded, no restart).
    Auth(AuthArgs),
    /// The client's onboarding message (URL, user, example questions from their own data).
    Onboard(OnboardArgs),
    /// What was done to a trial: one line per lifecycle action (time, operator, action, result).
    History(HistoryArgs),
    /// Write a commented munero.toml and an env template for a new client into DIR.
    Init(InitArgs),
    /// Shell completions for bash, zsh or fish on stdout.
    Completions(CompletionsArgs),
    /// Check what the next commands need (credentials, keys, clock, docker, disk, state dir).
    Doctor(DoctorArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Trial name: lowercase letters, digits and '-', 3 to 32 characters.
    pub trial: String,

    /// Where to create it (default from munero.toml).
    #[arg(long, value_parser = parse_provider, value_name = "hetzner|aws|local|ssh")]
    pub provider: Option<ProviderKind>,

    /// `cpu`, `gpu`, or a provider server type (e.g. cpx41).
    #[arg(long)]
    pub size: Option<String>,

    /// Provider location: Hetzner nbg1, fsn1, hel1; AWS a region or one of its zones
    /// (eu-central-1, eu-central-1a).
    #[arg(long)]
    pub location: Option<String>,

    /// AWS: the subnet to launch in (subnet-...); its VPC gets the trial's security group.
    /// Default: the default subnets of the region's default VPC.
    #[arg(long, value_name = "SUBNET_ID")]
    pub subnet: Option<String>,

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

    /// Name the trial is served under: `auto` (its IPv4 under a wildcard DNS service, sslip.io
    /// unless `auto_domain_base` in munero.toml names another; the default where the host has a
    /// public address) or a name you own.
    #[arg(long, value_name = "auto|FQDN")]
    pub domain: Option<String>,

    /// Where the certificate comes from: acme (Let's Encrypt, trusted by browsers; the default
    /// with a name), acme-staging (rehearsals: no weekly limits, not trusted) or internal
    /// (Caddy's own CA: browsers warn; the default without a public address).
    #[arg(long, value_enum)]
    pub tls: Option<crate::site::Tls>,

    /// Same as `--tls acme-staging`.
    #[arg(long, conflicts_with = "tls")]
    pub acme_staging: bool,

    /// Make the --domain record (A, the server's IPv4) in your zone there, and remove it at
    /// destroy and teardown; a record of that name the tool did not make is never changed.
    #[arg(long, value_enum)]
    pub dns: Option<crate::site::DnsService>,

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
    pub ssh: SshHostArgs,
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
    /// An existing host that cannot be reached: forget its record anyway (its data may stay there).
    #[arg(long)]
    pub forget: bool,
    /// Keep the trial's provider snapshots (they stay labelled; a later teardown removes them).
    #[arg(long)]
    pub keep_snapshots: bool,
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
    /// Only list (and notify about) the trials that expire within this window, e.g. 24h;
    /// nothing is deleted.
    #[arg(long, value_name = "DURATION")]
    pub warn_before: Option<String>,
    /// Keep the expired trials' provider snapshots.
    #[arg(long)]
    pub keep_snapshots: bool,
    /// Print the plan, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    pub trial: String,
    /// The client's SQLite database (default: the bundled sample dataset).
    #[arg(long, value_name = "FILE.sqlite")]
    pub data: Option<PathBuf>,
    /// Env file for the stack (default: the bundle's .env.example); generated values are merged in.
    #[arg(long, value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// Ollama model to serve (default: OLLAMA_MODEL of the env file, else munero.toml, else qwen2.5-coder:3b).
    #[arg(long)]
    pub model: Option<String>,
    /// Build the images here and stream them with `docker save | docker load` (no build on the host).
    #[arg(long)]
    pub ship_images: bool,
    /// Copy the model from a local Ollama store (default: $OLLAMA_MODELS, else ~/.ollama/models)
    /// instead of pulling it on the host: for hosts that cannot reach the model registry.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub ship_model: Option<String>,
    /// Fail when the model cannot be had (default: say so and finish; the dashboard works).
    #[arg(long)]
    pub require_model: bool,
    /// Checkout with backend/ and frontend/ (default: the repository this binary was built from).
    #[arg(long, value_name = "DIR")]
    pub app_dir: Option<PathBuf>,
    /// Run only these steps of the plan (comma separated ids as --dry-run shows them).
    #[arg(long, value_delimiter = ',', value_name = "STEP")]
    pub only: Vec<String>,
    /// Also trust this root certificate (PEM) when checking the site's certificate: a private
    /// ACME CA's in a rehearsal. Without it an ACME site must chain to this machine's roots.
    #[arg(long, value_name = "PEM")]
    pub trust_ca: Option<PathBuf>,
    /// Redeploy everything: send the whole dataset, env, stack and images and bring the stack up,
    /// even when the host's deploy record says they did not change.
    #[arg(long)]
    pub force: bool,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    pub trial: String,
    /// Fail when the model is not available (default: report it; the dashboard is still checked).
    #[arg(long)]
    pub require_model: bool,
    /// Run only these checks (comma separated: certificate, wait-healthy, smoke, exposure-probe).
    #[arg(long, value_delimiter = ',', value_name = "STEP")]
    pub only: Vec<String>,
    /// Also trust this root certificate (PEM) when checking the site's certificate: a private
    /// ACME CA's in a rehearsal. Without it an ACME site must chain to this machine's roots.
    #[arg(long, value_name = "PEM")]
    pub trust_ca: Option<PathBuf>,
    /// Print the plan, check nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct WipeArgs {
    pub trial: String,
    /// Do not ask; required when not run from a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Print what would run, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    pub trial: String,
    /// One service: caddy, backend, frontend or ollama (default: all).
    pub service: Option<String>,
    /// Keep following new output.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only output since this long ago (e.g. 10m, 2h) or a timestamp.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SshArgs {
    pub trial: String,
    /// Command to run on the host (after `--`); none opens an interactive shell.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Flags of `create --provider ssh` (flattened into `create`).
#[derive(Debug, Clone, Default, Args)]
pub struct SshHostArgs {
    /// --provider ssh: address or name of the existing host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// --provider ssh: SSH port (default 22).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// --provider ssh: login user (default deploy); it must be able to run docker.
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// --provider ssh: private key to log in with (default: the ssh-agent's keys).
    #[arg(long, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// --provider ssh: the host's public key (e.g. a copy of /etc/ssh/ssh_host_ed25519_key.pub); pinned.
    #[arg(long = "host-key", value_name = "PUBKEYFILE")]
    pub host_key: Option<PathBuf>,
    /// --provider ssh: directory of the stack on the host (default: munero, under the user's home).
    #[arg(long = "remote-dir", value_name = "DIR")]
    pub remote_dir: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ExtendArgs {
    pub trial: String,
    /// Days added to the current expiry (or to now, if it has passed).
    #[arg(long, conflicts_with = "until")]
    pub days: Option<i64>,
    /// The new expiry, RFC 3339, in the future.
    #[arg(long, value_name = "RFC3339")]
    pub until: Option<String>,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotArgs {
    pub trial: String,
    /// The snapshot's description (default: `<trial> <time>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Print the plan, take nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    pub trial: String,
    /// The trial still has a server: delete it first, then create it again from the snapshot.
    #[arg(long)]
    pub replace: bool,
    /// Do not ask; required with --replace when not run from a terminal.
    #[arg(long)]
    pub yes: bool,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ReceiptArgs {
    pub trial: String,
    /// List every receipt of the trial instead of printing the latest.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Install (or replace) the scheduled teardown; prints exactly what it installed.
    Install(ScheduleInstallArgs),
    /// Remove the scheduled teardown and its credentials file.
    Remove(ScheduleScopeArgs),
    /// Whether it is installed, when it runs next, and the last run's result.
    Status(ScheduleScopeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleWith {
    /// systemd where it runs, else cron.
    Auto,
    Systemd,
    Cron,
}

#[derive(Debug, Clone, Args)]
pub struct ScheduleScopeArgs {
    /// The operator's own systemd (`systemctl --user`); the default when not root.
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// The machine's systemd (/etc/systemd/system); the default as root.
    #[arg(long)]
    pub system: bool,
    /// systemd or cron (default: systemd where it runs).
    #[arg(long, value_enum, default_value = "auto")]
    pub with: ScheduleWith,
    /// Print what would be installed or removed, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ScheduleInstallArgs {
    /// How often: 15m, 30m, 1h, 6h, 1d, ...
    #[arg(long, default_value = "1h")]
    pub every: String,
    #[command(flatten)]
    pub scope: ScheduleScopeArgs,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the local VM image with debootstrap (kernel, cloud-init, sshd; booted directly).
    Build(ImageBuildArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ImageBuildArgs {
    /// Where the image goes (default: the XDG cache dir, where `create --provider local` finds it).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Debian release.
    #[arg(long, default_value = "trixie")]
    pub suite: String,
    /// Debian mirror.
    #[arg(long, default_value = "http://deb.debian.org/debian")]
    pub mirror: String,
    /// Size of the image's root file system (the trial's overlay grows it to its own size).
    #[arg(long, default_value = "4G")]
    pub size: String,
    /// Build again even when the inputs did not change.
    #[arg(long)]
    pub force: bool,
    /// Print what would run, build nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_provider(s: &str) -> Result<ProviderKind, String> {
    s.parse()
}

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub action: AuthAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuthAction {
    /// The trial's users (passwords only with --show).
    List(AuthListArgs),
    /// A new user with a generated password.
    Add(AuthUserArgs),
    /// A new password for a user; the old one stops working at once.
    Rotate(AuthUserArgs),
    /// Remove a user; the last one only with --all, which locks the trial (every request 401).
    Revoke(AuthRevokeArgs),
    /// Send the local set to the host again and reload Caddy (after a failed change).
    Sync(AuthSyncArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AuthListArgs {
    pub trial: String,
    /// Show the passwords (they are otherwise only in the 0600 file).
    #[arg(long)]
    pub show: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AuthUserArgs {
    pub trial: String,
    /// User name: 1 to 32 of a-z, 0-9, '.', '_', '-'.
    pub user: String,
    /// Print the new password.
    #[arg(long)]
    pub show: bool,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AuthRevokeArgs {
    pub trial: String,
    #[arg(required_unless_present = "all")]
    pub user: Option<String>,
    /// Revoke every user: the trial is locked until `auth add`.
    #[arg(long, conflicts_with = "user")]
    pub all: bool,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AuthSyncArgs {
    pub trial: String,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    Text,
    Markdown,
    Html,
}

#[derive(Debug, Clone, Args)]
pub struct OnboardArgs {
    pub trial: String,
    /// Whose message (default: the trial's first user).
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    #[arg(long, value_enum, default_value_t = MessageFormat::Text)]
    pub format: MessageFormat,
    /// Put the password into the message (default: it reaches the client another way).
    #[arg(long)]
    pub include_password: bool,
    /// Ask the deployed assistant each example question and report which ones answer.
    #[arg(long)]
    pub self_test: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    pub trial: String,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Directory for munero.toml and client.env (default: the current one).
    pub dir: Option<PathBuf>,
    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Print what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Check for this kind of host (default: munero.toml's provider, else hetzner).
    #[arg(long, value_parser = parse_provider, value_name = "hetzner|aws|local|ssh")]
    pub provider: Option<ProviderKind>,
    /// Also check what `deploy --ship-images` needs (a local docker engine).
    #[arg(long)]
    pub ship_images: bool,
}
